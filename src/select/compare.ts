import { z } from 'zod';
import { SelectSchema } from '../recipe/schema.js';
import { isSuccess, type PoolEntry } from './pool.js';

/** What counts as a success: `successTest(recipe.select.require_finished)` (src/select/pool.ts). */
export type SuccessTest = (entry: Pick<PoolEntry, 'outcome_status' | 'verdict'>) => boolean;

/** Share of instances counted as "easiest" in the bias measure. */
export const EASIEST_FRACTION = 0.2;

const count = () => z.number().int().nonnegative();

/**
 * One row of the cap comparison (`rft select --cap 1,2,none`): what a cap does to the data.
 * Means and shares are null when there is nothing to average over.
 */
export const CapComparisonRowSchema = z.object({
  cap: SelectSchema.shape.cap.unwrap(),
  trajectories: count().describe('Kept trajectories'),
  examples: count().describe('SFT examples they give'),
  instances_covered: count().describe('Instances with at least one kept trajectory'),
  instances_with_success: count().describe('Instances with at least one success in the pool (what any cap could cover)'),
  mean_llm_calls: z.number().nonnegative().nullable().describe('Mean LLM calls per kept trajectory'),
  mean_tokens: z.number().nonnegative().nullable().describe('Mean tokens per kept trajectory (prompt + completion of all calls)'),
  max_tokens: count().nullable().describe('Most tokens of one kept trajectory'),
  max_example_tokens: count().nullable().describe('Largest single call among the kept trajectories'),
  easiest_instances: count().describe('How many instances count as easiest: ceil(20% of instances_with_success)'),
  easiest_share: z.number().min(0).max(1).nullable().describe('Share of examples that come from the easiest instances'),
});
export type CapComparisonRow = z.infer<typeof CapComparisonRowSchema>;

/**
 * The easiest instances of a pool: those with the most successes (finished and resolved, before
 * dedup and cap), among instances with at least one success; ceil(20%) of them. Ties in the
 * number of successes go to the smaller instance id (code-unit order), so the set is the same on
 * every run whatever the order of the pool.
 */
export function easiestInstances(pool: readonly PoolEntry[], fraction = EASIEST_FRACTION, success: SuccessTest = isSuccess): string[] {
  const successes = new Map<string, number>();
  for (const entry of pool) if (success(entry)) successes.set(entry.instance_id, (successes.get(entry.instance_id) ?? 0) + 1);
  const ranked = [...successes.entries()].sort(([ia, na], [ib, nb]) => (na !== nb ? nb - na : ia < ib ? -1 : ia > ib ? 1 : 0));
  return ranked.slice(0, Math.ceil(ranked.length * fraction)).map(([id]) => id);
}

/**
 * The comparison row of one cap. `examplesOf` says how many SFT examples a kept trajectory gives
 * (see examplesPerTrajectory in src/sft/examples.ts; with the call unit it is its valid calls
 * under the token limit). Pure: the pool and the kept list are only read.
 */
export function capComparisonRow(
  cap: number | null,
  pool: readonly PoolEntry[],
  kept: readonly PoolEntry[],
  examplesOf: (entry: PoolEntry) => number,
  success: SuccessTest = isSuccess,
): CapComparisonRow {
  const easiest = new Set(easiestInstances(pool, EASIEST_FRACTION, success));
  let examples = 0;
  let easyExamples = 0;
  for (const entry of kept) {
    const n = examplesOf(entry);
    examples += n;
    if (easiest.has(entry.instance_id)) easyExamples += n;
  }
  const mean = (values: number[]) => (values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length);
  const max = (values: number[]) => (values.length === 0 ? null : Math.max(...values));
  return CapComparisonRowSchema.parse({
    cap,
    trajectories: kept.length,
    examples,
    instances_covered: new Set(kept.map((e) => e.instance_id)).size,
    instances_with_success: new Set(pool.filter(success).map((e) => e.instance_id)).size,
    mean_llm_calls: mean(kept.map((e) => e.llm_calls)),
    mean_tokens: mean(kept.map((e) => e.tokens_total)),
    max_tokens: max(kept.map((e) => e.tokens_total)),
    max_example_tokens: max(kept.map((e) => e.max_example_tokens)),
    easiest_instances: easiest.size,
    easiest_share: examples === 0 ? null : easyExamples / examples,
  });
}
