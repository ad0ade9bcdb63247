import type { ReportData, RunReport } from './data.js';
import { evalFigure, evalHeadline, MEAN_LABEL } from './eval-figure.js';
import { capName, modelLabel, num, pct, temperatureLabel } from './format.js';
import { htmlDocument } from './page.js';
import { scalingCharts, scalingTable } from './scaling.js';
import { barChart, escapeHtml, FAILURE_COLOR, histogramChart, lineChart, PALETTE, SUCCESS_COLOR, type LineSeries } from './svg.js';
import {
  callsSummaryTable,
  capComparisonTable,
  finetuneTable,
  ratesTable,
  resolveRateTable,
  runsTable,
  successCountTables,
  tokensSummaryTable,
  warningsOf,
  type Table,
} from './tables.js';

/**
 * report.html: one self-contained page (inline CSS, inline SVG drawn by svg.ts, no script, no
 * external resource — the Content-Security-Policy forbids loading any). Pure: data → string.
 * Every string from the data is escaped.
 */

const e = escapeHtml;

export function htmlTable(t: Table, cellClass?: (column: string, text: string) => string | null): string {
  const head = t.headers.map((h, i) => `<th class="${t.align[i] === 'right' ? 'num' : ''}" scope="col">${e(h)}</th>`).join('');
  const body =
    t.rows.length === 0
      ? `<tr><td colspan="${t.headers.length}" class="empty">none</td></tr>`
      : t.rows
          .map(
            (row) =>
              `<tr>${row
                .map((cell, i) => {
                  const classes = [t.align[i] === 'right' ? 'num' : '', cellClass?.(t.headers[i]!, cell) ?? ''].filter(Boolean).join(' ');
                  return `<td${classes ? ` class="${e(classes)}"` : ''}>${e(cell)}</td>`;
                })
                .join('')}</tr>`,
          )
          .join('');
  const caption = t.caption ? `<caption>${e(t.caption)}</caption>` : '';
  return `<div class="table-wrap"><table id="${e(t.id)}">${caption}<thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}

function colorOf(runIndex: number): string {
  return PALETTE[runIndex % PALETTE.length]!;
}

function figure(svg: string, caption: string, wide = false): string {
  return `<figure class="${wide ? 'wide' : 'small'}">${svg}<figcaption>${e(caption)}</figcaption></figure>`;
}

function noData(text: string): string {
  return `<p class="no-data">${e(text)}</p>`;
}

function resolveRateChart(data: ReportData): string {
  const series: LineSeries[] = [];
  const several = data.runs.length > 1;
  let maxIndex = 0;
  data.runs.forEach((run, i) => {
    const prefix = several ? `${run.label} · ` : '';
    // The eval's reported figure (best of n when the pool was scored), as the table and headline give it.
    const figures = run.eval.map((s) => ({ s, f: evalFigure(run, s.model_index)! })).filter((x) => x.f.rate !== null);
    const evalPoints = figures.map(({ s, f }) => ({
      x: s.model_index,
      y: 100 * f.rate!,
      label: pct(f.rate),
      title: `${run.label}: eval of ${modelLabel(s.model_index)} (${run.models[s.model_index] ?? '?'}): ${pct(f.rate)} ${f.label}${f.n !== null ? `; ${MEAN_LABEL} ${pct(f.mean)}` : ''} (${s.resolved}/${s.samples} samples resolved)`,
    }));
    const scored = figures.filter((x) => x.f.n !== null);
    const meanPoints = scored.map(({ s, f }) => ({
      x: s.model_index,
      y: 100 * f.mean!,
      label: pct(f.mean),
      title: `${run.label}: eval of ${modelLabel(s.model_index)}: ${MEAN_LABEL} ${s.resolved}/${s.samples} (${pct(f.mean)})`,
    }));
    const evalLabels = [...new Set(figures.map((x) => x.f.label))];
    const evalName = evalLabels.length === 1 ? evalLabels[0]! : `best of n where scored, else ${MEAN_LABEL}`;
    const trainPoints = run.train
      .filter((s) => s.resolve_rate !== null)
      .map((s) => ({
        x: s.model_index,
        y: 100 * s.resolve_rate!,
        label: pct(s.resolve_rate),
        title: `${run.label}: train samples of ${modelLabel(s.model_index)} (${run.models[s.model_index] ?? '?'}): ${s.resolved}/${s.samples} resolved (${pct(s.resolve_rate)})`,
      }));
    const evalT = temperatureLabel(run.eval.flatMap((s) => s.temperatures).filter((t, j, all) => all.indexOf(t) === j), run.settings.eval_temperature);
    const trainT = temperatureLabel(run.train.flatMap((s) => s.temperatures).filter((t, j, all) => all.indexOf(t) === j), run.settings.temperature);
    // One run: a colour per kind; several: a colour per run, the kind told by the line style.
    if (evalPoints.length > 0) series.push({ name: `${prefix}eval of M_m: ${evalName} (${evalT})`, color: colorOf(i), dashed: false, points: evalPoints });
    if (meanPoints.length > 0) series.push({ name: `${prefix}eval of M_m: ${MEAN_LABEL}`, color: colorOf(i), dashed: true, strokeWidth: 1, points: meanPoints });
    if (trainPoints.length > 0) series.push({ name: `${prefix}train samples of M_k (${trainT})`, color: several ? colorOf(i) : colorOf(1), dashed: true, points: trainPoints });
    maxIndex = Math.max(maxIndex, run.models.length - 1, ...run.eval.map((s) => s.model_index), ...run.train.map((s) => s.model_index));
  });
  if (series.length === 0) return noData('No rollout has a verdict yet.');
  return figure(
    lineChart({
      chart: 'resolve-rate',
      title: 'Resolve rate per model',
      xLabel: 'model index (M0 = base model: its eval is the zero-shot point)',
      yLabel: 'resolved (%)',
      xValues: Array.from({ length: maxIndex + 1 }, (_, m) => m),
      xTick: (m) => modelLabel(m),
      yUnit: '%',
      yLimit: 100,
      series,
    }),
    'Solid: eval of M_m, the figure the table and headline report (best of n: the verifier\'s top-scored candidate per instance, when the eval pool was scored; else the resolved share of the eval samples). Thin dashed: the eval\'s mean over samples beside a best-of-n line. Dashed: the training samples drawn from M_k in iteration k. Hover a point for the counts.',
    true,
  );
}

function successCharts(data: ReportData): string {
  const figures = data.runs.flatMap((run, i) =>
    run.success_counts.map((s) =>
      figure(
        barChart({
          chart: 'success-count',
          title: `${run.label}, iter-${s.iteration}: successes per instance`,
          xLabel: `successful samples of ${s.samples_per_instance}`,
          yLabel: 'instances',
          categories: s.bins.map((b) => String(b.successes)),
          series: [{ name: 'instances', color: colorOf(i), values: s.bins.map((b) => b.instances) }],
          legend: false,
        }),
        `${run.label} · iter-${s.iteration} (${modelLabel(s.iteration)}): ${s.instances} instances`,
      ),
    ),
  );
  return figures.length === 0 ? noData('No train samples yet.') : `<div class="grid">${figures.join('')}</div>`;
}

function callsCharts(data: ReportData): string {
  const figures = data.runs.flatMap((run) =>
    run.llm_calls.map((c) => {
      const values = [...c.success.counts, ...c.failure.counts].map((v) => v.value);
      if (values.length === 0) return '';
      const lo = Math.min(...values);
      const hi = Math.max(...values);
      const categories = Array.from({ length: hi - lo + 1 }, (_, k) => lo + k);
      const at = (counts: typeof c.success.counts, v: number) => counts.find((x) => x.value === v)?.count ?? 0;
      return figure(
        barChart({
          chart: 'llm-calls',
          title: `${run.label}, iter-${c.iteration}: LLM calls per trajectory`,
          xLabel: 'LLM calls in the trajectory',
          yLabel: 'trajectories',
          categories: categories.map(String),
          series: [
            { name: `successes (n=${c.success.n}, median ${num(c.success.median)})`, color: SUCCESS_COLOR, values: categories.map((v) => at(c.success.counts, v)) },
            { name: `failures (n=${c.failure.n}, median ${num(c.failure.median)})`, color: FAILURE_COLOR, values: categories.map((v) => at(c.failure.counts, v)) },
          ],
          legend: true,
        }),
        `${run.label} · iter-${c.iteration} (${modelLabel(c.iteration)})`,
      );
    }),
  ).filter(Boolean);
  return figures.length === 0 ? noData('No verified train samples yet.') : `<div class="grid">${figures.join('')}</div>`;
}

function tokenCharts(data: ReportData): string {
  const figures = data.runs.flatMap((run, i) =>
    run.datasets.map((d) => {
      const h = d.example_tokens;
      if (!h || h.bins.length === 0) return '';
      return figure(
        histogramChart({
          chart: 'tokens',
          title: `${run.label}, ${d.folder}: tokens per SFT example`,
          xLabel: 'tokens per example',
          yLabel: 'examples',
          bins: h.bins,
          color: colorOf(i),
          marker: { x: d.max_tokens, label: `max_tokens ${d.max_tokens}` },
        }),
        `${run.label} · ${d.folder} (cap ${capName(d.cap)}${d.trained_on ? ', trained on' : ''}): ${h.summary.n} examples, median ${num(h.summary.median)}, max ${num(h.summary.max)} (limit ${d.max_tokens})`,
      );
    }),
  ).filter(Boolean);
  return figures.length === 0 ? noData('No dataset with examples yet.') : `<div class="grid">${figures.join('')}</div>`;
}

function rateCharts(data: ReportData): string {
  // Drawn widest first, so a rate that equals another (often both 0) still shows under it.
  const metrics: Array<{ name: string; color: string; width: number; pick: (r: RunReport['train'][number]) => number | null; count: (r: RunReport['train'][number]) => string }> = [
    { name: 'empty patch', color: '#f28e2b', width: 7, pick: (r) => r.empty_patch_rate, count: (r) => `${r.empty_patch}/${r.samples}` },
    { name: 'model errors', color: '#e15759', width: 4, pick: (r) => r.model_error_rate, count: (r) => `${r.model_errors}/${r.samples}` },
    { name: 'verdict errors', color: '#4e79a7', width: 2, pick: (r) => r.verdict_error_rate, count: (r) => `${r.verdict_errors}/${r.verdict_records}` },
  ];
  const figures = data.runs.map((run) => {
    if (run.train.length === 0) return '';
    const series: LineSeries[] = metrics.map((m) => ({
      name: m.name,
      color: m.color,
      dashed: m.name === 'verdict errors',
      strokeWidth: m.width,
      points: run.train
        .filter((r) => m.pick(r) !== null)
        .map((r) => ({ x: r.model_index, y: 100 * m.pick(r)!, label: m.pick(r)! > 0 ? pct(m.pick(r)) : '', title: `${run.label} iter-${r.model_index}: ${m.name} ${m.count(r)} (${pct(m.pick(r))})` })),
    }));
    return figure(
      lineChart({
        chart: 'error-rates',
        title: `${run.label}: empty-patch and error rates per iteration`,
        xLabel: 'iteration (train samples of M_k)',
        yLabel: 'share (%)',
        xValues: run.train.map((r) => r.model_index),
        xTick: (k) => `iter-${k}`,
        yUnit: '%',
        yLimit: 100,
        series: series.filter((s) => s.points.length > 0),
        width: 460,
        height: 250,
      }),
      `${run.label}: empty patch and model errors over the samples; verdict errors over the verdict records (unlabelled points are 0%)`,
    );
  }).filter(Boolean);
  return figures.length === 0 ? noData('No train samples yet.') : `<div class="grid">${figures.join('')}</div>`;
}

const CSS = `
:root { color-scheme: light; --text: #1f2328; --muted: #5b636b; --line: #d8dee4; --bg: #ffffff; --panel: #f6f8fa; --accent: #4e79a7; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--bg); color: var(--text); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans", "Liberation Sans", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 1.8rem; margin: 0 0 4px; }
h2 { font-size: 1.3rem; margin: 40px 0 8px; padding-bottom: 6px; border-bottom: 1px solid var(--line); }
p { margin: 6px 0 12px; }
.meta { color: var(--muted); margin: 0 0 16px; }
.headline { font-size: 1.05rem; font-weight: 600; margin: 0 0 8px; }
.sim { border-left: 4px solid #e15759; background: #fdf1f1; padding: 10px 14px; margin: 16px 0; border-radius: 4px; }
.lead { color: var(--muted); max-width: 80ch; }
figure { margin: 0; background: var(--bg); border: 1px solid var(--line); border-radius: 8px; padding: 10px 10px 6px; }
figure.wide { margin: 12px 0 16px; }
figure svg.chart { display: block; width: 100%; height: auto; max-width: 100%; margin: 0 auto; }
figure.wide svg.chart { max-width: 940px; }
figcaption { color: var(--muted); font-size: 0.85rem; margin-top: 4px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(400px, 1fr)); gap: 14px; margin: 12px 0 16px; }
.table-wrap { overflow-x: auto; margin: 10px 0 18px; border: 1px solid var(--line); border-radius: 8px; }
table { border-collapse: collapse; width: 100%; font-size: 0.88rem; font-variant-numeric: tabular-nums; }
caption { caption-side: top; text-align: left; color: var(--muted); padding: 8px 10px; font-size: 0.85rem; }
th, td { padding: 6px 10px; border-top: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { background: var(--panel); border-top: none; font-weight: 600; vertical-align: bottom; }
td.num, th.num { text-align: right; }
td.num { white-space: nowrap; }
tbody tr:nth-child(even) td { background: #fbfcfd; }
td.empty { color: var(--muted); font-style: italic; }
td.status-succeeded { color: #2e7d32; font-weight: 600; }
td.status-failed { color: #c62828; font-weight: 600; }
td.status-running, td.status-pending { color: #b26a00; font-weight: 600; }
.no-data { color: var(--muted); font-style: italic; }
ul.notes { color: var(--muted); }
footer { color: var(--muted); font-size: 0.8rem; margin-top: 40px; border-top: 1px solid var(--line); padding-top: 10px; }
@media (max-width: 600px) { main { padding: 14px 10px 32px; } h1 { font-size: 1.4rem; } .grid { grid-template-columns: 1fr; } }
`;

/** A run's trajectory pages, as the report links to them. */
export interface TrajectoryLink {
  label: string;
  /** The run's trajectory index page, relative to the report. */
  href: string;
  counts: { all: number; resolved: number; unresolved: number; error: number };
}

function trajectoriesSection(links: readonly TrajectoryLink[]): string {
  if (links.length === 0) return '';
  const filterHref = (href: string, f: string) => href.replace(/index\.html$/, `${f}.html`);
  const items = links.map(
    (l) =>
      `<li>${e(l.label)}: <a href="${e(l.href)}">all ${l.counts.all}</a> · ${(['resolved', 'unresolved', 'error'] as const)
        .map((f) => `<a href="${e(filterHref(l.href, f))}">${f} ${l.counts[f]}</a>`)
        .join(' · ')}</li>`,
  );
  return `<section id="trajectories-section"><h2>Trajectories</h2><p class="lead">One page per trajectory (states, prompts, actions, patch, verdict, test log), listed per instance.</p><ul>${items.join('')}</ul></section>`;
}

/** Each run's eval result per model, labelled (best of n or mean over samples), as the chart and table show it. */
function headlines(data: ReportData): string {
  const lines = data.runs.map((r) => ({ r, h: evalHeadline(r) })).filter((x) => x.h !== null);
  return lines.map(({ r, h }) => `<p class="headline">${data.runs.length > 1 ? `${e(r.label)}: ` : ''}eval resolved ${e(h!)}</p>`).join('');
}

/** The whole page; `trajectories` links each run's trajectory pages when they were written. */
export function renderHtml(data: ReportData, trajectories: readonly TrajectoryLink[] = []): string {
  const labels = data.runs.map((r) => r.label).join(', ');
  const simulated = data.runs.filter((r) => r.simulated_policy || r.simulated_trainer);
  const statusClass = (column: string, text: string) => (column === 'status' ? `status-${text.replace(/[^a-z]/g, '')}` : null);
  const warnings = warningsOf(data);
  const body = [
    `<header><h1>RFT report</h1><p class="meta">${e(labels)} · generated ${e(data.generated_at)} · every number is counted from the run ledgers</p>${headlines(data)}</header>`,
    simulated.length > 0
      ? `<p class="sim"><strong>SIMULATION.</strong> ${e(simulated.map((r) => r.label).join(', '))} ${simulated.length === 1 ? 'uses' : 'use'} the project's SIMULATED policy and/or SIMULATED trainer (test doubles, no real model): these numbers show the loop works, not how well a model learns.</p>`
      : '',
    `<section id="runs-section"><h2>Runs</h2>${htmlTable(runsTable(data))}</section>`,
    `<section id="resolve-rate-section"><h2>1. Resolve rate per iteration</h2><p class="lead">Train: share of the N samples per task drawn at temperature T from M_k (iteration k) whose patch resolved the task. Eval: M_m on the eval set at its temperature; M0 is the zero-shot point.</p>${resolveRateChart(data)}${htmlTable(resolveRateTable(data))}</section>`,
    `<section id="success-count-section"><h2>2. Successes per instance</h2><p class="lead">How many of the N samples of each training instance succeeded (finished and resolved). Instances on the right are the easy ones a per-instance cap holds back.</p>${successCharts(data)}${successCountTables(data).map((t) => htmlTable(t)).join('')}</section>`,
    `<section id="llm-calls-section"><h2>3. LLM calls per trajectory</h2><p class="lead">Train samples with a final verdict, successes vs failures. Selection keeps the successes with the fewest calls first.</p>${callsCharts(data)}${htmlTable(callsSummaryTable(data))}</section>`,
    `<section id="tokens-section"><h2>4. Tokens per SFT example</h2>${tokenCharts(data)}${htmlTable(tokensSummaryTable(data))}</section>`,
    `<section id="rates-section"><h2>5. Empty patches and errors</h2>${rateCharts(data)}${htmlTable(ratesTable(data))}</section>`,
    `<section id="cap-comparison-section"><h2>6. Cap comparison</h2>${htmlTable(capComparisonTable(data))}</section>`,
    `<section id="finetunes-section"><h2>7. Fine-tune jobs</h2>${htmlTable(finetuneTable(data), statusClass)}</section>`,
    data.runs.some((r) => r.scaling.length > 0)
      ? `<section id="scaling-section"><h2>8. Inference-time scaling (best-of-n)</h2><p class="lead">Each eval candidate scored by the verifier (P(YES)); best@k submits the top-scored of k. pass@k is the oracle bound, random@k the unscored baseline. All from one pool of n candidates per instance.</p>${scalingCharts(data)}${htmlTable(scalingTable(data))}</section>`
      : '',
    trajectoriesSection(trajectories),
    warnings.length > 0 ? `<section id="notes-section"><h2>Notes</h2><ul class="notes">${warnings.map((w) => `<li>${e(w)}</li>`).join('')}</ul></section>` : '',
    `<footer>rft report · format ${e(data.format)} · ${data.runs.map((r) => e(r.dir)).join(' · ')}</footer>`,
  ].join('\n');
  return htmlDocument(`RFT report: ${e(labels)}`, CSS, body);
}
