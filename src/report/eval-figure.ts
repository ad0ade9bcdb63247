import type { RunReport } from './data.js';
import { countOf, modelLabel, num, pct } from './format.js';

/**
 * The one figure each view reports for the eval of model M_m, and its label: under best-of-n
 * (the eval pool scored by the verifier) the top-scored candidate per instance, else the resolved
 * share of the samples (their mean). The chart, the resolve-rate table, the report's headline and
 * `rft report`'s summary all take it from here, so they show the same number named the same way.
 */
export interface EvalFigure {
  model_index: number;
  /** The reported resolve rate. */
  rate: number | null;
  /** What `rate` is: "best of 4 (verifier pick)" or "mean over samples". */
  label: string;
  /** Best-of-n only: n, and the resolved share of all the samples, shown beside it. */
  n: number | null;
  mean: number | null;
  /** Best-of-n only: expected resolved instances (ties averaged) of how many. */
  resolved: number | null;
  instances: number | null;
}

export const MEAN_LABEL = 'mean over samples';

export function evalFigure(run: RunReport, m: number): EvalFigure | null {
  const stats = run.eval.find((e) => e.model_index === m);
  if (!stats) return null;
  const curve = run.scaling.find((c) => c.model_index === m && c.best_of_n !== null);
  if (!curve) return { model_index: m, rate: stats.resolve_rate, label: MEAN_LABEL, n: null, mean: stats.resolve_rate, resolved: null, instances: null };
  return {
    model_index: m,
    rate: curve.best_of_n!.rate,
    label: `best of ${curve.samples_per_instance} (verifier pick)`,
    n: curve.samples_per_instance,
    mean: stats.resolve_rate,
    resolved: curve.best_of_n!.resolved,
    instances: curve.instances,
  };
}

/** "M0 77.8% → M1 100.0% (best of 4 (verifier pick); mean over samples 41.7% → 52.8%)", or null without evals. */
export function evalHeadline(run: RunReport): string | null {
  const figures = run.eval.map((s) => evalFigure(run, s.model_index)!);
  if (figures.length === 0) return null;
  const labels = [...new Set(figures.map((f) => f.label))];
  const chain = figures.map((f) => `${modelLabel(f.model_index)} ${pct(f.rate)}${labels.length > 1 ? ` (${f.label})` : ''}`).join(' → ');
  const best = figures.some((f) => f.n !== null);
  const mean = best ? `; ${MEAN_LABEL} ${figures.map((f) => pct(f.mean)).join(' → ')}` : '';
  return labels.length > 1 ? `${chain}${mean}` : `${chain} (${labels[0]}${mean})`;
}

/** The table's cell: "1/2 (50.0%) best of 2 (verifier pick); mean over samples 50.0%", or the resolved samples. */
export function evalCell(f: EvalFigure, resolved: number, samples: number): string {
  if (f.n === null) return countOf(resolved, samples);
  return `${num(f.resolved!, 2)}/${f.instances} (${pct(f.rate)}) ${f.label}; ${MEAN_LABEL} ${pct(f.mean)}`;
}
