import { niceStep } from './stats.js';

/**
 * Tiny SVG chart drawing for the HTML report: a line chart, a grouped bar chart over categories
 * and a histogram over numeric bins. Pure functions from a spec to an SVG string; every string
 * that goes in is escaped. Data elements carry class="mark" (what the browser test measures);
 * the <svg> carries data-chart="<kind>". Sizes are viewBox units: the page scales the SVG to its
 * width, so the charts follow the window.
 */

/** Escapes text for HTML/XML content and attribute values (both quote kinds). */
export function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const e = escapeHtml;

export const PALETTE = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#b07aa1', '#edc948', '#ff9da7', '#9c755f', '#7f7f7f'];
export const SUCCESS_COLOR = '#59a14f';
export const FAILURE_COLOR = '#e15759';

const TEXT = '#2b2b2b';
const MUTED = '#6b6b6b';
const GRID = '#e6e6e6';
const AXIS = '#9a9a9a';
const FONT = 12;

interface Box {
  width: number;
  height: number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

export interface LegendItem {
  label: string;
  color: string;
  /** line: a solid line with a dot; dashed: a dashed line with a hollow dot; box: a filled square. */
  shape: 'line' | 'dashed' | 'box';
}

/** Rough text width in viewBox units at `size` (no font metrics in a pure function). */
function textWidth(text: string, size = FONT): number {
  return text.length * size * 0.56;
}

function fmtTick(v: number): string {
  const rounded = Math.round(v * 1000) / 1000;
  if (Math.abs(rounded) >= 10000) return `${Math.round(rounded / 100) / 10}k`;
  return String(rounded);
}

/** Ticks from 0 (or `from`) to a "nice" top at or above `max`. */
export function niceAxis(max: number, maxTicks = 5, from = 0, integer = false): { top: number; ticks: number[] } {
  const span = Math.max(max - from, integer ? 1 : 1e-9);
  let step = niceStep(span, maxTicks);
  if (integer) step = Math.max(1, Math.ceil(step));
  const top = from + Math.ceil(span / step) * step;
  const ticks: number[] = [];
  for (let v = from; v <= top + step / 1e6; v += step) ticks.push(Math.round(v * 1e6) / 1e6);
  return { top, ticks };
}

/** Legend rows laid out left to right, wrapping at the chart's width. Returns the SVG and its height. */
function legend(items: readonly LegendItem[], x0: number, y0: number, width: number): { svg: string; height: number } {
  if (items.length === 0) return { svg: '', height: 0 };
  const parts: string[] = [];
  let x = x0;
  let y = y0;
  const rowHeight = 18;
  for (const item of items) {
    const w = 30 + textWidth(item.label) + 16;
    if (x > x0 && x + w > x0 + width) {
      x = x0;
      y += rowHeight;
    }
    const cy = y + 6;
    if (item.shape === 'box') parts.push(`<rect x="${x + 6}" y="${cy - 6}" width="14" height="12" rx="2" fill="${e(item.color)}"/>`);
    else {
      parts.push(`<line x1="${x}" y1="${cy}" x2="${x + 26}" y2="${cy}" stroke="${e(item.color)}" stroke-width="2.5"${item.shape === 'dashed' ? ' stroke-dasharray="6 4"' : ''}/>`);
      parts.push(`<circle cx="${x + 13}" cy="${cy}" r="4" fill="${item.shape === 'dashed' ? '#fff' : e(item.color)}" stroke="${e(item.color)}" stroke-width="2"/>`);
    }
    parts.push(`<text x="${x + 32}" y="${cy + 4}" font-size="${FONT}" fill="${TEXT}">${e(item.label)}</text>`);
    x += w;
  }
  return { svg: `<g class="legend">${parts.join('')}</g>`, height: y - y0 + rowHeight + 4 };
}

function yAxis(box: Box, ticks: number[], top: number, unit: string, label: string): string {
  const parts: string[] = [];
  const plotH = box.height - box.top - box.bottom;
  for (const t of ticks) {
    const y = box.top + plotH - (t / top) * plotH;
    parts.push(`<line x1="${box.left}" x2="${box.width - box.right}" y1="${r(y)}" y2="${r(y)}" stroke="${GRID}"/>`);
    parts.push(`<text x="${box.left - 8}" y="${r(y + 4)}" text-anchor="end" font-size="${FONT - 1}" fill="${MUTED}">${e(fmtTick(t) + unit)}</text>`);
  }
  parts.push(`<line x1="${box.left}" x2="${box.left}" y1="${box.top}" y2="${box.height - box.bottom}" stroke="${AXIS}"/>`);
  const cy = box.top + plotH / 2;
  parts.push(`<text transform="translate(14 ${r(cy)}) rotate(-90)" text-anchor="middle" font-size="${FONT}" fill="${TEXT}">${e(label)}</text>`);
  return `<g class="axis y">${parts.join('')}</g>`;
}

function xAxisLine(box: Box, label: string): string {
  const y = box.height - box.bottom;
  return (
    `<line x1="${box.left}" x2="${box.width - box.right}" y1="${y}" y2="${y}" stroke="${AXIS}"/>` +
    `<text x="${r(box.left + (box.width - box.left - box.right) / 2)}" y="${box.height - 8}" text-anchor="middle" font-size="${FONT}" fill="${TEXT}">${e(label)}</text>`
  );
}

function r(v: number): string {
  return String(Math.round(v * 10) / 10);
}

function svgOpen(chart: string, title: string, width: number, height: number, extra = ''): string {
  return (
    `<svg class="chart" data-chart="${e(chart)}" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" ` +
    `preserveAspectRatio="xMidYMid meet" role="img" xmlns="http://www.w3.org/2000/svg"${extra}><title>${e(title)}</title>`
  );
}

export interface LinePoint {
  x: number;
  y: number;
  /** Drawn next to the point (the exact value). */
  label: string;
  /** Tooltip. */
  title: string;
}

export interface LineSeries {
  name: string;
  color: string;
  dashed: boolean;
  points: LinePoint[];
  /** Line width (default 2.5). Give series that may coincide different widths so both stay visible. */
  strokeWidth?: number;
}

export interface LineChartSpec {
  chart: string;
  title: string;
  xLabel: string;
  yLabel: string;
  /** The x positions to tick (integers: model or iteration indices). */
  xValues: number[];
  xTick: (x: number) => string;
  /** Appended to y tick labels ("%"). */
  yUnit: string;
  /** Upper bound of the y axis (100 for percentages); the axis stops at a nice value above the data. */
  yLimit?: number;
  series: LineSeries[];
  width?: number;
  height?: number;
}

/** A line chart with a dot and a value label on every point. */
export function lineChart(spec: LineChartSpec): string {
  const width = spec.width ?? 760;
  const legendItems: LegendItem[] = spec.series.map((s) => ({ label: s.name, color: s.color, shape: s.dashed ? 'dashed' : 'line' }));
  const lg = legend(legendItems, 60, 10, width - 80);
  const box: Box = { width, height: (spec.height ?? 340) + lg.height, left: 60, right: 24, top: 24 + lg.height, bottom: 46 };
  const plotW = box.width - box.left - box.right;
  const plotH = box.height - box.top - box.bottom;
  const ys = spec.series.flatMap((s) => s.points.map((p) => p.y));
  const maxY = Math.max(0, ...ys);
  const axis = niceAxis(Math.min(spec.yLimit ?? Infinity, Math.max(maxY * 1.15, spec.yLimit ? spec.yLimit / 10 : 1)));
  const xs = spec.xValues.length > 0 ? spec.xValues : [0];
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const pad = 0.35;
  const xOf = (x: number) => box.left + (xMax === xMin ? plotW / 2 : ((x - xMin + pad) / (xMax - xMin + 2 * pad)) * plotW);
  const yOf = (y: number) => box.top + plotH - (y / axis.top) * plotH;

  const parts: string[] = [svgOpen(spec.chart, spec.title, box.width, box.height), lg.svg, yAxis(box, axis.ticks, axis.top, spec.yUnit, spec.yLabel)];
  parts.push(`<g class="axis x">${xAxisLine(box, spec.xLabel)}`);
  for (const x of xs) {
    const px = xOf(x);
    parts.push(`<line x1="${r(px)}" x2="${r(px)}" y1="${box.height - box.bottom}" y2="${box.height - box.bottom + 5}" stroke="${AXIS}"/>`);
    parts.push(`<text x="${r(px)}" y="${box.height - box.bottom + 18}" text-anchor="middle" font-size="${FONT}" fill="${MUTED}">${e(spec.xTick(x))}</text>`);
  }
  parts.push('</g>');

  // Value labels: above the point, pushed apart where points of several series meet.
  const labels: Array<{ x: number; y: number; text: string; color: string }> = [];
  spec.series.forEach((s) => {
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    if (pts.length >= 2) {
      const d = pts.map((p, i) => `${i === 0 ? 'M' : 'L'}${r(xOf(p.x))} ${r(yOf(p.y))}`).join(' ');
      parts.push(`<path class="mark line" d="${d}" fill="none" stroke="${e(s.color)}" stroke-width="${s.strokeWidth ?? 2.5}"${s.dashed ? ' stroke-dasharray="7 5"' : ''} stroke-linejoin="round"/>`);
    }
    for (const p of pts) {
      parts.push(
        `<circle class="mark point" cx="${r(xOf(p.x))}" cy="${r(yOf(p.y))}" r="${r(3 + (s.strokeWidth ?? 2.5) * 0.8)}" fill="${s.dashed ? '#fff' : e(s.color)}" stroke="${e(s.color)}" stroke-width="2.5"><title>${e(p.title)}</title></circle>`,
      );
      labels.push({ x: xOf(p.x), y: yOf(p.y) - 11, text: p.label, color: s.color });
    }
  });
  const byX = new Map<number, typeof labels>();
  for (const l of labels) byX.set(Math.round(l.x), [...(byX.get(Math.round(l.x)) ?? []), l]);
  for (const group of byX.values()) {
    group.sort((a, b) => b.y - a.y); // lowest on screen first, then move the ones above it up
    for (let i = 1; i < group.length; i++) if (group[i]!.y > group[i - 1]!.y - 14) group[i]!.y = group[i - 1]!.y - 14;
  }
  for (const l of labels) {
    if (l.text === '') continue;
    const anchor = l.x > box.width - box.right - 30 ? 'end' : 'start';
    parts.push(
      `<text class="value" x="${r(l.x + (anchor === 'end' ? -7 : 7))}" y="${r(Math.max(12, l.y))}" text-anchor="${anchor}" font-size="${FONT - 1}" font-weight="600" fill="${e(l.color)}" paint-order="stroke" stroke="#fff" stroke-width="3">${e(l.text)}</text>`,
    );
  }
  parts.push('</svg>');
  return parts.join('');
}

export interface BarSeries {
  name: string;
  color: string;
  values: number[];
}

export interface BarChartSpec {
  chart: string;
  title: string;
  xLabel: string;
  yLabel: string;
  categories: string[];
  series: BarSeries[];
  /** Draw the legend (several series). */
  legend: boolean;
  width?: number;
  height?: number;
}

/** Grouped bars over categories (integers on the y axis), each non-zero bar labelled with its value. */
export function barChart(spec: BarChartSpec): string {
  const width = spec.width ?? 420;
  const lg = spec.legend ? legend(spec.series.map((s) => ({ label: s.name, color: s.color, shape: 'box' as const })), 52, 10, width - 70) : { svg: '', height: 0 };
  const box: Box = { width, height: (spec.height ?? 240) + lg.height, left: 52, right: 14, top: 22 + lg.height, bottom: 44 };
  const plotW = box.width - box.left - box.right;
  const plotH = box.height - box.top - box.bottom;
  const maxY = Math.max(1, ...spec.series.flatMap((s) => s.values));
  const axis = niceAxis(maxY, 5, 0, true);
  const band = plotW / Math.max(1, spec.categories.length);
  const groupW = Math.min(band * 0.8, 44 * Math.max(1, spec.series.length));
  const barW = groupW / Math.max(1, spec.series.length);
  const yOf = (y: number) => box.top + plotH - (y / axis.top) * plotH;
  const every = Math.max(1, Math.ceil(spec.categories.length / Math.max(1, Math.floor(plotW / 28))));

  const parts: string[] = [svgOpen(spec.chart, spec.title, box.width, box.height), lg.svg, yAxis(box, axis.ticks, axis.top, '', spec.yLabel)];
  parts.push(`<g class="axis x">${xAxisLine(box, spec.xLabel)}`);
  spec.categories.forEach((c, i) => {
    if (i % every !== 0) return;
    const cx = box.left + band * (i + 0.5);
    parts.push(`<text x="${r(cx)}" y="${box.height - box.bottom + 16}" text-anchor="middle" font-size="${FONT - 1}" fill="${MUTED}">${e(c)}</text>`);
  });
  parts.push('</g>');
  spec.series.forEach((s, j) => {
    s.values.forEach((v, i) => {
      const x = box.left + band * i + (band - groupW) / 2 + barW * j;
      const y = yOf(v);
      const h = box.top + plotH - y;
      parts.push(
        `<rect class="mark bar" x="${r(x + 0.5)}" y="${r(y)}" width="${r(Math.max(1, barW - 1))}" height="${r(h)}" fill="${e(s.color)}"><title>${e(`${s.name}: ${spec.categories[i] ?? ''} → ${v}`)}</title></rect>`,
      );
      if (v > 0 && barW >= 9) parts.push(`<text x="${r(x + barW / 2)}" y="${r(y - 4)}" text-anchor="middle" font-size="${barW >= 16 ? FONT - 1 : FONT - 3}" fill="${TEXT}">${v}</text>`);
    });
  });
  parts.push('</svg>');
  return parts.join('');
}

export interface HistogramSpec {
  chart: string;
  title: string;
  xLabel: string;
  yLabel: string;
  bins: Array<{ from: number; to: number; count: number }>;
  color: string;
  /** A vertical reference line (e.g. the max_tokens limit), drawn when inside the axis. */
  marker?: { x: number; label: string };
  width?: number;
  height?: number;
}

/** Adjacent bars over numeric bins [from, to). */
export function histogramChart(spec: HistogramSpec): string {
  const width = spec.width ?? 420;
  const box: Box = { width, height: spec.height ?? 240, left: 52, right: 18, top: 22, bottom: 44 };
  const plotW = box.width - box.left - box.right;
  const plotH = box.height - box.top - box.bottom;
  const lo = spec.bins[0]?.from ?? 0;
  const hi = spec.bins[spec.bins.length - 1]?.to ?? 1;
  const xOf = (x: number) => box.left + ((x - lo) / (hi - lo || 1)) * plotW;
  const axis = niceAxis(Math.max(1, ...spec.bins.map((b) => b.count)), 5, 0, true);
  const yOf = (y: number) => box.top + plotH - (y / axis.top) * plotH;
  const parts: string[] = [svgOpen(spec.chart, spec.title, box.width, box.height), yAxis(box, axis.ticks, axis.top, '', spec.yLabel)];
  parts.push(`<g class="axis x">${xAxisLine(box, spec.xLabel)}`);
  const step = niceStep(hi - lo, Math.max(2, Math.floor(plotW / 70)));
  for (let t = Math.ceil(lo / step) * step; t <= hi + step / 1e6; t += step) {
    const px = xOf(t);
    parts.push(`<line x1="${r(px)}" x2="${r(px)}" y1="${box.height - box.bottom}" y2="${box.height - box.bottom + 5}" stroke="${AXIS}"/>`);
    parts.push(`<text x="${r(px)}" y="${box.height - box.bottom + 18}" text-anchor="middle" font-size="${FONT - 1}" fill="${MUTED}">${e(fmtTick(t))}</text>`);
  }
  parts.push('</g>');
  for (const b of spec.bins) {
    const x = xOf(b.from);
    const w = Math.max(1, xOf(b.to) - x - 1);
    const y = yOf(b.count);
    parts.push(
      `<rect class="mark bar" x="${r(x + 0.5)}" y="${r(y)}" width="${r(w)}" height="${r(box.top + plotH - y)}" fill="${e(spec.color)}"><title>${e(`${fmtTick(b.from)}–${fmtTick(b.to)}: ${b.count}`)}</title></rect>`,
    );
    if (b.count > 0 && w >= 14) parts.push(`<text x="${r(x + w / 2)}" y="${r(y - 4)}" text-anchor="middle" font-size="${FONT - 2}" fill="${TEXT}">${b.count}</text>`);
  }
  if (spec.marker && spec.marker.x >= lo && spec.marker.x <= hi) {
    const px = xOf(spec.marker.x);
    parts.push(`<line x1="${r(px)}" x2="${r(px)}" y1="${box.top}" y2="${box.height - box.bottom}" stroke="${FAILURE_COLOR}" stroke-dasharray="5 4" stroke-width="1.5"/>`);
    parts.push(`<text x="${r(px - 4)}" y="${box.top + 10}" text-anchor="end" font-size="${FONT - 2}" fill="${FAILURE_COLOR}">${e(spec.marker.label)}</text>`);
  }
  parts.push('</svg>');
  return parts.join('');
}
