import type { ReportData } from './data.js';
import { DASH, modelLabel, num, pct } from './format.js';
import { escapeHtml, lineChart, type LineSeries } from './svg.js';
import type { Table } from './tables.js';

/**
 * The report's inference-time scaling section (the paper's best-of-n plot): per eval pool with
 * several candidates per instance, pass@k (an oracle picker), best@k (the verifier's pick) and
 * random@k over k on a log scale, and the same numbers as a table. Pure: data → text.
 */

const COLORS = { pass: '#59a14f', best: '#4e79a7', random: '#9c9c9c' } as const;

export function scalingTable(data: ReportData): Table {
  const rows = data.runs.flatMap((run) =>
    run.scaling.flatMap((c) =>
      c.points.map((p) => [
        run.label,
        `${modelLabel(c.model_index)} (${run.models[c.model_index] ?? '?'})`,
        c.verifier ? `${c.verifier}${c.simulated_verifier ? ' (SIMULATED verifier)' : ''}` : DASH,
        String(p.k),
        String(p.instances),
        pct(p.pass),
        pct(p.best),
        pct(p.random),
      ]),
    ),
  );
  return {
    id: 'scaling',
    caption: 'From one eval pool of n candidates per instance: pass@k = 1 − C(n−c,k)/C(n,k) (an oracle picks); best@k = expected resolved share of the top-scored of k drawn without replacement (exact from the score ranks, ties averaged); random@k = c/n.',
    headers: ['run', 'model', 'verifier', 'k', 'instances', 'pass@k', 'best@k', 'random@k'],
    align: ['left', 'left', 'left', 'right', 'right', 'right', 'right', 'right'],
    rows,
  };
}

/** Lines of `rft report` output: the table per curve, as text. */
export function scalingText(data: ReportData): string {
  const out: string[] = [];
  for (const run of data.runs) {
    for (const c of run.scaling) {
      const tag = c.simulated_verifier ? ' (SIMULATED verifier)' : '';
      const head = `  ${run.label} ${modelLabel(c.model_index)}: best-of-${c.samples_per_instance} on ${c.instances} instances, verifier ${c.verifier ?? 'none'}${tag}` +
        (c.best_of_n ? `: ${num(c.best_of_n.resolved, 2)}/${c.instances} resolved (${pct(c.best_of_n.rate)})` : c.unscored > 0 ? `: ${c.unscored} candidates unscored` : '');
      out.push(head, '      k  pass@k  best@k  random@k');
      for (const p of c.points) out.push(`    ${String(p.k).padStart(3)}  ${pct(p.pass).padStart(6)}  ${pct(p.best).padStart(6)}  ${pct(p.random).padStart(8)}`);
    }
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/** One log-x chart per curve (the x positions are log2 k, ticked with k). */
export function scalingCharts(data: ReportData): string {
  const figures = data.runs.flatMap((run) =>
    run.scaling.map((c) => {
      const point = (name: string, k: number, y: number, n: number) => ({
        x: Math.log2(k),
        y: 100 * y,
        label: pct(y),
        title: `${run.label} ${modelLabel(c.model_index)}: ${name} at k=${k} over ${n} instances: ${pct(y)}`,
      });
      const series: LineSeries[] = [
        { name: 'pass@k (oracle)', color: COLORS.pass, dashed: true, points: c.points.map((p) => point('pass@k', p.k, p.pass, p.instances)) },
        ...(c.points.every((p) => p.best !== null)
          ? [{ name: `best@k (${c.verifier}${c.simulated_verifier ? ', SIMULATED' : ''})`, color: COLORS.best, dashed: false, strokeWidth: 3, points: c.points.map((p) => point('best@k', p.k, p.best!, p.instances)) }]
          : []),
        { name: 'random@k', color: COLORS.random, dashed: true, strokeWidth: 2, points: c.points.map((p) => point('random@k', p.k, p.random, p.instances)) },
      ];
      const svg = lineChart({
        chart: 'scaling',
        title: `${run.label}, ${modelLabel(c.model_index)}: resolve rate vs candidates k (log scale)`,
        xLabel: 'k candidates per instance (log scale)',
        yLabel: 'resolved (%)',
        xValues: c.points.map((p) => Math.log2(p.k)),
        xTick: (x) => String(Math.round(2 ** x)),
        yUnit: '%',
        yLimit: 100,
        series,
        width: 560,
        height: 280,
      });
      const caption = `${run.label} · ${c.folder}: ${c.instances} instances, n=${c.samples_per_instance}${c.unscored > 0 ? `, ${c.unscored} unscored` : ''}${c.simulated_verifier ? ' · SIMULATED verifier (a test double): shows the computation, not a model' : ''}`;
      return `<figure class="small">${svg}<figcaption>${escapeHtml(caption)}</figcaption></figure>`;
    }),
  );
  return figures.length === 0 ? '' : `<div class="grid">${figures.join('')}</div>`;
}
