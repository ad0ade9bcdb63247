import lodash from 'lodash';
import { z } from 'zod';
import { SelectionCountsSchema, SelectOptionsSchema, type SelectionResult, type SelectOptionsInput } from '../select/select.js';
import { OutcomeSchema } from '../verify/verdict.js';
import { ExampleCountsSchema, ExampleOptionsSchema, LENGTH_BUCKETS, lineFormOf, toolArgumentsOf, type ExamplesResult } from './examples.js';
import { exampleTokenizer, TokenizerInfoSchema } from './tokenizer.js';

export { MANIFEST_FILE } from './files.js';

const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected a sha256 hex digest');
const count = () => z.number().int().nonnegative();

/** One iteration's part of a dataset: its selection and the infrastructure records left out of its pool. */
export const IterationCountsSchema = SelectionCountsSchema.extend({
  iteration: count(),
  infrastructure_records: count().describe('Trajectory records of infrastructure errors, never in the pool (retried samples)'),
});
export type IterationCounts = z.infer<typeof IterationCountsSchema>;

/**
 * Everything needed to compare two datasets (design §6): which settings made it, which file it
 * is, and what each stage let through and why. Arithmetic that holds in every manifest:
 *   trajectories_in = not_resolved + tampering + not_finished + successes
 *   successes - duplicate_patch = kept_after_dedup;  kept_after_dedup - over_cap = kept_after_cap
 *   calls_in_kept - invalid_call = valid_calls
 *   example_candidates - over_max_tokens = examples = file.lines
 * (example_candidates = valid_calls for the call unit, kept trajectories with a valid call for the
 * trajectory unit).
 */
export const DatasetManifestSchema = z.object({
  format: z.literal('rft-sft-dataset/1'),
  recipe_hash: Sha256Hex,
  /** The iteration this dataset trains (M_iteration+1 is fine-tuned on it). */
  iteration: count(),
  /** Iterations whose kept trajectories it holds: [iteration], or 0..iteration with accumulate. */
  iterations_included: z.array(count()).min(1),
  cap: SelectOptionsSchema.shape.cap.unwrap(),
  order: SelectOptionsSchema.shape.order.unwrap(),
  dedup: z.boolean(),
  /** select.require_finished: a success must also have finished (false: any resolved run, SWE-Gym's rule). */
  require_finished: z.boolean(),
  /** select.allow_tampering; absent in manifests written before it existed (they kept every resolved run). */
  allow_tampering: z.boolean().optional(),
  seed: count(),
  unit: ExampleOptionsSchema.shape.unit.unwrap(),
  max_tokens: count(),
  tokenizer: ExampleOptionsSchema.shape.tokenizer.unwrap(),
  /** Which tokenizer counted the examples (a model's folder: its hash and whether its template marks assistant spans). */
  tokenizer_info: TokenizerInfoSchema,
  /** The loss policy every backend is told (README, Fine-tuning), the trainer the lines are shaped for, and how. */
  train_on: ExampleOptionsSchema.shape.train_on.unwrap(),
  backend: ExampleOptionsSchema.shape.backend.unwrap(),
  tool_arguments: z.enum(['string', 'object']),
  line_form: z.enum(['messages', 'prompt_completion']),
  file: z.object({
    name: z.string().min(1),
    sha256: Sha256Hex,
    bytes: count(),
    lines: count(),
  }),
  counts: z.object({
    infrastructure_records: count(),
    trajectories_in: count(),
    resolved: count(),
    finished: count(),
    /** Resolved runs that finished, and those that were rejected or ended in a model-side error. */
    resolved_finished: count(),
    resolved_unfinished: count(),
    not_resolved: count(),
    /** Resolved runs whose verdict carries tampering, and those of them dropped for it (absent in older manifests). */
    tampered: count().optional(),
    tampering: count().optional(),
    not_finished: count(),
    successes: count(),
    duplicate_patch: count(),
    kept_after_dedup: count(),
    over_cap: count(),
    kept_after_cap: count(),
    calls_in_kept: count(),
    invalid_call: count(),
    valid_calls: count(),
    example_candidates: count(),
    over_max_tokens: count(),
    examples: count(),
  }),
  /** Every reason anything was dropped, trajectories and examples alike. */
  dropped: z.object({
    not_resolved: count(),
    tampering: count().optional(),
    not_finished: count(),
    duplicate_patch: count(),
    over_cap: count(),
    invalid_call: count(),
    over_max_tokens: count(),
  }),
  verdicts: SelectionCountsSchema.shape.verdicts,
  instances: z.object({
    in_pool: count(),
    with_success: count(),
    kept: count(),
    with_examples: count(),
  }),
  tokens: z.object({
    total: count(),
    mean_per_example: z.number().nonnegative().nullable(),
    max_per_example: count().nullable(),
    /** Tokens carrying loss under train_on. */
    trained_total: count(),
    /** Example lengths: how many examples are at most each bound (tokens), the last entry above every bound. */
    length_distribution: z.array(z.object({ at_most: count().nullable(), examples: count() })),
  }),
  llm_calls: z.object({
    mean_per_kept_trajectory: z.number().nonnegative().nullable(),
  }),
  per_iteration: z.array(IterationCountsSchema).min(1),
  example_counts: ExampleCountsSchema,
});
export type DatasetManifest = z.infer<typeof DatasetManifestSchema>;

/**
 * The selection options a dataset was made with, from its manifest: what selection is run again
 * with to tell which trajectories it kept (the report's dataset section, the trajectory pages).
 * A manifest written before allow_tampering existed kept every resolved run.
 */
export function manifestSelectOptions(m: DatasetManifest): SelectOptionsInput {
  return { cap: m.cap, order: m.order, dedup: m.dedup, seed: m.seed, require_finished: m.require_finished, allow_tampering: m.allow_tampering ?? true };
}

export interface IterationSelection {
  iteration: number;
  selection: SelectionResult;
  /** isInfrastructureError records of the iteration's ledger (0 when not counted). */
  infrastructure_records?: number;
}

export interface ManifestInput {
  recipe_hash: string;
  iteration: number;
  /** One per included iteration, each selected with the same options. */
  selections: readonly IterationSelection[];
  /** Built from the kept trajectories of exactly these selections. */
  examples: ExamplesResult;
}

export interface DatasetFileInfo {
  name: string;
  sha256: string;
  bytes: number;
  lines: number;
}

/** The manifest of a dataset (pure; the writer supplies the file's hash and size). */
export function buildManifest(input: ManifestInput, file: DatasetFileInfo): DatasetManifest {
  const { selections, examples } = input;
  if (selections.length === 0) throw new Error('a dataset needs the selection of at least one iteration');
  const options = selections[0]!.selection.options;
  for (const s of selections) {
    if (!lodash.isEqual(s.selection.options, options)) {
      throw new Error(`iterations ${selections[0]!.iteration} and ${s.iteration} were selected with different options`);
    }
    for (const entry of s.selection.kept) {
      if (entry.iteration !== s.iteration) throw new Error(`the selection of iteration ${s.iteration} keeps an entry of iteration ${entry.iteration}`);
    }
  }
  const included = selections.map((s) => s.iteration).sort((a, b) => a - b);
  if (new Set(included).size !== included.length) throw new Error(`an iteration is given twice: ${included.join(', ')}`);
  if (!included.includes(input.iteration)) throw new Error(`iteration ${input.iteration} is not among the included iterations ${included.join(', ')}`);

  const kept = selections.flatMap((s) => s.selection.kept);
  const pool = selections.flatMap((s) => [...s.selection.kept, ...s.selection.dropped.map((d) => d.entry)]);
  if (examples.counts.trajectories !== kept.length) {
    throw new Error(`the examples come from ${examples.counts.trajectories} trajectories, the selections keep ${kept.length}`);
  }
  if (examples.counts.examples !== file.lines) throw new Error(`the file has ${file.lines} lines for ${examples.counts.examples} examples`);

  const sum = (pick: (c: SelectionResult['counts']) => number) => selections.reduce((total, s) => total + pick(s.selection.counts), 0);
  // repeated_error only when there are some (see SelectionCountsSchema): older manifests stay as they were.
  const verdicts = Object.fromEntries(
    [...OutcomeSchema.options, 'missing' as const].flatMap((v) => {
      const n = sum((c) => c.verdicts[v] ?? 0);
      return v === 'repeated_error' && n === 0 ? [] : [[v, n]];
    }),
  ) as DatasetManifest['verdicts'];
  const e = examples.counts;
  const perIteration = [...selections]
    .sort((a, b) => a.iteration - b.iteration)
    .map((s) => ({ iteration: s.iteration, infrastructure_records: s.infrastructure_records ?? 0, ...s.selection.counts }));

  return DatasetManifestSchema.parse({
    format: 'rft-sft-dataset/1',
    recipe_hash: input.recipe_hash,
    iteration: input.iteration,
    iterations_included: included,
    cap: options.cap,
    order: options.order,
    dedup: options.dedup,
    require_finished: options.require_finished,
    allow_tampering: options.allow_tampering,
    seed: options.seed,
    unit: examples.options.unit,
    max_tokens: examples.options.max_tokens,
    tokenizer: examples.options.tokenizer,
    tokenizer_info: exampleTokenizer(examples.options.tokenizer).info,
    train_on: examples.options.train_on,
    backend: examples.options.backend,
    tool_arguments: toolArgumentsOf(examples.options),
    line_form: lineFormOf(examples.options),
    file,
    counts: {
      infrastructure_records: perIteration.reduce((t, p) => t + p.infrastructure_records, 0),
      trajectories_in: sum((c) => c.in),
      resolved: sum((c) => c.resolved),
      finished: sum((c) => c.finished),
      resolved_finished: sum((c) => c.resolved_finished),
      resolved_unfinished: sum((c) => c.resolved_unfinished),
      not_resolved: sum((c) => c.not_resolved),
      tampered: sum((c) => c.tampered ?? 0),
      tampering: sum((c) => c.tampering ?? 0),
      not_finished: sum((c) => c.not_finished),
      successes: sum((c) => c.successes),
      duplicate_patch: sum((c) => c.duplicate_patch),
      kept_after_dedup: sum((c) => c.after_dedup),
      over_cap: sum((c) => c.over_cap),
      kept_after_cap: sum((c) => c.kept),
      calls_in_kept: e.calls,
      invalid_call: e.invalid_call,
      valid_calls: e.valid_calls,
      example_candidates: e.candidates,
      over_max_tokens: e.over_max_tokens,
      examples: e.examples,
    },
    dropped: {
      not_resolved: sum((c) => c.not_resolved),
      tampering: sum((c) => c.tampering ?? 0),
      not_finished: sum((c) => c.not_finished),
      duplicate_patch: sum((c) => c.duplicate_patch),
      over_cap: sum((c) => c.over_cap),
      invalid_call: e.invalid_call,
      over_max_tokens: e.over_max_tokens,
    },
    verdicts,
    instances: {
      in_pool: new Set(pool.map((p) => p.instance_id)).size,
      with_success: new Set(
        selections.flatMap((s) => [
          ...s.selection.kept,
          ...s.selection.dropped.filter((d) => d.reason === 'duplicate_patch' || d.reason === 'over_cap').map((d) => d.entry),
        ]).map((p) => p.instance_id),
      ).size,
      kept: new Set(kept.map((p) => p.instance_id)).size,
      with_examples: e.instances_with_examples,
    },
    tokens: {
      total: e.tokens_total,
      mean_per_example: e.tokens_mean,
      max_per_example: e.tokens_max,
      trained_total: e.trained_tokens_total,
      length_distribution: e.length_histogram.map((n, i) => ({ at_most: LENGTH_BUCKETS[i] ?? null, examples: n })),
    },
    llm_calls: {
      mean_per_kept_trajectory: kept.length === 0 ? null : kept.reduce((t, k) => t + k.llm_calls, 0) / kept.length,
    },
    per_iteration: perIteration,
    example_counts: e,
  });
}
