import { z } from 'zod';
import { TrajectoryStatusSchema, type Trajectory } from '../agent/trajectory.js';
import { normalizePatch, patchHash } from '../verify/patch.js';
import { isFinal, OutcomeSchema, verdictKeyOf as keyOfVerdict, type Verdict } from '../verify/verdict.js';

/** How a trajectory's run ended, as the pool sees it (the `status` of TrajectoryStatusSchema). */
export const OutcomeStatusSchema = z.enum(TrajectoryStatusSchema.options.map((option) => option.shape.status.value));
export type OutcomeStatus = z.infer<typeof OutcomeStatusSchema>;

/**
 * What selection needs to know of one sampled trajectory (design §6). Selection reads only
 * these records; the trajectory itself is fetched again by key when its examples are built.
 */
export const PoolEntrySchema = z.object({
  /** RFT iteration that sampled it: with accumulation, (iteration, instance_id, sample_index) is the key. */
  iteration: z.number().int().nonnegative(),
  instance_id: z.string().min(1),
  sample_index: z.number().int().nonnegative(),
  llm_calls: z.number().int().nonnegative(),
  /** Prompt + completion tokens over all calls, as counted when the trajectory was written. */
  tokens_total: z.number().int().nonnegative(),
  /** The largest single call (= the largest call-unit example). */
  max_example_tokens: z.number().int().nonnegative(),
  /** sha256 of the normalised patch. */
  patch_hash: z.string().regex(/^[0-9a-f]{64}$/, 'expected a sha256 hex digest'),
  outcome_status: OutcomeStatusSchema,
  /** The verdict of its patch; null when none is recorded yet. */
  verdict: OutcomeSchema.nullable(),
  /** The verdict carries tampering (src/verify/tampering.ts); written only when true. */
  tampered: z.literal(true).optional(),
});
export type PoolEntry = z.infer<typeof PoolEntrySchema>;

/** The fields that name one trajectory of a run. */
export type TrajectoryRef = Pick<PoolEntry, 'iteration' | 'instance_id' | 'sample_index'>;

/** Unambiguous key of a trajectory (instance ids may hold any character, so no ad-hoc separator). */
export function trajectoryKey(ref: TrajectoryRef): string {
  // = canonicalJson([...]): an array of primitives has no keys to sort, and this runs once per record.
  return JSON.stringify([ref.iteration, ref.instance_id, ref.sample_index]);
}

/** Deterministic order of records: instance, then iteration, then sample index (code-unit string order). */
export function compareRefs(a: TrajectoryRef, b: TrajectoryRef): number {
  if (a.instance_id !== b.instance_id) return a.instance_id < b.instance_id ? -1 : 1;
  if (a.iteration !== b.iteration) return a.iteration - b.iteration;
  return a.sample_index - b.sample_index;
}

/**
 * The endpoint failed, not the model: such a record is no data at all (neither success nor
 * failure). The sample is retried on resume, so the ledger later holds its real record too.
 */
export function isInfrastructureError(trajectory: Pick<Trajectory, 'outcome'>): boolean {
  return trajectory.outcome.status === 'error' && trajectory.outcome.fault === 'infrastructure';
}

/**
 * Is this pool entry a success, i.e. training data? Its verdict is `resolved`, whatever the run's
 * final state (design §6): SWE-Gym exported every resolved instance, rejected and errored runs
 * included, since each still submits its diff. `requireFinished` (recipe
 * `select.require_finished`) narrows it to runs whose agent also declared the fix done, for
 * data whose every step, the last one included, is worth imitating.
 */
export function isSuccess(entry: Pick<PoolEntry, 'outcome_status' | 'verdict'>): boolean {
  return entry.verdict === 'resolved';
}

/** The success test under a recipe's `select.require_finished` and `select.allow_tampering` (a
 * resolved run whose verdict carries tampering is no success unless allowed). */
export function successTest(
  requireFinished: boolean,
  allowTampering = false,
): (entry: Pick<PoolEntry, 'outcome_status' | 'verdict' | 'tampered'>) => boolean {
  return (entry) => isSuccess(entry) && (allowTampering || entry.tampered !== true) && (!requireFinished || entry.outcome_status === 'finished');
}

/**
 * The selection pool of one iteration: each trajectory joined to the verdict of its normalised
 * patch. `verdictKeyOf` gives a trajectory's verdict cache key (it knows the instance's eval spec;
 * selection does not).
 *
 * - Infrastructure-error trajectories are left out: they are not data (see isInfrastructureError).
 * - When a key has several verdicts (an `error` verdict retried later), the first final one wins
 *   — the one the verdict cache settled on; with only `error` verdicts the entry says `error`;
 *   with none it says null. Neither is a success.
 * - Two non-infrastructure records of the same (iteration, instance, sample) mean a broken
 *   ledger: that throws rather than counting a sample twice.
 *
 * Entries come out in (instance_id, iteration, sample_index) order.
 */
export function poolFromRecords<T extends PoolSource>(
  trajectories: readonly T[],
  verdicts: readonly Verdict[],
  verdictKeyOf: VerdictKeyOf<T>,
): PoolEntry[] {
  const byKey = verdictIndex(verdicts);
  const entries = new Map<string, PoolEntry>();
  for (const trajectory of trajectories) {
    const entry = poolEntryOf(trajectory, byKey, verdictKeyOf);
    if (entry === null) continue; // not data: retried on resume, never a failure
    const key = trajectoryKey(entry);
    if (entries.has(key)) throw duplicateRecord(entry);
    entries.set(key, entry);
  }
  return [...entries.values()].sort(compareRefs);
}

/**
 * What a pool entry is made of: a trajectory record without its calls (a streaming reader of a
 * ledger never materialises them; see src/select/scan.ts).
 */
export type PoolSource = Pick<Trajectory, 'iteration' | 'instance_id' | 'sample_index' | 'llm_calls' | 'tokens' | 'patch' | 'outcome'>;

/**
 * A trajectory's verdict cache key. The pool hands over the sha256 of the normalised patch it has
 * just computed, so that a key function need not hash the patch a second time (it may ignore it).
 */
export type VerdictKeyOf<T> = (trajectory: T, patchHash: string) => string;

/** The verdict that counts for each cache key: the first final one, else the first one (see poolFromRecords). */
export function verdictIndex(verdicts: Iterable<Verdict>): Map<string, Verdict> {
  const byKey = new Map<string, Verdict>();
  for (const verdict of verdicts) addVerdict(byKey, verdict);
  return byKey;
}

/**
 * Adds one verdict to an index made by verdictIndex, by the same rule. `keep` says what the index
 * holds of it (the whole verdict by default; a streaming reader keeps only the outcome).
 */
export function addVerdict<I extends Pick<Verdict, 'instance_id' | 'patch_hash' | 'spec_hash' | 'outcome'>, V extends Pick<Verdict, 'outcome'> = I>(
  byKey: Map<string, V>,
  verdict: I,
  keep: (verdict: I) => V = (v) => v as unknown as V,
): void {
  const key = keyOfVerdict(verdict);
  const seen = byKey.get(key);
  if (seen === undefined || (!isFinal(seen.outcome) && isFinal(verdict.outcome))) byKey.set(key, keep(verdict));
}

/** The pool entry of one record, or null for an infrastructure error (not data). */
export function poolEntryOf<T extends PoolSource>(
  trajectory: T,
  byKey: ReadonlyMap<string, Pick<Verdict, 'outcome' | 'tampering'>>,
  verdictKeyOf: VerdictKeyOf<T>,
): PoolEntry | null {
  if (isInfrastructureError(trajectory)) return null;
  const hash = patchHash(normalizePatch(trajectory.patch));
  const verdict = byKey.get(verdictKeyOf(trajectory, hash));
  return PoolEntrySchema.parse({
    iteration: trajectory.iteration,
    instance_id: trajectory.instance_id,
    sample_index: trajectory.sample_index,
    llm_calls: trajectory.llm_calls,
    tokens_total: trajectory.tokens.prompt + trajectory.tokens.completion,
    max_example_tokens: trajectory.tokens.max_example,
    patch_hash: hash,
    outcome_status: trajectory.outcome.status,
    verdict: verdict?.outcome ?? null,
    ...(verdict?.tampering ? { tampered: true } : {}),
  });
}

/** Two non-infrastructure records of one sample: the ledger is broken. */
export function duplicateRecord(ref: TrajectoryRef): Error {
  return new Error(
    `trajectory ${ref.instance_id} #${ref.sample_index} of iteration ${ref.iteration} is recorded twice; the trajectory ledger needs a look`,
  );
}
