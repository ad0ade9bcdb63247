import { z } from 'zod';
import { SelectSchema } from '../recipe/schema.js';
import { canonicalJson, sha256Hex } from '../util/canonical.js';
import { OutcomeSchema } from '../verify/verdict.js';
import { compareRefs, PoolEntrySchema, successTest, type PoolEntry } from './pool.js';

/** The recipe's `select` settings plus the seed of the tie-break hash. */
export const SelectOptionsSchema = SelectSchema.extend({
  seed: z.number().int().nonnegative().describe('Seed of the tie-break hash (the run seed)'),
});
export type SelectOptions = z.infer<typeof SelectOptionsSchema>;
export type SelectOptionsInput = z.input<typeof SelectOptionsSchema>;

/**
 * Why a pool entry is not kept, checked in this order:
 * - not_resolved: the verdict is not `resolved` (or there is none);
 * - tampering: resolved, but the verdict carries tampering (src/verify/tampering.ts) and
 *   allow_tampering is off: the pass is no evidence of a fix, and a policy trained on it learns
 *   the hack;
 * - not_finished: (require_finished) resolved, but the agent did not finish (rejected, or a
 *   model-fault error) — so this count is exactly what the `finished` requirement costs;
 * - duplicate_patch: (dedup) a success with the same normalised patch on the same instance ranks
 *   higher in the preference order;
 * - over_cap: the instance already has `cap` successes that rank higher.
 */
export const DropReasonSchema = z.enum(['not_resolved', 'tampering', 'not_finished', 'duplicate_patch', 'over_cap']);
export type DropReason = z.infer<typeof DropReasonSchema>;

const count = () => z.number().int().nonnegative();

/** Counts in and out of each stage. in = not_resolved + tampering + not_finished + successes, and so on down. */
export const SelectionCountsSchema = z.object({
  in: count().describe('Pool entries (infrastructure errors never enter a pool)'),
  verdicts: z
    .object({
      resolved: count(),
      unresolved: count(),
      empty_patch: count(),
      apply_failed: count(),
      timeout: count(),
      invalid_task: count(),
      error: count(),
      // Written only when there are some: manifests written before this outcome existed read as they are.
      repeated_error: count().optional(),
      missing: count(),
    })
    .describe('Pool entries by verdict; missing = no verdict recorded'),
  resolved: count().describe('Verdict resolved'),
  finished: count().describe('Outcome finished'),
  not_resolved: count(),
  // Both optional so that manifests written before tampering was detected read as they are.
  tampered: count().optional().describe('Resolved, with a verdict that carries tampering (dropped or, with allow_tampering, kept)'),
  tampering: count().optional().describe('Resolved with tampering, dropped for it (0 with allow_tampering)'),
  resolved_finished: count().describe('Resolved and finished'),
  resolved_unfinished: count().describe('Resolved, but the run was rejected or ended in a model-side error (successes unless require_finished)'),
  not_finished: count().describe('Resolved but not finished, dropped for it (require_finished only)'),
  successes: count().describe('Resolved (and finished, with require_finished)'),
  duplicate_patch: count(),
  after_dedup: count().describe('successes - duplicate_patch'),
  over_cap: count(),
  kept: count().describe('after_dedup - over_cap'),
  instances_in: count(),
  instances_with_success: count(),
  instances_kept: count(),
});
export type SelectionCounts = z.infer<typeof SelectionCountsSchema>;

export interface DroppedEntry {
  entry: PoolEntry;
  reason: DropReason;
}

export interface SelectionResult {
  options: SelectOptions;
  /** Kept successes, in (instance_id, iteration, sample_index) order. */
  kept: PoolEntry[];
  /** Everything else with its reason, in the same order. */
  dropped: DroppedEntry[];
  counts: SelectionCounts;
}

/**
 * The seeded tie-break of an entry: sha256 of the canonical JSON of (seed, instance_id,
 * sample_index). Pure and platform-independent, so a resumed run, another machine or another
 * Node version ranks alike; a different seed shuffles ties differently.
 */
export function tieHash(seed: number, instanceId: string, sampleIndex: number): string {
  return sha256Hex(canonicalJson([seed, instanceId, sampleIndex]));
}

/**
 * Preference order of one instance's successes, first = kept first.
 * - fewest_calls (the paper's): fewer LLM calls, then fewer tokens, then the seeded hash.
 * - random: the seeded hash alone.
 * The last resort (iteration, sample index) only matters for equal hashes, i.e. entries of
 * different iterations pooled together under the same sample index.
 */
export function preferenceCompare(order: SelectOptions['order'], seed: number): (a: PoolEntry, b: PoolEntry) => number {
  // A sort compares each entry O(log n) times: hash it once (a sha256 per comparison was the hot spot).
  const hashes = new WeakMap<PoolEntry, string>();
  const hashOf = (e: PoolEntry): string => {
    let h = hashes.get(e);
    if (h === undefined) hashes.set(e, (h = tieHash(seed, e.instance_id, e.sample_index)));
    return h;
  };
  return (a, b) => {
    if (order === 'fewest_calls') {
      if (a.llm_calls !== b.llm_calls) return a.llm_calls - b.llm_calls;
      if (a.tokens_total !== b.tokens_total) return a.tokens_total - b.tokens_total;
    }
    const ha = hashOf(a);
    const hb = hashOf(b);
    if (ha !== hb) return ha < hb ? -1 : 1;
    return compareRefs(a, b);
  };
}

/**
 * Rejection sampling's filter plus SWE-Gym's per-instance cap (design §6): keep the successes
 * (resolved, and finished too with require_finished; see isSuccess), optionally one per distinct patch per instance, then at
 * most `cap` per instance in preference order (`cap: null` keeps all). The cap stops easy
 * instances, which succeed in most samples, from dominating the data.
 */
export function selectTrajectories(pool: readonly PoolEntry[], optionsInput: SelectOptionsInput): SelectionResult {
  const options = SelectOptionsSchema.parse(optionsInput);
  const entries = pool.map((entry) => PoolEntrySchema.parse(entry));
  const dropped: DroppedEntry[] = [];
  const kept: PoolEntry[] = [];
  const successesByInstance = new Map<string, PoolEntry[]>();
  const isSuccess = successTest(options.require_finished, options.allow_tampering);

  for (const entry of entries) {
    if (entry.verdict !== 'resolved') dropped.push({ entry, reason: 'not_resolved' });
    else if (entry.tampered === true && !options.allow_tampering) dropped.push({ entry, reason: 'tampering' });
    else if (!isSuccess(entry)) dropped.push({ entry, reason: 'not_finished' });
    else {
      const group = successesByInstance.get(entry.instance_id) ?? [];
      group.push(entry);
      successesByInstance.set(entry.instance_id, group);
    }
  }

  const prefer = preferenceCompare(options.order, options.seed);
  for (const group of successesByInstance.values()) {
    const ranked = [...group].sort(prefer);
    const patches = new Set<string>();
    let taken = 0;
    for (const entry of ranked) {
      if (options.dedup) {
        if (patches.has(entry.patch_hash)) {
          dropped.push({ entry, reason: 'duplicate_patch' });
          continue;
        }
        patches.add(entry.patch_hash);
      }
      if (options.cap !== null && taken >= options.cap) {
        dropped.push({ entry, reason: 'over_cap' });
        continue;
      }
      taken += 1;
      kept.push(entry);
    }
  }

  kept.sort(compareRefs);
  dropped.sort((a, b) => compareRefs(a.entry, b.entry));
  return { options, kept, dropped, counts: selectionCounts(entries, kept, dropped, options) };
}

function selectionCounts(entries: readonly PoolEntry[], kept: readonly PoolEntry[], dropped: readonly DroppedEntry[], options: SelectOptions): SelectionCounts {
  const reasons = Object.fromEntries(DropReasonSchema.options.map((r) => [r, 0])) as Record<DropReason, number>;
  for (const d of dropped) reasons[d.reason] += 1;
  const tally = Object.fromEntries([...OutcomeSchema.options, 'missing'].map((v) => [v, 0])) as Required<SelectionCounts['verdicts']>;
  for (const e of entries) tally[e.verdict ?? 'missing'] += 1;
  const { repeated_error: repeatedErrors, ...always } = tally;
  const verdicts: SelectionCounts['verdicts'] = repeatedErrors > 0 ? { ...always, repeated_error: repeatedErrors } : always;
  const successes = entries.filter(successTest(options.require_finished, options.allow_tampering));
  const resolvedFinished = entries.filter((e) => e.verdict === 'resolved' && e.outcome_status === 'finished').length;
  return SelectionCountsSchema.parse({
    in: entries.length,
    verdicts,
    resolved: verdicts.resolved,
    finished: entries.filter((e) => e.outcome_status === 'finished').length,
    not_resolved: reasons.not_resolved,
    tampered: entries.filter((e) => e.verdict === 'resolved' && e.tampered === true).length,
    tampering: reasons.tampering,
    resolved_finished: resolvedFinished,
    resolved_unfinished: verdicts.resolved - resolvedFinished,
    not_finished: reasons.not_finished,
    successes: successes.length,
    duplicate_patch: reasons.duplicate_patch,
    after_dedup: successes.length - reasons.duplicate_patch,
    over_cap: reasons.over_cap,
    kept: kept.length,
    instances_in: new Set(entries.map((e) => e.instance_id)).size,
    instances_with_success: new Set(successes.map((e) => e.instance_id)).size,
    instances_kept: new Set(kept.map((e) => e.instance_id)).size,
  });
}
