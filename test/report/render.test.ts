import { describe, expect, it } from 'vitest';
import { gatherReport, ReportDataSchema, type ReportData } from '../../src/report/data.js';
import { renderHtml } from '../../src/report/html.js';
import { escapeMarkdown, renderMarkdown } from '../../src/report/markdown.js';
import { histogram, quantile, summarize } from '../../src/report/stats.js';
import { barChart, escapeHtml, histogramChart, lineChart } from '../../src/report/svg.js';
import { SCRIPT_ERROR, writeFixtureRun } from './fixture.js';

const NOW = () => new Date('2025-02-03T04:05:06.000Z');
const DATA: ReportData = gatherReport([writeFixtureRun()], { now: NOW });

/** Each <svg …>…</svg> of the page with its data-chart kind. */
function charts(html: string): Array<{ kind: string; svg: string }> {
  return [...html.matchAll(/<svg[^>]*data-chart="([^"]+)"[^>]*>[\s\S]*?<\/svg>/g)].map((m) => ({ kind: m[1]!, svg: m[0] }));
}

function marks(svg: string): string[] {
  return [...svg.matchAll(/<(path|rect|circle)\b[^>]*class="mark[^"]*"[^>]*>/g)].map((m) => m[0]);
}

/** A copy of the data with the run renamed (names from the recipe are restricted; the renderers must not rely on it). */
function renamed(name: string): ReportData {
  const copy = structuredClone(DATA);
  copy.runs[0]!.name = name;
  copy.runs[0]!.label = name;
  return ReportDataSchema.parse(copy);
}

describe('renderHtml', () => {
  const html = renderHtml(DATA);

  it('draws every chart kind with data marks of non-zero size', () => {
    const found = charts(html);
    expect(found.map((c) => c.kind).sort()).toEqual([
      'error-rates',
      'llm-calls',
      'llm-calls',
      'resolve-rate',
      'success-count',
      'success-count',
      'tokens',
      'tokens',
    ]);
    for (const c of found) {
      const m = marks(c.svg);
      expect(m.length, c.kind).toBeGreaterThan(0);
      const sized = m.filter((el) => /<circle[^>]*r="[1-9]/.test(el) || (/height="([\d.]+)"/.test(el) && Number(/height="([\d.]+)"/.exec(el)![1]) > 0) || /<path[^>]*d="M[^"]+L/.test(el));
      expect(sized.length, c.kind).toBeGreaterThan(0);
    }
  });

  it('plots one labelled point per rollout on the resolve-rate chart: train 44.4% → 55.6%, eval 33.3% → 66.7%', () => {
    const chart = charts(html).find((c) => c.kind === 'resolve-rate')!.svg;
    expect(marks(chart).filter((m) => m.startsWith('<circle'))).toHaveLength(4);
    expect(marks(chart).filter((m) => m.startsWith('<path'))).toHaveLength(2);
    for (const label of ['44.4%', '55.6%', '33.3%', '66.7%']) expect(chart).toContain(`>${label}</text>`);
    expect(chart).toContain('4/9 resolved (44.4%)');
    expect(chart).toContain('M0');
    expect(chart).toContain('M2');
  });

  it('shows the tables with the numbers of the ledgers', () => {
    expect(html).toContain('<td class="num">4/9 (44.4%)</td>');
    expect(html).toContain('<td class="num">1/3 (33.3%)</td>');
    expect(html).toContain('<td class="num">1/10 (10.0%)</td>'); // verdict errors of iter-0
    expect(html).toContain('<td class="num">37.5% (1 inst.)</td>'); // easiest share, cap 1
    expect(html).toContain('<td class="num">58.3% (1 inst.)</td>'); // easiest share, no cap
    expect(html).toContain('<td class="num">450 / 800</td>');
    expect(html).toContain('<td class="status-succeeded">succeeded</td>');
    expect(html).toContain('<td class="status-failed">failed</td>');
  });

  it('escapes text from the ledgers: the fine-tune error with <script> is shown as text', () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain(escapeHtml(SCRIPT_ERROR));
    expect(escapeHtml(SCRIPT_ERROR)).toBe('&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; CUDA out of memory');
  });

  it('escapes a run name with <script> everywhere it appears, charts included', () => {
    const evil = '<script>alert(1)</script>';
    const page = renderHtml(renamed(evil));
    expect(page).not.toMatch(/<script/i);
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page).toContain('<title>RFT report: &lt;script&gt;alert(1)&lt;/script&gt;</title>');
    const chart = charts(page).find((c) => c.kind === 'success-count')!.svg;
    expect(chart).toContain('&lt;script&gt;alert(1)&lt;/script&gt;, iter-0');
  });

  it('is self-contained: no script, no external URL, a CSP that forbids loading anything', () => {
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'; img-src data:"`);
    expect(html).not.toMatch(/(src|href)\s*=\s*["']?(https?:|\/\/)/i);
    expect(html).not.toMatch(/@import|url\(/i);
    const withoutSvgNamespace = html.replaceAll('xmlns="http://www.w3.org/2000/svg"', '');
    expect(withoutSvgNamespace).not.toMatch(/https?:\/\//);
  });

  it('labels simulated runs as simulations', () => {
    expect(html).not.toContain('SIMULATION');
    const sim = structuredClone(DATA);
    sim.runs[0]!.simulated_policy = true;
    expect(renderHtml(sim)).toContain('<strong>SIMULATION.</strong>');
    expect(renderMarkdown(sim)).toContain('**SIMULATION.**');
  });

  it('says there is nothing to draw instead of drawing empty charts', () => {
    const empty = structuredClone(DATA);
    const r = empty.runs[0]!;
    r.train = [];
    r.eval = [];
    r.success_counts = [];
    r.llm_calls = [];
    r.datasets = [];
    r.finetunes = [];
    const page = renderHtml(ReportDataSchema.parse(empty));
    expect(charts(page)).toEqual([]);
    expect(page).toContain('No rollout has a verdict yet.');
    expect(page).toContain('<td colspan="9" class="empty">none</td>');
  });
});

describe('renderMarkdown', () => {
  const md = renderMarkdown(DATA);

  it('has the same tables, the charts given as tables', () => {
    for (const heading of ['## 1. Resolve rate per iteration', '## 2. Successes per instance', '## 3. LLM calls per trajectory', '## 4. Tokens per SFT example', '## 5. Empty patches and errors', '## 6. Cap comparison', '## 7. Fine-tune jobs'])
      expect(md).toContain(heading);
    expect(md).toContain('| tiny | M0 (zero-shot) | base-model | 4/9 (44.4%) | T=1 | 3 | 1/3 (33.3%) | T=0 |');
    expect(md).toContain('| tiny | M1 | tiny-m1 | 5/9 (55.6%) | T=1 | 5 | 2/3 (66.7%) | T=0 |');
    expect(md).toContain('| iter-0 (M0) | 3 | 1 | 1 | 1 | 0 |'); // successes per instance: 0/3 … 3/3
    expect(md).toContain('| tiny | iter-0 | success | 3 | 3 | 4 | 5 | 5.5 | 6 | 4.67 |');
    expect(md).toContain('| tiny | iter-0 | failure | 6 | 2 | 2.25 | 3 | 3.75 | 4 | 3 |');
    expect(md).toContain('| 2 | 0 | 2 |'); // calls histogram: 2 calls → 0 successes, 2 failures
    expect(md).toContain('| 100–200 | 1 |'); // tokens histogram
    expect(md).toContain('| tiny | iter-0 | cap-1 (trained on) | 1 | no | 2 | 0 / 0 | 8 | 2/2 | 4.5 | 450 / 800 | 2550 / 4500 | 37.5% (1 inst.) |');
    expect(md).toContain('| tiny | iter-0 train (M0) | 9 | 1 (11.1%) | 1 (11.1%) | 1/10 (10.0%) | 0 | 1 | 0 |');
    expect(md).toContain('| tiny | iter-0 | 1 | command | base-model | tiny-m1 | succeeded | 90 s | – |');
  });

  it('escapes cell text so it cannot break a table or become HTML', () => {
    expect(md).toContain('&lt;script&gt;alert("pwned")&lt;/script&gt; CUDA out of memory');
    expect(md).not.toContain('<script');
    expect(escapeMarkdown('a|b\nc_d*e')).toBe('a\\|b c\\_d\\*e');
    const evil = renderMarkdown(renamed('x|<b>y</b>'));
    expect(evil).toContain('| x\\|&lt;b&gt;y&lt;/b&gt; | M0 (zero-shot) |');
  });
});

describe('svg charts', () => {
  it('lineChart: a dot per point, a path per series of two or more points, escaped names', () => {
    const svg = lineChart({
      chart: 'test',
      title: 'a < b',
      xLabel: 'x',
      yLabel: 'y',
      xValues: [0, 1, 2],
      xTick: (x) => `M${x}`,
      yUnit: '%',
      yLimit: 100,
      series: [
        { name: '<i>one</i>', color: '#123456', dashed: false, points: [0, 1, 2].map((x) => ({ x, y: 10 * x, label: `${10 * x}%`, title: `p${x}` })) },
        { name: 'two', color: '#654321', dashed: true, points: [{ x: 1, y: 50, label: '50%', title: 'q' }] },
      ],
    });
    expect(svg).toMatch(/^<svg class="chart" data-chart="test"/);
    expect(marks(svg).filter((m) => m.startsWith('<circle'))).toHaveLength(4);
    expect(marks(svg).filter((m) => m.startsWith('<path'))).toHaveLength(1);
    expect(svg).toContain('&lt;i&gt;one&lt;/i&gt;');
    expect(svg).not.toContain('<i>');
    expect(svg).toContain('<title>a &lt; b</title>');
    expect(svg).toContain('>50%</text>');
    // y axis stops at a nice value above the data (57.5 → 60), never above 100
    expect(svg).toContain('>60%</text>');
    expect(svg).not.toContain('>80%</text>');
  });

  it('barChart: one bar per category and series, heights proportional to the values', () => {
    const svg = barChart({ chart: 'b', title: 't', xLabel: 'x', yLabel: 'y', categories: ['0', '1', '2'], series: [{ name: 's', color: '#000', values: [0, 2, 4] }, { name: 'f', color: '#111', values: [1, 1, 1] }], legend: true });
    const heights = marks(svg).map((m) => Number(/height="([\d.]+)"/.exec(m)![1]));
    expect(heights).toHaveLength(6);
    expect(heights[0]).toBe(0);
    expect(heights[2]! / heights[1]!).toBeCloseTo(2, 1);
    expect(heights[3]! * 4).toBeCloseTo(heights[2]!, 0);
  });

  it('histogramChart: one bar per bin and the limit marker when inside the axis', () => {
    const bins = [{ from: 0, to: 10, count: 3 }, { from: 10, to: 20, count: 0 }, { from: 20, to: 30, count: 6 }];
    const svg = histogramChart({ chart: 'h', title: 't', xLabel: 'x', yLabel: 'y', bins, color: '#000', marker: { x: 25, label: 'limit' } });
    expect(marks(svg)).toHaveLength(3);
    expect(svg).toContain('>limit</text>');
    expect(histogramChart({ chart: 'h', title: 't', xLabel: 'x', yLabel: 'y', bins, color: '#000', marker: { x: 99, label: 'limit' } })).not.toContain('>limit</text>');
  });
});

describe('stats', () => {
  it('quantiles interpolate between ranks; summaries of nothing are null', () => {
    expect(quantile([1, 2, 3, 4], 0.25)).toBe(1.75);
    expect(quantile([5], 0.9)).toBe(5);
    expect(quantile([], 0.5)).toBeNull();
    expect(summarize([])).toEqual({ n: 0, min: null, q1: null, median: null, q3: null, max: null, mean: null });
  });

  it('histogram bins have a nice width and hold every value once', () => {
    const values = [376, 2399, 700, 701, 1200, 999];
    const h = histogram(values);
    expect(h.bin_width).toBe(200);
    expect(h.bins[0]!.from).toBe(200);
    expect(h.bins.at(-1)!.to).toBe(2400);
    expect(h.bins.reduce((a, b) => a + b.count, 0)).toBe(values.length);
    expect(h.bins.find((b) => b.from === 600)!.count).toBe(2);
    expect(histogram([5, 5, 5]).bins).toEqual([{ from: 5, to: 6, count: 3 }]);
    expect(histogram([]).bins).toEqual([]);
  });
});
