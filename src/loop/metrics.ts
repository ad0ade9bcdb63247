import path from 'node:path';
import { z } from 'zod';
import type { FinetuneJob } from '../finetune/job.js';
import type { DatasetManifest } from '../sft/manifest.js';
import { Ledger, readRecords } from '../store/ledger.js';
import type { TrajectoryHead } from '../store/trajectories.js';
import { normalizePatch, patchHash } from '../verify/patch.js';
import { isFinal, type Verdict } from '../verify/verdict.js';

/**
 * runs/<name>/metrics.jsonl: one line per finished phase, appended with fsync like the ledgers
 * (a torn last line is dropped on open), so a dashboard or a notebook can plot a run while it
 * runs (`pandas.read_json(path, lines=True)`). A phase finished in an earlier process is not
 * written again when a resume passes it.
 */

export const METRICS_FILE = 'metrics.jsonl';

const Count = z.number().int().nonnegative();
const Rate = z.number().min(0).max(1).nullable();

export const MetricsLineSchema = z.object({
  run: z.string(),
  /** Train iteration k for sample/select/finetune; the evaluated model's index m for eval. */
  iteration: Count,
  phase: z.enum(['sample', 'select', 'finetune', 'eval']),
  model: z.string().nullable(),
  finished_at: z.iso.datetime({ offset: true }),
  /** Wall time of the phase in the process that finished it (a resumed phase: only that process's part). */
  duration_s: z.number().nonnegative(),
  /** Part of the phase was recorded by an earlier process (a resume). */
  resumed: z.boolean(),
  /** sample/eval: trajectories that are data (infrastructure errors left out), resolved ones, and the rate. */
  trajectories: Count.nullable(),
  resolved: Count.nullable(),
  resolve_rate: Rate,
  /** sample/eval: resolved trajectories that also reached Finished (what `select.require_finished: true` keeps). */
  resolved_finished: Count.nullable(),
  /** select: the successes the dataset's selection counted (its manifest), before the cap. */
  successes: Count.nullable(),
  empty_patches: Count.nullable(),
  distinct_patches: Count.nullable(),
  llm_calls: Count.nullable(),
  /** Tokens: prompt + completion over the phase's trajectories; select: tokens of the SFT examples. */
  tokens: z.object({ prompt: Count, completion: Count }).nullable(),
  /** Sum of the trajectories' own durations (agent time, excluding verification). */
  trajectory_seconds: z.number().nonnegative().nullable(),
  /** select: trajectories kept after the cap and the SFT examples they make. */
  kept: Count.nullable(),
  examples: Count.nullable(),
  example_tokens: Count.nullable(),
  /** finetune: the job's status, its output model, and its own duration from the record. */
  finetune_status: z.string().nullable(),
  output_model: z.string().nullable(),
  finetune_seconds: z.number().nonnegative().nullable(),
});
export type MetricsLine = z.infer<typeof MetricsLineSchema>;

const EMPTY: Omit<MetricsLine, 'run' | 'iteration' | 'phase' | 'model' | 'finished_at' | 'duration_s' | 'resumed'> = {
  trajectories: null,
  resolved: null,
  resolve_rate: null,
  resolved_finished: null,
  successes: null,
  empty_patches: null,
  distinct_patches: null,
  llm_calls: null,
  tokens: null,
  trajectory_seconds: null,
  kept: null,
  examples: null,
  example_tokens: null,
  finetune_status: null,
  output_model: null,
  finetune_seconds: null,
};

type Common = Pick<MetricsLine, 'run' | 'iteration' | 'model' | 'duration_s' | 'resumed'> & { now?: Date };

/** A sample or eval rollout: counts from its trajectories and their final verdicts. */
/** What metrics keep of a sample: a few numbers, not the record (a ledger may hold 73k of them). */
interface SampleFigures {
  infrastructure: boolean;
  finished: boolean;
  patchKey: string;
  empty: boolean;
  llm_calls: number;
  prompt: number;
  completion: number;
  duration_ms: number;
}

/** A phase's figures, read record by record from its ledgers (heads are enough: no calls are held). */
export function rolloutMetrics(phase: 'sample' | 'eval', common: Common, trajectories: Iterable<TrajectoryHead>, verdicts: Iterable<Verdict>): MetricsLine {
  const outcome = new Map<string, Verdict['outcome']>();
  for (const v of verdicts) if (isFinal(v.outcome)) outcome.set(`${v.instance_id}@${v.patch_hash}`, v.outcome);
  // The last record of a sample counts (an infrastructure error is recorded again when retried).
  const bySample = new Map<string, SampleFigures>();
  for (const t of trajectories) {
    const normalized = normalizePatch(t.patch);
    bySample.set(`${t.instance_id}#${t.sample_index}`, {
      infrastructure: t.outcome.status === 'error' && t.outcome.fault === 'infrastructure',
      finished: t.outcome.status === 'finished',
      patchKey: `${t.instance_id}@${patchHash(normalized)}`,
      empty: normalized === '',
      llm_calls: t.llm_calls,
      prompt: t.tokens.prompt,
      completion: t.tokens.completion,
      duration_ms: t.duration_ms,
    });
  }
  let samples = 0;
  let resolved = 0;
  let resolvedFinished = 0;
  let empty = 0;
  let llmCalls = 0;
  let prompt = 0;
  let completion = 0;
  let durationMs = 0;
  const patches = new Set<string>();
  for (const t of bySample.values()) {
    if (t.infrastructure) continue;
    samples += 1;
    patches.add(t.patchKey);
    if (outcome.get(t.patchKey) === 'resolved') {
      resolved += 1;
      if (t.finished) resolvedFinished += 1;
    }
    if (t.empty) empty += 1;
    llmCalls += t.llm_calls;
    prompt += t.prompt;
    completion += t.completion;
    durationMs += t.duration_ms;
  }
  return MetricsLineSchema.parse({
    ...EMPTY,
    ...head(phase, common),
    trajectories: samples,
    resolved,
    resolve_rate: samples === 0 ? null : resolved / samples,
    resolved_finished: resolvedFinished,
    empty_patches: empty,
    distinct_patches: patches.size,
    llm_calls: llmCalls,
    tokens: { prompt, completion },
    trajectory_seconds: durationMs / 1000,
  });
}

export function selectMetrics(common: Common, manifest: DatasetManifest): MetricsLine {
  return MetricsLineSchema.parse({
    ...EMPTY,
    ...head('select', common),
    trajectories: manifest.counts.trajectories_in,
    successes: manifest.counts.successes,
    kept: manifest.counts.kept_after_cap,
    examples: manifest.counts.examples,
    example_tokens: manifest.tokens.total,
  });
}

export function finetuneMetrics(common: Common, job: FinetuneJob): MetricsLine {
  const started = Date.parse(job.started_at);
  const finished = job.finished_at ? Date.parse(job.finished_at) : Number.NaN;
  return MetricsLineSchema.parse({
    ...EMPTY,
    ...head('finetune', common),
    finetune_status: job.status,
    output_model: job.output_model,
    finetune_seconds: Number.isFinite(finished) && finished >= started ? (finished - started) / 1000 : null,
  });
}

function head(phase: MetricsLine['phase'], c: Common): Pick<MetricsLine, 'run' | 'iteration' | 'phase' | 'model' | 'finished_at' | 'duration_s' | 'resumed'> {
  return { run: c.run, iteration: c.iteration, phase, model: c.model, finished_at: (c.now ?? new Date()).toISOString(), duration_s: c.duration_s, resumed: c.resumed };
}

/** The run's metrics file, open for appending; a phase already written is not written twice. */
export class MetricsLog {
  private readonly written: Set<string>;

  private constructor(
    private readonly ledger: Ledger<MetricsLine>,
    lines: Iterable<MetricsLine>,
  ) {
    this.written = new Set(Array.from(lines, (l) => `${l.phase}/${l.iteration}`));
  }

  static open(runDir: string, warn: (message: string) => void = () => {}): MetricsLog {
    const file = path.join(runDir, METRICS_FILE);
    const opened = Ledger.open(file, MetricsLineSchema, (bytes) => warn(`${file}: dropped a torn last line (${bytes} bytes) left by an interrupted write`));
    return new MetricsLog(opened.ledger, readRecords(file, MetricsLineSchema));
  }

  /** Appends the line unless its phase is already in the file; returns whether it was written. */
  append(line: MetricsLine): boolean {
    const key = `${line.phase}/${line.iteration}`;
    if (this.written.has(key)) return false;
    this.ledger.append(line);
    this.written.add(key);
    return true;
  }

  close(): void {
    this.ledger.close();
  }
}
