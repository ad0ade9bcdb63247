import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { bestOfN, readEvalPool } from '../orm/eval-pool.js';
import { runLayout } from './layout.js';
import { phaseCounts } from './phase-summary.js';

/** One row of the per-iteration table: what model m did in training sampling and in eval. */
export const IterationRowSchema = z.object({
  model_index: z.number().int(),
  model: z.string().nullable(),
  train: z
    .object({
      trajectories: z.number().int(),
      resolved: z.number().int(),
      successes: z.number().int(),
      empty_patch: z.number().int(),
      kept: z.number().int().nullable(),
      examples: z.number().int().nullable(),
      tokens: z.number().int().nullable(),
    })
    .nullable(),
  eval: z
    .object({
      instances: z.number().int(),
      resolved: z.number().int(),
      /** Best-of-n with the verifier: the top-scored candidate per instance (expected resolved, ties averaged). */
      best_of_n: z.object({ n: z.number().int(), instances: z.number().int(), resolved: z.number() }).nullable().default(null),
    })
    .nullable(),
});
export type IterationRow = z.infer<typeof IterationRowSchema>;

const ManifestCounts = z.looseObject({
  counts: z.looseObject({}).optional(),
});

/** Reads the ledgers of a run into the table; nothing is typed in, everything is counted. */
export function summarizeRun(runDir: string, iterations: number, cap: number | null, models: (string | null)[]): IterationRow[] {
  const rows: IterationRow[] = [];
  for (let m = 0; m <= iterations; m++) {
    const train = m < iterations ? trainSummary(runDir, m, cap) : null;
    const evalDir = runLayout.evalDir(runDir, m);
    const evalStats = existsSync(evalDir) ? resolvedOf(path.join(evalDir, 'trajectories.jsonl'), path.join(evalDir, 'verdicts.jsonl')) : null;
    rows.push({
      model_index: m,
      model: models[m] ?? null,
      train,
      eval: evalStats && evalStats.total > 0 ? { instances: evalStats.total, resolved: evalStats.resolved, best_of_n: bestOfNRow(evalDir) } : null,
    });
  }
  return rows;
}

function bestOfNRow(evalDir: string): NonNullable<IterationRow['eval']>['best_of_n'] {
  const best = bestOfN(readEvalPool(evalDir));
  return best ? { n: best.n, instances: best.instances, resolved: best.resolved } : null;
}

function trainSummary(runDir: string, k: number, cap: number | null): IterationRow['train'] {
  const file = runLayout.trajectories(runDir, k);
  if (!existsSync(file)) return null;
  const stats = resolvedOf(file, runLayout.verdicts(runDir, k));
  const manifestFile = path.join(runLayout.datasetDir(runDir, k, cap), 'manifest.json');
  let kept: number | null = null;
  let examples: number | null = null;
  let tokens: number | null = null;
  if (existsSync(manifestFile)) {
    const manifest = ManifestCounts.parse(JSON.parse(readFileSync(manifestFile, 'utf8'))) as { counts?: Record<string, unknown>; tokens?: Record<string, unknown> };
    kept = numberOr(manifest.counts?.kept ?? manifest.counts?.kept_after_cap);
    examples = numberOr(manifest.counts?.examples);
    tokens = numberOr(manifest.tokens?.total);
  }
  return { trajectories: stats.total, resolved: stats.resolved, successes: stats.successes, empty_patch: stats.emptyPatch, kept, examples, tokens };
}

function resolvedOf(trajectoriesFile: string, verdictsFile: string): { total: number; resolved: number; successes: number; emptyPatch: number } {
  // The phase's kept summary when its ledgers have not changed since (phase-summary.ts).
  const c = phaseCounts(trajectoriesFile, verdictsFile);
  return { total: c.trajectories, resolved: c.resolved, successes: c.successes, emptyPatch: c.empty_patch };
}

function numberOr(value: unknown): number | null {
  return typeof value === 'number' ? value : null;
}

function num(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(2);
}

function pct(n: number, d: number): string {
  return d === 0 ? '-' : `${((100 * n) / d).toFixed(1)}%`;
}

/** The table the demo ends with: resolve rate rising (or not) across iterations. */
export function formatTable(rows: readonly IterationRow[], cap: number | null): string {
  const header = ['model', 'name', 'train resolved', 'successes', `kept (cap ${cap ?? 'none'})`, 'examples', 'tokens', 'empty patch', 'eval resolved'];
  const body = rows.map((r) => [
    `M${r.model_index}`,
    r.model ?? '-',
    r.train ? `${r.train.resolved}/${r.train.trajectories} (${pct(r.train.resolved, r.train.trajectories)})` : '-',
    r.train ? String(r.train.successes) : '-',
    r.train?.kept != null ? String(r.train.kept) : '-',
    r.train?.examples != null ? String(r.train.examples) : '-',
    r.train?.tokens != null ? String(r.train.tokens) : '-',
    r.train ? pct(r.train.empty_patch, r.train.trajectories) : '-',
    r.eval?.best_of_n
      ? `${num(r.eval.best_of_n.resolved)}/${r.eval.best_of_n.instances} (${pct(r.eval.best_of_n.resolved, r.eval.best_of_n.instances)}) best of ${r.eval.best_of_n.n} (verifier pick); mean over samples ${pct(r.eval.resolved, r.eval.instances)}`
      : r.eval
        ? `${r.eval.resolved}/${r.eval.instances} (${pct(r.eval.resolved, r.eval.instances)})`
        : '-',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}
