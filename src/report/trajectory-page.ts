import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../store/atomic.js';
import { htmlDocument } from './page.js';
import { escapeHtml } from './svg.js';
import type { LedgerLocation } from '../store/ledger.js';
import { PageInputs } from './page-reuse.js';
import { parsePagesSpec, pickPages, type PagesSpec } from './page-selection.js';
import { forEachViewAt, phasesOf, trajectoryHeads } from './trajectory-source.js';
import { collapse, visible, type Filter, type MessageView, type TrajectoryView } from './trajectory-view.js';

/**
 * The report's trajectory browser: one static page per trajectory, and index pages — all, and
 * one per filter (resolved / unresolved / error), so filtering needs no script — each with a
 * table per phase and instance linking to the pages. Every page is self-contained (inline CSS,
 * a CSP that forbids any request) and readable without script; collapsed text uses <details>.
 * Pages are written as the trajectories are read, one at a time; only a small entry per
 * trajectory is kept for the index.
 */

export const TRAJECTORIES_DIR = 'trajectories';
export const INDEX_PAGES: Record<'all' | Filter, string> = { all: 'index.html', resolved: 'resolved.html', unresolved: 'unresolved.html', error: 'error.html' };

const e = (text: string): string => escapeHtml(visible(text));

const CSS = `
:root { color-scheme: light; --text: #1f2328; --muted: #5b636b; --line: #d8dee4; --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--text); font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Liberation Sans", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 20px 48px; }
h1 { font-size: 1.5rem; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 1.15rem; margin: 28px 0 8px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
nav a, nav span { margin-right: 12px; }
nav .current { font-weight: 700; }
.meta { color: var(--muted); margin: 2px 0; overflow-wrap: anywhere; }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: 8px 10px; margin: 4px 0; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.82rem; max-width: 100%; }
.step { border-left: 3px solid var(--line); padding-left: 12px; margin: 16px 0; }
.step h3 { font-size: 1rem; margin: 0 0 4px; }
.role { color: var(--muted); font-size: 0.82rem; margin-top: 8px; }
.action pre { border-color: #4e79a7; background: #eef3f9; }
.invalid { color: #c62828; }
details summary { cursor: pointer; color: #4e79a7; }
.badge { display: inline-block; padding: 0 8px; border-radius: 10px; font-weight: 600; font-size: 0.85rem; }
.resolved { color: #2e7d32; } .unresolved { color: #b26a00; } .error { color: #c62828; }
.badge.resolved { background: #e8f5e9; } .badge.unresolved { background: #fff4e0; } .badge.error { background: #fdecea; }
.table-wrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 8px; margin: 8px 0 16px; }
table { border-collapse: collapse; width: 100%; font-size: 0.88rem; }
th, td { padding: 5px 10px; border-top: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { background: var(--panel); border-top: none; }
td a { margin-right: 8px; white-space: nowrap; }
`;

function page(title: string, body: string): string {
  return htmlDocument(e(title), CSS, body);
}

/** The file name of a trajectory's page: readable, unique per (phase, instance, sample), safe on any file system. */
export function trajectoryPageName(phase: string, instanceId: string, sample: number): string {
  const readable = instanceId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);
  const idHash = createHash('sha256').update(instanceId).digest('hex').slice(0, 8);
  return `${phase.replace(/[^A-Za-z0-9]/g, '-')}--${readable}-${idHash}--s${sample}.html`;
}

function longText(text: string, cls = ''): string {
  const c = collapse(text);
  const attr = cls ? ` class="${cls}"` : '';
  if (c === null) return `<pre${attr}>${e(text)}</pre>`;
  const what = c.hiddenLines > 0 ? `${c.hiddenLines} more lines` : `${c.hiddenChars} more characters`;
  return `<pre${attr}>${e(c.head)}\n⋯</pre><details><summary>show all (${what}; ${text.length} characters in all)</summary><pre${attr}>${e(text)}</pre></details>`;
}

function messageHtml(m: MessageView): string {
  return `<div class="role">${e(m.role)}</div>${longText(m.text === '' ? '(empty)' : m.text)}`;
}

export function renderTrajectoryPage(v: TrajectoryView, links: { index: string; report: string | null }): string {
  const verdict = v.verdict?.outcome ?? 'no verdict yet';
  const steps = v.steps.map((s) => {
    const flags = [s.retry ? 'retry' : '', s.fresh_prompt ? 'new prompt' : `${s.repeated} earlier messages not repeated`, s.tokens !== null ? `${s.tokens} tokens` : ''].filter(Boolean).join(' · ');
    return `<section class="step" id="call-${s.call}"><h3>call ${s.call} · ${e(s.state)}</h3><p class="meta">${e(flags)}</p>${s.shown.map(messageHtml).join('')}<div class="action"><div class="role">action (${e(s.action.role)})</div>${longText(s.action.text === '' ? '(empty)' : s.action.text)}</div>${
      s.invalid ? `<p class="invalid">not a valid action: ${e(s.invalid)}</p>` : ''
    }</section>`;
  });
  const d = v.verdict;
  const verdictHtml =
    d === null
      ? '<p>not verified yet</p>'
      : `<p><span class="badge ${e(v.filter)}">${e(d.outcome)}</span> ${d.reason ? e(d.reason) : ''}${d.apply_method ? ` · applied with ${e(d.apply_method)}` : ''}${d.test_exit_code !== null ? ` · test exit code ${d.test_exit_code}` : ''}</p>` +
        (d.failing.length + d.passing > 0 ? `<p>${d.passing} listed tests passed, ${d.failing.length} failed</p>` : '') +
        (d.failing.length > 0 ? `<ul>${d.failing.map((f) => `<li>${e(f.list)} <code>${e(f.test)}</code> (${e(f.status)})</li>`).join('')}</ul>` : '');
  const body = [
    `<nav><a href="${e(links.index)}">all trajectories</a>${links.report ? `<a href="${e(links.report)}">report</a>` : ''}</nav>`,
    `<h1>${e(v.instance_id)} · sample ${v.sample_index}</h1>`,
    `<p class="meta">${e(v.phase)} of run ${e(v.run)} · model ${e(v.model)} · T=${v.temperature} · seed ${v.seed} · ${e(v.protocol)} protocol · ${v.llm_calls} LLM calls · ${v.tokens.prompt}+${v.tokens.completion} tokens · ${(v.duration_ms / 1000).toFixed(1)} s</p>`,
    `<p>outcome: <strong>${e(v.outcome.status)}</strong>${v.outcome.fault ? ` (${e(v.outcome.fault)}'s fault)` : ''}${v.outcome.reason ? ` — ${e(v.outcome.reason)}` : ''} · verdict: <span class="badge ${e(v.filter)}" id="verdict">${e(verdict)}</span></p>`,
    `<p class="meta">states: ${v.path.map(e).join(' → ') || '(none)'}</p>`,
    `<h2>Calls</h2>${steps.join('\n')}`,
    v.transitions.length > 0 ? `<h2>Transitions</h2><p>${v.transitions.map((t) => `${e(t.from)} –[${e(t.trigger)}]→ ${e(t.to)}`).join('<br>')}</p>` : '',
    `<h2>Patch</h2>${v.patch === '' ? '<p>(empty patch)</p>' : longText(v.patch)}`,
    `<h2>Verdict</h2>${verdictHtml}`,
    v.log_excerpt !== null ? `<h2>Test log (excerpt${d?.log_truncated ? '; the stored log was cut to its size limit' : ''})</h2>${longText(v.log_excerpt)}` : '',
  ].join('\n');
  return page(`${v.instance_id} #${v.sample_index} (${v.phase})`, body);
}

/** What an index page lists of one trajectory. */
export interface TrajectoryEntry {
  phase: string;
  instance_id: string;
  sample_index: number;
  filter: Filter;
  verdict: string;
  llm_calls: number;
  /** Its page, or null: no page was asked for (--pages). */
  file: string | null;
}

export function renderTrajectoryIndex(run: string, entries: readonly TrajectoryEntry[], current: 'all' | Filter, links: { report: string | null }): string {
  const counts = { all: entries.length, resolved: 0, unresolved: 0, error: 0 };
  for (const x of entries) counts[x.filter] += 1;
  const nav = (['all', 'resolved', 'unresolved', 'error'] as const)
    .map((f) => (f === current ? `<span class="current">${f} (${counts[f]})</span>` : `<a href="${INDEX_PAGES[f]}">${f} (${counts[f]})</a>`))
    .join('');
  const shown = current === 'all' ? entries : entries.filter((x) => x.filter === current);
  const phases = [...new Set(shown.map((x) => x.phase))];
  const tables = phases.map((phase) => {
    const byInstance = new Map<string, TrajectoryEntry[]>();
    for (const x of shown.filter((x) => x.phase === phase)) byInstance.set(x.instance_id, [...(byInstance.get(x.instance_id) ?? []), x]);
    const rows = [...byInstance.entries()].map(([id, xs]) => {
      const sorted = [...xs].sort((a, b) => a.sample_index - b.sample_index);
      const links = sorted
        .map((x) => (x.file === null ? `<span class="${x.filter}" title="${e(x.verdict)}, ${x.llm_calls} calls; no page (rft report --pages)">#${x.sample_index} ${e(x.verdict)}</span>` : `<a class="${x.filter}" href="${e(x.file)}" title="${e(x.verdict)}, ${x.llm_calls} calls">#${x.sample_index} ${e(x.verdict)}</a>`))
        .join(' ');
      const resolved = xs.filter((x) => x.filter === 'resolved').length;
      return `<tr><td>${e(id)}</td><td>${resolved}/${xs.length}</td><td>${links}</td></tr>`;
    });
    return `<h2>${e(phase)}</h2><div class="table-wrap"><table><thead><tr><th>instance</th><th>resolved</th><th>samples</th></tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
  });
  const body = [
    `<nav>${links.report ? `<a href="${e(links.report)}">report</a>` : ''}${nav}</nav>`,
    `<h1>Trajectories of ${e(run)}${current === 'all' ? '' : `: ${current}`}</h1>`,
    `<p class="meta">resolved: the patch resolved the task · unresolved: verified and not resolved, or not verified yet · error: the trajectory or its verification ended in an error</p>`,
    tables.join('\n') || '<p>none</p>',
  ].join('\n');
  return page(`Trajectories of ${run} (${current})`, body);
}

export interface TrajectoryPages {
  dir: string;
  index: string;
  /** Trajectory pages the report has (written now + reused). */
  pages: number;
  written: number;
  reused: number;
  counts: Record<'all' | Filter, number>;
}

/**
 * Writes the trajectory pages of one run into `dir` (created if missing): a page for each
 * trajectory `pages` picks (page-selection.ts; the index pages list every trajectory and link the
 * ones with a page), then the four index pages. The index comes from the records' heads; only the
 * picked records are read whole, and a page whose inputs did not change is not written again
 * (page-reuse.ts). `reportHref` is the report's path relative to `dir`.
 */
export function writeTrajectoryPages(runDir: string, runName: string, dir: string, reportHref: string | null, pages: PagesSpec = parsePagesSpec(undefined)): TrajectoryPages {
  mkdirSync(dir, { recursive: true });
  const list: TrajectoryEntry[] = [];
  const inputs = PageInputs.open(dir);
  let written = 0;
  let reused = 0;
  for (const phase of phasesOf(runDir)) {
    const heads = trajectoryHeads(phase);
    const picked = pickPages(heads, pages);
    const toWrite: LedgerLocation[] = [];
    heads.forEach((h, i) => {
      const file = picked.has(i) ? trajectoryPageName(h.phase, h.instance_id, h.sample_index) : null;
      list.push({ phase: h.phase, instance_id: h.instance_id, sample_index: h.sample_index, filter: h.filter, verdict: h.verdict, llm_calls: h.llm_calls, file });
      if (file === null) return;
      if (inputs.current(file, inputs.hash(phase.trajectories, h.at, h.verdict, h.log, [INDEX_PAGES.all, reportHref ?? '']))) reused += 1;
      else toWrite.push(h.at);
    });
    forEachViewAt(phase, toWrite, (v) => {
      writeFileAtomic(path.join(dir, trajectoryPageName(v.phase, v.instance_id, v.sample_index)), renderTrajectoryPage(v, { index: INDEX_PAGES.all, report: reportHref }));
      written += 1;
    });
  }
  inputs.close();
  for (const f of ['all', 'resolved', 'unresolved', 'error'] as const) {
    writeFileAtomic(path.join(dir, INDEX_PAGES[f]), renderTrajectoryIndex(runName, list, f, { report: reportHref }));
  }
  const counts = { all: list.length, resolved: 0, unresolved: 0, error: 0 };
  for (const x of list) counts[x.filter] += 1;
  return { dir, index: path.join(dir, INDEX_PAGES.all), pages: written + reused, written, reused, counts };
}
