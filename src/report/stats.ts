import { z } from 'zod';

/** Small, pure statistics for the report: summaries, frequency tables and histogram bins. */

const Count = z.number().int().nonnegative();

/** Five-number summary plus the mean; every field is null when there are no values. */
export const SummarySchema = z.object({
  n: Count,
  min: z.number().nullable(),
  q1: z.number().nullable(),
  median: z.number().nullable(),
  q3: z.number().nullable(),
  max: z.number().nullable(),
  mean: z.number().nullable(),
});
export type Summary = z.infer<typeof SummarySchema>;

/** A summary plus how often each (integer) value occurs, ascending by value. */
export const DistributionSchema = SummarySchema.extend({
  counts: z.array(z.object({ value: z.number().int(), count: Count })),
});
export type Distribution = z.infer<typeof DistributionSchema>;

/** Equal-width bins [from, to), the first starting at or below the smallest value. */
export const HistogramSchema = z.object({
  summary: SummarySchema,
  total: z.number().nonnegative(),
  bin_width: z.number().positive().nullable(),
  bins: z.array(z.object({ from: z.number(), to: z.number(), count: Count })),
});
export type Histogram = z.infer<typeof HistogramSchema>;

/**
 * Quantile p of ascending values by linear interpolation between closest ranks (R's type 7, numpy's
 * default): position (n - 1) * p.
 */
export function quantile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const pos = (sorted.length - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  return {
    n,
    min: n === 0 ? null : sorted[0]!,
    q1: quantile(sorted, 0.25),
    median: quantile(sorted, 0.5),
    q3: quantile(sorted, 0.75),
    max: n === 0 ? null : sorted[n - 1]!,
    mean: n === 0 ? null : sorted.reduce((a, b) => a + b, 0) / n,
  };
}

/** Summary and frequency table of integer values. */
export function distribution(values: readonly number[]): Distribution {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  return {
    ...summarize(values),
    counts: [...counts.entries()].sort(([a], [b]) => a - b).map(([value, count]) => ({ value, count })),
  };
}

/** The smallest step of the form {1, 2, 2.5, 5} × 10^k with at most `maxSteps` steps across `span`. */
export function niceStep(span: number, maxSteps: number): number {
  if (!(span > 0)) return 1;
  const raw = span / Math.max(1, maxSteps);
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

/**
 * Histogram of values in equal bins [from, to) of a "nice" width (about `maxBins` of them, at most
 * two more), starting at a multiple of the width at or below the minimum. Integer data gets an
 * integer width.
 */
export function histogram(values: readonly number[], maxBins = 12): Histogram {
  const summary = summarize(values);
  const total = values.reduce((a, b) => a + b, 0);
  if (summary.n === 0) return { summary, total, bin_width: null, bins: [] };
  const min = summary.min!;
  const max = summary.max!;
  const integers = values.every((v) => Number.isInteger(v));
  let width = niceStep(max - min, maxBins);
  if (integers) width = Math.max(1, Math.ceil(width));
  const start = Math.floor(min / width) * width;
  const binCount = Math.floor((max - start) / width) + 1;
  const bins = Array.from({ length: binCount }, (_, i) => ({ from: start + i * width, to: start + (i + 1) * width, count: 0 }));
  for (const v of values) {
    const i = Math.min(binCount - 1, Math.floor((v - start) / width));
    bins[i]!.count += 1;
  }
  return { summary, total, bin_width: width, bins };
}

/** n / d, or null when d is 0. */
export function ratio(n: number, d: number): number | null {
  return d === 0 ? null : n / d;
}
