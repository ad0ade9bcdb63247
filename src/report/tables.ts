import type { CallsByOutcome, DatasetReport, ReportData, RolloutStats, RunReport } from './data.js';
import { capName, countOf, DASH, modelLabel, num, pct, seconds, temperatureLabel } from './format.js';
import { evalCell, evalFigure } from './eval-figure.js';
import type { Distribution } from './stats.js';

/**
 * The report's tables as plain text cells, built once from ReportData and rendered by both the
 * Markdown and the HTML renderer, so the two files always show the same numbers. Pure.
 */
export interface Table {
  /** Stable id (HTML id, test hook). */
  id: string;
  caption: string | null;
  headers: string[];
  /** Per column: numbers are right-aligned. */
  align: Array<'left' | 'right'>;
  rows: string[][];
}

function table(id: string, caption: string | null, columns: Array<[string, 'left' | 'right']>, rows: string[][]): Table {
  return { id, caption, headers: columns.map(([h]) => h), align: columns.map(([, a]) => a), rows };
}

const L = 'left' as const;
const R = 'right' as const;

export function runsTable(data: ReportData): Table {
  return table(
    'runs',
    null,
    [
      ['run', L],
      ['folder', L],
      ['policy', L],
      ['trainer', L],
      ['iterations', R],
      ['samples / task', R],
      ['train T', R],
      ['eval T', R],
      ['cap', R],
      ['SFT unit', L],
      ['max tokens', R],
    ],
    data.runs.map((r) => [
      r.label,
      r.dir,
      `${r.models[0] ?? DASH}${r.simulated_policy ? ' (SIMULATED policy)' : ''}`,
      `${r.settings.finetune_backend}${r.simulated_trainer ? ' (SIMULATED trainer)' : ''}`,
      String(r.settings.iterations),
      String(r.settings.samples_per_task),
      num(r.settings.temperature, 2),
      r.settings.eval_temperature === null ? DASH : num(r.settings.eval_temperature, 2),
      capName(r.settings.cap),
      `${r.settings.unit}${r.settings.accumulate ? ' (accumulated)' : ''}`,
      String(r.settings.max_tokens),
    ]),
  );
}

/** The model indices a run has anything for: 0 .. the last model named or rolled out. */
export function modelIndices(run: RunReport): number[] {
  const last = Math.max(run.models.length - 1, ...run.train.map((t) => t.model_index), ...run.eval.map((e) => e.model_index));
  return Array.from({ length: last + 1 }, (_, i) => i);
}

export function resolveRateTable(data: ReportData): Table {
  const rows: string[][] = [];
  for (const run of data.runs) {
    for (const m of modelIndices(run)) {
      const train = run.train.find((t) => t.model_index === m);
      const evalStats = run.eval.find((e) => e.model_index === m);
      if (!train && !evalStats && run.models[m] == null) continue;
      rows.push([
        run.label,
        `${modelLabel(m)}${m === 0 ? ' (zero-shot)' : ''}`,
        run.models[m] ?? DASH,
        train ? `${countOf(train.resolved, train.samples)}` : DASH,
        train ? temperatureLabel(train.temperatures, run.settings.temperature) : DASH,
        train ? String(train.successes) : DASH,
        evalStats ? evalCell(evalFigure(run, m)!, evalStats.resolved, evalStats.samples) : DASH,
        evalStats ? temperatureLabel(evalStats.temperatures, run.settings.eval_temperature) : DASH,
      ]);
    }
  }
  return table(
    'resolve-rate',
    'Resolve rate per model. Train: the N samples per task drawn from M_k at temperature T (iteration k); eval: M_m on the eval set. M0 eval is the zero-shot point.',
    [
      ['run', L],
      ['model', L],
      ['name', L],
      ['train resolved', R],
      ['train T', R],
      ['train successes (finished + resolved)', R],
      ['eval resolved', R],
      ['eval T', R],
    ],
    rows,
  );
}

export function successCountTables(data: ReportData): Table[] {
  return data.runs.flatMap((run, i) => {
    if (run.success_counts.length === 0) return [];
    const n = Math.max(...run.success_counts.map((s) => s.samples_per_instance));
    const columns: Array<[string, 'left' | 'right']> = [['iteration', L], ['instances', R], ...Array.from({ length: n + 1 }, (_, s) => [`${s}/${n}`, R] as [string, 'right'])];
    return [
      table(
        `success-counts-${i}`,
        `${run.label}: instances by how many of their ${n} samples succeeded (finished and resolved)`,
        columns,
        run.success_counts.map((s) => [`iter-${s.iteration} (${modelLabel(s.iteration)})`, String(s.instances), ...Array.from({ length: n + 1 }, (_, k) => String(s.bins[k]?.instances ?? 0))]),
      ),
    ];
  });
}

function summaryCells(d: Distribution): string[] {
  return [String(d.n), num(d.min), num(d.q1, 2), num(d.median, 2), num(d.q3, 2), num(d.max), num(d.mean, 2)];
}

export function callsSummaryTable(data: ReportData): Table {
  const rows = data.runs.flatMap((run) =>
    run.llm_calls.flatMap((c) => [
      [run.label, `iter-${c.iteration}`, 'success', ...summaryCells(c.success)],
      [run.label, `iter-${c.iteration}`, 'failure', ...summaryCells(c.failure)],
    ]),
  );
  return table(
    'llm-calls',
    'LLM calls per trajectory of the train samples: successes (finished and resolved) vs failures (any other final verdict). Quartiles interpolate linearly.',
    [
      ['run', L],
      ['iteration', L],
      ['outcome', L],
      ['trajectories', R],
      ['min', R],
      ['q1', R],
      ['median', R],
      ['q3', R],
      ['max', R],
      ['mean', R],
    ],
    rows,
  );
}

/** The calls histogram as a table: trajectories per number of calls (Markdown's stand-in for the chart). */
export function callsFrequencyTable(run: RunReport, calls: CallsByOutcome, id: string): Table {
  const values = [...new Set([...calls.success.counts, ...calls.failure.counts].map((c) => c.value))].sort((a, b) => a - b);
  const at = (d: Distribution, v: number) => String(d.counts.find((c) => c.value === v)?.count ?? 0);
  return table(
    id,
    `${run.label}, iter-${calls.iteration}: trajectories by LLM calls`,
    [
      ['LLM calls', R],
      ['successes', R],
      ['failures', R],
    ],
    values.map((v) => [String(v), at(calls.success, v), at(calls.failure, v)]),
  );
}

function datasetName(d: DatasetReport): string {
  return `${d.folder}${d.trained_on ? ' (trained on)' : ''}`;
}

/** "cap-2 (trained on)": the folder's own name under iter-k/datasets/. */
function datasetShortName(d: DatasetReport): string {
  return `${d.folder.split(/[\\/]/).pop() ?? d.folder}${d.trained_on ? ' (trained on)' : ''}`;
}

/** "iter-1", or "iter-1 (from 0, 1)" for a dataset that accumulates iterations. */
function datasetIterations(d: DatasetReport): string {
  const own = d.iterations_included.length === 1 && d.iterations_included[0] === d.iteration;
  return own ? `iter-${d.iteration}` : `iter-${d.iteration} (from ${d.iterations_included.join(', ')})`;
}

export function tokensSummaryTable(data: ReportData): Table {
  const rows = data.runs.flatMap((run) =>
    run.datasets.map((d) => {
      const s = d.example_tokens?.summary;
      return [
        run.label,
        datasetName(d),
        String(d.manifest.examples),
        s ? num(s.min) : DASH,
        s ? num(s.median, 1) : DASH,
        num(d.manifest.mean_tokens_per_example, 1),
        num(d.manifest.max_tokens_per_example),
        String(d.manifest.tokens_total),
        String(d.max_tokens),
        String(d.manifest.over_max_tokens),
      ];
    }),
  );
  return table(
    'tokens',
    'Tokens per SFT example (tokens.per_call of the kept trajectories\' valid calls, counted when each trajectory was written). Mean, max and total are the manifest\'s.',
    [
      ['run', L],
      ['dataset', L],
      ['examples', R],
      ['min', R],
      ['median', R],
      ['mean', R],
      ['max', R],
      ['total', R],
      ['max_tokens', R],
      ['dropped over max_tokens', R],
    ],
    rows,
  );
}

export function tokensBinsTable(run: RunReport, d: DatasetReport, id: string): Table {
  return table(
    id,
    `${run.label}, ${d.folder}: SFT examples by tokens`,
    [
      ['tokens', L],
      ['examples', R],
    ],
    (d.example_tokens?.bins ?? []).map((b) => [`${num(b.from)}–${num(b.to)}`, String(b.count)]),
  );
}

function rolloutName(r: RolloutStats): string {
  return r.kind === 'train' ? `iter-${r.model_index} train (${modelLabel(r.model_index)})` : `eval ${modelLabel(r.model_index)}`;
}

export function ratesTable(data: ReportData): Table {
  const rows = data.runs.flatMap((run) =>
    [...run.train, ...run.eval].map((r) => [
      run.label,
      rolloutName(r),
      String(r.samples),
      `${r.empty_patch} (${pct(r.empty_patch_rate)})`,
      `${r.model_errors} (${pct(r.model_error_rate)})`,
      `${r.verdict_errors}/${r.verdict_records} (${pct(r.verdict_error_rate)})`,
      String(r.repeated_errors),
      String(r.infrastructure_records),
      String(r.unverified),
    ]),
  );
  return table(
    'rates',
    'Empty patches and errors per rollout. Model errors: trajectories that ended in an error blamed on the model (limits, retries exhausted), over the samples. Verdict errors: verdict records of outcome `error` (the harness failed; retried), over all verdict records. Final after repeated errors: samples whose patch the harness failed on sandbox.max_error_attempts times, recorded as final (`repeated_error`) and counted as unresolved. Infrastructure records: trajectory records of endpoint failures (not data; retried).',
    [
      ['run', L],
      ['rollout', L],
      ['samples', R],
      ['empty patch', R],
      ['model errors', R],
      ['verdict errors', R],
      ['final after repeated errors', R],
      ['infrastructure records', R],
      ['without final verdict', R],
    ],
    rows,
  );
}

export function capComparisonTable(data: ReportData): Table {
  const rows = data.runs.flatMap((run) =>
    run.datasets.map((d) => {
      const c = d.comparison;
      return [
        run.label,
        datasetIterations(d),
        datasetShortName(d),
        capName(d.cap),
        d.dedup ? 'yes' : 'no',
        String(d.manifest.kept),
        `${d.manifest.tampered} / ${d.manifest.tampering_dropped}`,
        String(d.manifest.examples),
        `${d.manifest.instances_covered}/${d.manifest.instances_with_success}`,
        num(d.manifest.mean_llm_calls, 2),
        `${num(d.manifest.mean_tokens_per_example, 1)} / ${num(d.manifest.max_tokens_per_example)}`,
        c ? `${num(c.mean_tokens, 1)} / ${num(c.max_tokens)}` : DASH,
        c ? `${pct(c.easiest_share)} (${c.easiest_instances} inst.)` : DASH,
      ];
    }),
  );
  return table(
    'cap-comparison',
    'Every dataset folder under iter-*/datasets/. Counts are the manifests\'; per-trajectory tokens and the easiest share are recomputed from the pool (src/select/compare.ts): the share of examples that come from the 20% of instances with the most successes.',
    [
      ['run', L],
      ['iteration', L],
      ['dataset', L],
      ['cap', R],
      ['dedup', L],
      ['trajectories kept', R],
      ['resolved with tampering / dropped', R],
      ['examples', R],
      ['instances covered / with success', R],
      ['mean LLM calls', R],
      ['tokens / example: mean / max', R],
      ['tokens / trajectory: mean / max', R],
      ['easiest-20% share', R],
    ],
    rows,
  );
}

export function finetuneTable(data: ReportData): Table {
  const rows = data.runs.flatMap((run) =>
    run.finetunes.map((f) => [
      run.label,
      `iter-${f.iteration}`,
      String(f.attempt),
      f.backend,
      f.base_model,
      f.output_model ?? DASH,
      f.status,
      seconds(f.duration_s),
      f.error ?? DASH,
    ]),
  );
  return table(
    'finetunes',
    'Fine-tune jobs (iter-*/finetune/finetune.json and failed attempts set aside). Iteration k trains M_k+1.',
    [
      ['run', L],
      ['iteration', L],
      ['attempt', R],
      ['backend', L],
      ['base model', L],
      ['output model', L],
      ['status', L],
      ['duration', R],
      ['error', L],
    ],
    rows,
  );
}

export function warningsOf(data: ReportData): string[] {
  return data.runs.flatMap((run) => [
    ...run.warnings.map((w) => `${run.label}: ${w}`),
    ...run.datasets.flatMap((d) => d.problems.map((p) => `${run.label}: ${d.folder}: ${p}`)),
  ]);
}
