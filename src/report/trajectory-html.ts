import { htmlDocument } from './page.js';
import { escapeHtml } from './svg.js';
import { collapse, visible } from './trajectory-view.js';

/**
 * What the trajectory, instance and index pages share: their style, escaping (every text passes
 * `visible`, then HTML escaping), long texts collapsed under <details>, a patch as a coloured
 * diff. Pure: data → HTML strings.
 */

export const e = (text: string): string => escapeHtml(visible(text));

const CSS = `
:root { color-scheme: light; --text: #1f2328; --muted: #5b636b; --line: #d8dee4; --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--text); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Liberation Sans", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 16px 20px 48px; }
h1 { font-size: 1.4rem; margin: 0 0 2px; overflow-wrap: anywhere; }
h2 { font-size: 1.1rem; margin: 22px 0 6px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h2 small { color: var(--muted); font-weight: 400; font-size: 0.85rem; }
nav { margin-bottom: 8px; }
nav a, nav span { margin-right: 12px; }
nav .current { font-weight: 700; }
.meta { color: var(--muted); margin: 2px 0; overflow-wrap: anywhere; font-size: 0.88rem; }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; margin: 4px 0; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.82rem; max-width: 100%; }
.summary { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; margin: 8px 0; background: #fbfcfd; }
.summary p { margin: 3px 0; }
.toc a { margin-right: 10px; }
ol.calls { columns: 3 16em; font-size: 0.85rem; padding-left: 1.6em; }
details.step { border-left: 3px solid var(--line); padding-left: 10px; margin: 6px 0; }
details.step[open] { margin-bottom: 14px; }
details.step > summary { font-weight: 600; overflow-wrap: anywhere; }
details.step > summary .preview { font-weight: 400; color: var(--muted); font-family: ui-monospace, monospace; font-size: 0.8rem; }
.role { color: var(--muted); font-size: 0.82rem; margin-top: 8px; }
.action pre { border-color: #4e79a7; background: #eef3f9; }
.invalid { color: #c62828; }
details summary { cursor: pointer; color: #4e79a7; }
pre.diff { padding: 6px 0; }
pre.diff span { display: block; padding: 0 10px; }
pre.diff .add { background: #e6ffec; color: #116329; }
pre.diff .del { background: #ffebe9; color: #82071e; }
pre.diff .hunk { background: #ddf4ff; color: #0550ae; }
pre.diff .file { font-weight: 700; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-weight: 600; font-size: 0.85rem; }
.resolved { color: #2e7d32; } .unresolved { color: #b26a00; } .error { color: #c62828; }
.badge.resolved { background: #e8f5e9; } .badge.unresolved { background: #fff4e0; } .badge.error { background: #fdecea; }
.submitted { font-weight: 700; color: #2e7d32; }
.table-wrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 8px; margin: 8px 0 16px; }
table { border-collapse: collapse; width: 100%; font-size: 0.88rem; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 10px; border-top: 1px solid var(--line); text-align: left; vertical-align: top; }
td.num, th.num { text-align: right; }
thead th { background: var(--panel); border-top: none; }
td a { margin-right: 8px; white-space: nowrap; }
`;

export function trajectoryDocument(title: string, body: string): string {
  return htmlDocument(e(title), CSS, body);
}

/** A long text: short ones whole; long ones as their head, the whole behind a <details>. */
export function longText(text: string, cls = ''): string {
  const c = collapse(text);
  const attr = cls ? ` class="${cls}"` : '';
  if (c === null) return `<pre${attr}>${e(text)}</pre>`;
  const what = c.hiddenLines > 0 ? `${c.hiddenLines} more lines` : `${c.hiddenChars} more characters`;
  return `<pre${attr}>${e(c.head)}\n⋯</pre><details><summary>show all (${what}; ${text.length} characters in all)</summary><pre${attr}>${e(text)}</pre></details>`;
}

function diffLines(lines: readonly string[]): string {
  const cls = (l: string): string =>
    l.startsWith('+++ ') || l.startsWith('--- ') || l.startsWith('diff --git ') ? 'file' : l.startsWith('@@') ? 'hunk' : l.startsWith('+') ? 'add' : l.startsWith('-') ? 'del' : 'ctx';
  // An empty line still takes a line's height.
  return lines.map((l) => `<span class="${cls(l)}">${l === '' ? ' ' : e(l)}</span>`).join('');
}

/** Lines added and removed, and files touched, of a unified diff. */
export function diffStat(patch: string): { files: number; added: number; removed: number } {
  const lines = patch.split('\n');
  return {
    files: lines.filter((l) => l.startsWith('diff --git ')).length || lines.filter((l) => l.startsWith('+++ ')).length,
    added: lines.filter((l) => l.startsWith('+') && !l.startsWith('+++ ')).length,
    removed: lines.filter((l) => l.startsWith('-') && !l.startsWith('--- ')).length,
  };
}

/** A patch as a coloured diff; past `headLines` lines the rest is behind a <details>. */
export function diffHtml(patch: string, headLines = 120): string {
  const lines = patch.replace(/\n$/, '').split('\n');
  if (lines.length <= headLines + 20) return `<pre class="diff">${diffLines(lines)}</pre>`;
  return `<pre class="diff">${diffLines(lines.slice(0, headLines))}</pre><details><summary>show the other ${lines.length - headLines} lines</summary><pre class="diff">${diffLines(lines.slice(headLines))}</pre></details>`;
}
