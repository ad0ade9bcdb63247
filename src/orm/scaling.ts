import { z } from 'zod';

/**
 * Inference-time scaling from one pool of n candidates per instance (design §11): pure functions.
 *
 * - pass@k: the chance that at least one of k candidates drawn without replacement from the n is
 *   resolved — the unbiased estimator 1 − C(n−c, k)/C(n, k) of Chen et al. (2021), an oracle
 *   picker's resolve rate.
 * - best@k: the expected resolved share of the TOP-SCORED candidate among k drawn without
 *   replacement from the n, computed exactly from the candidates' score ranks (no resampling).
 *   Tied scores: the pick among the tied candidates in the draw is uniform, so a tie group
 *   counts with its mean resolved share.
 * - random@k: a uniformly random one of the k: c/n for every k (the flat baseline).
 *
 * Ratios of binomial coefficients are taken as products of factors ≤ 1, never as the
 * coefficients themselves: C(100, 50) overflows nothing here, and nothing loses precision to a
 * difference of huge numbers.
 */

/** C(m, k) / C(n, k) for 0 ≤ k ≤ n, m ≤ n: the chance that k drawn from n all fall in a given m. */
export function chooseRatio(m: number, n: number, k: number): number {
  if (!Number.isInteger(m) || !Number.isInteger(n) || !Number.isInteger(k) || k < 0 || n < 0 || m > n || k > n) {
    throw new RangeError(`chooseRatio(${m}, ${n}, ${k}): need whole numbers with 0 ≤ k ≤ n and m ≤ n`);
  }
  if (m < k) return 0;
  let ratio = 1;
  for (let j = 0; j < k; j++) ratio *= (m - j) / (n - j);
  return ratio;
}

function checkK(n: number, k: number): void {
  if (!Number.isInteger(k) || k < 1 || k > n) throw new RangeError(`k = ${k} must be a whole number from 1 to n = ${n}`);
}

/** pass@k of one instance with c resolved among n candidates: 1 − C(n−c, k)/C(n, k). */
export function passAtK(n: number, c: number, k: number): number {
  checkK(n, k);
  if (!Number.isInteger(c) || c < 0 || c > n) throw new RangeError(`c = ${c} resolved must be between 0 and n = ${n}`);
  return 1 - chooseRatio(n - c, n, k);
}

/** random@k of one instance: the expected resolved share of a uniformly random one of k drawn (= c/n). */
export function randomAtK(n: number, c: number, k: number): number {
  checkK(n, k);
  return c / n;
}

export interface ScoredCandidate {
  score: number;
  resolved: boolean;
}

/**
 * best@k of one instance: the expected resolved share of the top-scored of k candidates drawn
 * uniformly without replacement from these n. With the candidates grouped by equal score and h
 * of them scored higher than a group of g, the draw's top score is the group's with chance
 * [C(n−h, k) − C(n−h−g, k)] / C(n, k) (no higher one drawn, at least one of the group drawn),
 * and then the pick is uniform over the group's members (by symmetry), so the group adds its
 * resolved share times that chance.
 */
export function bestAtK(candidates: readonly ScoredCandidate[], k: number): number {
  const n = candidates.length;
  checkK(n, k);
  for (const c of candidates) if (!Number.isFinite(c.score)) throw new RangeError(`a score must be a finite number, got ${c.score}`);
  const sorted = [...candidates].sort((a, b) => b.score - a.score);
  let expected = 0;
  let higher = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    let resolved = 0;
    while (j < n && sorted[j]!.score === sorted[i]!.score) {
      if (sorted[j]!.resolved) resolved += 1;
      j += 1;
    }
    const size = j - i;
    if (resolved > 0) {
      const topHere = chooseRatio(n - higher, n, k) - chooseRatio(n - higher - size, n, k);
      expected += (resolved / size) * topHere;
    }
    higher += size;
    i = j;
  }
  return expected;
}

/** The k of a curve: 1, 2, 4, … up to n, and n itself. */
export function scalingKs(n: number): number[] {
  const ks: number[] = [];
  for (let k = 1; k <= n; k *= 2) ks.push(k);
  if (n >= 1 && ks.at(-1) !== n) ks.push(n);
  return ks;
}

export const ScalingPointSchema = z.object({
  k: z.number().int().positive(),
  /** Instances with at least k candidates: the ones averaged at this k. */
  instances: z.number().int().nonnegative(),
  pass: z.number().min(0).max(1),
  /** null when the candidates carry no scores. */
  best: z.number().min(0).max(1).nullable(),
  random: z.number().min(0).max(1),
});
export type ScalingPoint = z.infer<typeof ScalingPointSchema>;

export interface InstanceCandidates {
  instance_id: string;
  /** Every candidate of the instance; score null when unscored. */
  candidates: ReadonlyArray<{ score: number | null; resolved: boolean }>;
}

/**
 * The curves over instances (each instance weighs the same, as a resolve rate does): at each k,
 * the mean over the instances with at least k candidates. best is null unless every candidate of
 * those instances is scored.
 */
export function scalingCurve(instances: readonly InstanceCandidates[]): ScalingPoint[] {
  const n = Math.max(0, ...instances.map((i) => i.candidates.length));
  return scalingKs(n).map((k) => {
    const at = instances.filter((i) => i.candidates.length >= k);
    const mean = (f: (i: InstanceCandidates) => number) => (at.length === 0 ? 0 : at.reduce((t, i) => t + f(i), 0) / at.length);
    const scored = at.every((i) => i.candidates.every((c) => c.score !== null));
    const resolved = (i: InstanceCandidates) => i.candidates.filter((c) => c.resolved).length;
    return {
      k,
      instances: at.length,
      pass: clamp01(mean((i) => passAtK(i.candidates.length, resolved(i), k))),
      best: scored && at.length > 0 ? clamp01(mean((i) => bestAtK(i.candidates.map((c) => ({ score: c.score!, resolved: c.resolved })), k))) : null,
      random: clamp01(mean((i) => randomAtK(i.candidates.length, resolved(i), k))),
    };
  });
}

/** Float sums may land a hair outside [0, 1]. */
function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}
