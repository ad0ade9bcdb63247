import { skillFor, type SimModel } from './model.js';

/**
 * The SIMULATED trainer (a test double for a real fine-tune): a new simulated model whose skill
 * rises on the tasks its SFT data covers — more examples, more gain, with diminishing returns —
 * and a little on every other task (transfer). It reads nothing but which task each example is
 * about, so the data's selection (cap, dedup, token filter) shows in the result as it would.
 */
export const SIM_TRAIN = {
  /** Largest share of the remaining headroom (1 − skill) one round can close on a covered task. */
  maxGain: 0.3,
  /** Examples at which the gain reaches about 63% of maxGain. */
  examplesScale: 16,
  /** Gain on tasks the data does not cover. */
  transfer: 0.04,
  /** No simulated model gets more skilled than this. */
  ceiling: 0.95,
} as const;

export function simTrain(parent: SimModel, examplesPerTask: ReadonlyMap<string, number>, knownTasks: readonly string[], name: string): SimModel {
  const tasks: Record<string, number> = {};
  for (const id of [...new Set([...knownTasks, ...examplesPerTask.keys()])].sort()) {
    const before = skillFor(parent, id);
    const n = examplesPerTask.get(id) ?? 0;
    const gain = n > 0 ? SIM_TRAIN.maxGain * (1 - Math.exp(-n / SIM_TRAIN.examplesScale)) : SIM_TRAIN.transfer;
    tasks[id] = round(Math.min(SIM_TRAIN.ceiling, before + (1 - before) * gain));
  }
  return {
    name,
    simulated: true,
    parent: parent.name,
    skill: { default: round(Math.min(SIM_TRAIN.ceiling, parent.skill.default + (1 - parent.skill.default) * SIM_TRAIN.transfer)), tasks },
    notes: `SIMULATED model (test double) trained from ${parent.name} on ${[...examplesPerTask.values()].reduce((a, b) => a + b, 0)} examples`,
  };
}

/** Which task an SFT example is about: the one whose problem statement is in its <issue> block. */
export function taskOfExample(
  example: { messages?: Array<{ role: string; content?: string | null }>; prompt?: Array<{ role: string; content?: string | null }> },
  issueToTask: ReadonlyMap<string, string>,
): string | null {
  // TRL's prompt-completion lines (sft.train_on target) carry the conversation as prompt.
  for (const message of example.messages ?? example.prompt ?? []) {
    const issue = /<issue>\n?([\s\S]*?)\n?<\/issue>/.exec(message.content ?? '');
    if (issue) return issueToTask.get(normalizeIssue(issue[1]!)) ?? null;
  }
  return null;
}

export function normalizeIssue(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
