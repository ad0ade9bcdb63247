import { z } from 'zod';
import type { Environment } from './environment.js';
import { REJECTIONS, type Rejection } from './judge.js';
import type { CandidateRecord, TraceRecord } from './records.js';

/** Yield of a synth run (`<out>.report.json`): candidates, tasks and rejections by reason, per strategy and per repository. */
const CountsSchema = z.object({
  candidates: z.number().int(),
  valid: z.number().int(),
  rejected: z.record(z.string(), z.number().int()),
  /** Seconds of validation (test runs and image builds) per valid task. */
  seconds_per_valid: z.number().nullable(),
});
export const YieldReportSchema = z.object({
  total: CountsSchema,
  by_strategy: z.record(z.string(), CountsSchema),
  by_repository: z.record(z.string(), CountsSchema),
  /** Seconds spent tracing, per environment. */
  trace_seconds: z.record(z.string(), z.number()),
  /** Seconds of tracing and validation per valid task. */
  seconds_per_valid_task: z.number().nullable(),
  env_errors: z.array(z.object({ env: z.string(), error: z.string() })),
});
export type YieldReport = z.infer<typeof YieldReportSchema>;
type Counts = z.infer<typeof CountsSchema>;

function count(records: readonly CandidateRecord[]): Counts {
  const rejected: Partial<Record<Rejection, number>> = {};
  let seconds = 0;
  for (const r of records) {
    seconds += r.seconds;
    if (!r.outcome.valid) rejected[r.outcome.reason] = (rejected[r.outcome.reason] ?? 0) + 1;
  }
  const valid = records.filter((r) => r.outcome.valid).length;
  return {
    candidates: records.length,
    valid,
    rejected: Object.fromEntries(REJECTIONS.filter((k) => rejected[k]).map((k) => [k, rejected[k]!])),
    seconds_per_valid: valid > 0 ? round(seconds / valid) : null,
  };
}

const round = (x: number) => Math.round(x * 10) / 10;

function groupBy(records: readonly CandidateRecord[], key: (r: CandidateRecord) => string): Record<string, Counts> {
  const groups = new Map<string, CandidateRecord[]>();
  for (const r of records) (groups.get(key(r)) ?? groups.set(key(r), []).get(key(r))!).push(r);
  return Object.fromEntries([...groups.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, rs]) => [k, count(rs)]));
}

export function yieldReport(envs: readonly Environment[], traces: readonly TraceRecord[], records: readonly CandidateRecord[], errors: YieldReport['env_errors']): YieldReport {
  const repoOf = new Map(envs.map((e) => [e.id, e.source.repo]));
  const total = count(records);
  const traceSeconds = traces.reduce((s, t) => s + t.seconds, 0);
  const validationSeconds = records.reduce((s, r) => s + r.seconds, 0);
  return {
    total,
    by_strategy: groupBy(records, (r) => r.strategy),
    by_repository: groupBy(records, (r) => repoOf.get(r.env) ?? r.env),
    trace_seconds: Object.fromEntries(traces.map((t) => [t.env, round(t.seconds)])),
    seconds_per_valid_task: total.valid > 0 ? round((traceSeconds + validationSeconds) / total.valid) : null,
    env_errors: errors,
  };
}

/** The report as a few lines of text (printed at the end of a run). */
export function formatYieldReport(report: YieldReport): string {
  const line = (name: string, c: Counts) =>
    `  ${name.padEnd(28)} ${String(c.candidates).padStart(6)} ${String(c.valid).padStart(6)}  ${c.seconds_per_valid === null ? '     -' : c.seconds_per_valid.toFixed(1).padStart(6)}  ${Object.entries(c.rejected)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`;
  const header = `  ${''.padEnd(28)} ${'tried'.padStart(6)} ${'valid'.padStart(6)}  ${'s/task'.padStart(6)}  rejected`;
  return [
    'yield by strategy:',
    header,
    ...Object.entries(report.by_strategy).map(([k, c]) => line(k, c)),
    'yield by repository:',
    header,
    ...Object.entries(report.by_repository).map(([k, c]) => line(k, c)),
    line('total', report.total),
    `seconds per valid task (tracing included): ${report.seconds_per_valid_task ?? '-'}`,
    ...report.env_errors.map((e) => `environment ${e.env} failed: ${e.error}`),
  ].join('\n');
}
