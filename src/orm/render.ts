import type { LlmCall, Trajectory } from '../agent/trajectory.js';
import type { ChatMessage } from '../policy/types.js';
import { wellFormed } from '../util/byte-text.js';

/**
 * What the verifier reads (design §11): the issue, the agent's trajectory — each action and what
 * it got back — and the final diff; it answers YES (the diff resolves the issue) or NO. One pure
 * function renders it for both uses, so the model is scored on exactly the text it was trained
 * on: `rft verifier data` (training examples) and best-of-n eval (the scoring request).
 *
 * Compact by construction: an action is the model's reply (its JSON, tool-call arguments or
 * edit), what it got back is the NEW part of the next call's prompt (its last user message: the
 * search results, the file context, the diff of an edit, a retry message), each cut to a bounded
 * number of characters from both ends. System prompts and replayed history are never repeated.
 */

export const VERIFIER_SYSTEM_PROMPT =
  'You are a verifier of software-engineering agents. You read a GitHub issue, the steps an agent ' +
  'took to fix it (each action and what it got back) and the final git diff, and judge whether the ' +
  'diff resolves the issue so that the hidden tests pass. Answer with one word: YES or NO.';

/** The two answers; training targets are exactly these strings. */
export const YES = 'YES';
export const NO = 'NO';

export interface RenderLimits {
  /** Characters kept of one action. */
  actionChars: number;
  /** Characters kept of what one action got back. */
  observationChars: number;
  /** Characters kept of the final diff. */
  diffChars: number;
  /** Steps shown at most: the first two and the last ones, a marker saying how many are left out between. */
  maxSteps?: number;
}

export const DEFAULT_LIMITS: RenderLimits = { actionChars: 1500, observationChars: 1500, diffChars: 12000 };

/**
 * Ever shorter renderings, tried in order when the verifier's endpoint refuses a prompt as longer
 * than its context: the diff is cut last, being what the verdict is about. The first is the one
 * the verifier data is rendered with.
 */
export const SHORTER_LIMITS: readonly RenderLimits[] = [
  DEFAULT_LIMITS,
  { actionChars: 800, observationChars: 800, diffChars: 12000, maxSteps: 24 },
  { actionChars: 400, observationChars: 400, diffChars: 8000, maxSteps: 12 },
  { actionChars: 200, observationChars: 200, diffChars: 4000, maxSteps: 6 },
];

/** The issue text a trajectory needs: the task's problem statement. */
export interface VerifierInput {
  problem_statement: string;
  trajectory: Pick<Trajectory, 'calls' | 'outcome' | 'patch'>;
}

/** [system, user]: the scoring request's messages; a training example adds the assistant's YES/NO. */
export function verifierMessages(input: VerifierInput, limits: RenderLimits = DEFAULT_LIMITS): ChatMessage[] {
  return [
    { role: 'system', content: VERIFIER_SYSTEM_PROMPT },
    { role: 'user', content: verifierPrompt(input, limits) },
  ];
}

export function verifierPrompt({ problem_statement, trajectory }: VerifierInput, limits: RenderLimits = DEFAULT_LIMITS): string {
  const calls = trajectory.calls;
  const shown = shownSteps(calls.length, limits.maxSteps);
  const steps = shown.map((i, at) => {
    const call = calls[i]!;
    const next = calls[i + 1];
    const got = call.invalid !== null ? `invalid action: ${call.invalid}` : next ? lastUserText(next) : endOf(trajectory.outcome);
    const gap = at > 0 && i > shown[at - 1]! + 1 ? `<omitted steps="${i - shown[at - 1]! - 1}"/>\n` : '';
    return `${gap}<step n="${i + 1}" state="${call.state}">\n<action>\n${cut(actionText(call), limits.actionChars)}\n</action>\n<result>\n${cut(got, limits.observationChars)}\n</result>\n</step>`;
  });
  // wellFormed: a patch of a file that is not UTF-8 holds escaped bytes no tokenizer takes.
  const diff = trajectory.patch.trim() === '' ? '(empty: the agent changed nothing)' : cut(wellFormed(trajectory.patch), limits.diffChars);
  return [
    `<issue>\n${problem_statement.trim()}\n</issue>`,
    `<trajectory steps="${trajectory.calls.length}" ended="${trajectory.outcome.status}">\n${steps.join('\n')}\n</trajectory>`,
    `<diff>\n${diff}\n</diff>`,
    'Does this diff resolve the issue? Answer YES or NO.',
  ].join('\n\n');
}

/** Indices of the steps shown: all, or the first two and the last `max - 2`. */
function shownSteps(count: number, max: number | undefined): number[] {
  const all = Array.from({ length: count }, (_, i) => i);
  if (max === undefined || count <= max) return all;
  const head = Math.min(2, max);
  return [...all.slice(0, head), ...all.slice(count - (max - head))];
}

function actionText(call: LlmCall): string {
  const m = call.completion;
  if (m.role !== 'assistant') return m.content;
  const tools = (m.tool_calls ?? []).map((t) => `${t.function.name}(${t.function.arguments})`);
  return [m.content ?? '', ...tools].filter((s) => s.trim() !== '').join('\n') || '(no reply)';
}

function lastUserText(call: LlmCall): string {
  for (let i = call.messages.length - 1; i >= 0; i--) {
    const m = call.messages[i]!;
    if (m.role === 'user' || m.role === 'tool') return m.content;
  }
  return '(nothing)';
}

function endOf(outcome: Trajectory['outcome']): string {
  return `the run ended: ${outcome.status}${outcome.reason ? ` (${outcome.reason})` : ''}`;
}

/** Keeps both ends of a long text (the head says what it is, the tail is often the point). */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const head = Math.ceil(max * 0.6);
  const tail = max - head;
  return `${text.slice(0, head)}\n… (${text.length - max} characters left out) …\n${text.slice(text.length - tail)}`;
}
