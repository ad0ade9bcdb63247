/**
 * What every benchmark hands back: one table of figures measured side by side in one run, and
 * its targets, each met or not with the reason. Printed by bench/main.ts and written to
 * bench/RESULTS.md; the smoke test (test/bench) checks the shape.
 */
export type Cell = string | number | null;

export interface Target {
  name: string;
  /** null: not applicable at this size (e.g. the naive version was not run). */
  met: boolean | null;
  reason: string;
}

export interface BenchTable {
  id: string;
  title: string;
  columns: string[];
  rows: Cell[][];
  /** Headline ratios of the table, by name: must be finite numbers. */
  ratios: Record<string, number>;
  targets: Target[];
  /** How the figures were obtained and what they mean (printed under the table). */
  notes: string[];
  seconds: number;
}

export function fmt(value: Cell, digits = 2): string {
  if (value === null) return '—';
  if (typeof value === 'string') return value;
  if (!Number.isFinite(value)) return String(value);
  if (Number.isInteger(value)) return String(value);
  const abs = Math.abs(value);
  return value.toFixed(abs >= 100 ? 0 : abs >= 10 ? 1 : digits);
}

export function renderText(table: BenchTable): string {
  const cells = [table.columns, ...table.rows.map((row) => row.map((c) => fmt(c)))];
  const widths = table.columns.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]) => row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const out = [`== ${table.title} (${table.seconds.toFixed(1)} s)`, line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)];
  for (const [name, value] of Object.entries(table.ratios)) out.push(`ratio ${name} = ${fmt(value, 3)}`);
  for (const t of table.targets) out.push(`target ${t.name}: ${t.met === null ? 'n/a' : t.met ? 'MET' : 'NOT MET'} — ${t.reason}`);
  return out.join('\n');
}

export function renderMarkdown(table: BenchTable): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const out = [
    `## ${table.title}`,
    '',
    `| ${table.columns.map(esc).join(' | ')} |`,
    `|${table.columns.map((_, i) => (i === 0 ? ' --- ' : ' ---: ')).join('|')}|`,
    ...table.rows.map((row) => `| ${row.map((c) => esc(fmt(c))).join(' | ')} |`),
    '',
  ];
  if (Object.keys(table.ratios).length > 0) {
    out.push(`Ratios: ${Object.entries(table.ratios).map(([k, v]) => `\`${k}\` = ${fmt(v, 3)}`).join(', ')}`, '');
  }
  for (const t of table.targets) out.push(`- **${t.name}: ${t.met === null ? 'n/a' : t.met ? 'met' : 'not met'}** — ${t.reason}`);
  if (table.targets.length > 0) out.push('');
  for (const n of table.notes) out.push(`- ${n}`);
  out.push('', `_Benchmark time: ${table.seconds.toFixed(1)} s._`, '');
  return out.join('\n');
}

/** Throws unless every ratio is a finite number and every row has one cell per column. */
export function checkTable(table: BenchTable): void {
  for (const row of table.rows) if (row.length !== table.columns.length) throw new Error(`${table.id}: a row has ${row.length} cells for ${table.columns.length} columns`);
  for (const [name, value] of Object.entries(table.ratios)) if (!Number.isFinite(value)) throw new Error(`${table.id}: ratio ${name} is ${value}`);
}
