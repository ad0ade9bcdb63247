import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../store/atomic.js';
import { renderInstancePage, type TrajectoryEntry } from './instance-page.js';
import { PageInputs } from './page-reuse.js';
import { parsePagesSpec, pickPages, type PagesSpec } from './page-selection.js';
import { candidateText, datasetMarkText, readRunContext, type TrajectoryContext } from './trajectory-context.js';
import { diffHtml, diffStat, e, longText, trajectoryDocument } from './trajectory-html.js';
import { forEachViewAt, phasesOf, trajectoryHeads } from './trajectory-source.js';
export type { TrajectoryEntry } from './instance-page.js';
import type { LedgerLocation } from '../store/ledger.js';
import type { Filter, MessageView, PromptView, StepView, TrajectoryView } from './trajectory-view.js';

/**
 * The report's trajectory browser: one static page per trajectory, a page per instance listing
 * its samples, and index pages — all, and one per filter (resolved / unresolved / error), so
 * filtering needs no script — each with a table per phase and instance linking to the pages.
 * Every page is self-contained (inline CSS, a CSP that forbids any request) and readable without
 * script; collapsed text uses <details>. Pages are written as the trajectories are read, one at a
 * time; only a small entry per trajectory is kept for the index and instance pages.
 */

export const TRAJECTORIES_DIR = 'trajectories';
export const INDEX_PAGES: Record<'all' | Filter, string> = { all: 'index.html', resolved: 'resolved.html', unresolved: 'unresolved.html', error: 'error.html' };

function pageFileStem(phase: string, instanceId: string): string {
  const readable = instanceId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);
  const idHash = createHash('sha256').update(instanceId).digest('hex').slice(0, 8);
  return `${phase.replace(/[^A-Za-z0-9]/g, '-')}--${readable}-${idHash}`;
}

/** The file name of a trajectory's page: readable, unique per (phase, instance, sample), safe on any file system. */
export function trajectoryPageName(phase: string, instanceId: string, sample: number): string {
  return `${pageFileStem(phase, instanceId)}--s${sample}.html`;
}

/** The file name of an instance's page (every sample of it in one phase). */
export function instancePageName(phase: string, instanceId: string): string {
  return `${pageFileStem(phase, instanceId)}.html`;
}

function messageHtml(m: MessageView, prompts: readonly PromptView[]): string {
  if (m.prompt !== null) {
    const p = prompts[m.prompt]!;
    return `<div class="role">system: <a href="#prompt-${m.prompt + 1}">the ${e(p.state)} prompt</a> (shown once, under System prompts)</div>`;
  }
  return `<div class="role">${e(m.role)}</div>${longText(m.text === '' ? '(empty)' : m.text)}`;
}

/** An action on one line, cut, for a call's summary. */
function preview(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 90 ? `${flat.slice(0, 90)}…` : flat;
}

function stepHtml(s: StepView, prompts: readonly PromptView[]): string {
  const flags = [s.retry ? 'retry' : '', s.fresh_prompt ? 'new prompt' : `${s.repeated} earlier messages not repeated`, s.tokens !== null ? `${s.tokens} tokens` : '', `${(s.latency_ms / 1000).toFixed(1)} s`]
    .filter(Boolean)
    .join(' · ');
  const invalid = s.invalid ? ' <span class="invalid">✗ not a valid action</span>' : '';
  return (
    `<details class="step" id="call-${s.call}"><summary>call ${s.call} · ${e(s.state)}${invalid} <span class="preview">${e(preview(s.action.text))}</span></summary>` +
    `<p class="meta">${e(flags)}</p>${s.shown.map((m) => messageHtml(m, prompts)).join('')}` +
    `<div class="action"><div class="role">action (${e(s.action.role)})</div>${longText(s.action.text === '' ? '(empty)' : s.action.text)}</div>` +
    (s.invalid ? `<p class="invalid">not a valid action: ${e(s.invalid)}</p>` : '') +
    '</details>'
  );
}

function promptsHtml(prompts: readonly PromptView[]): string {
  if (prompts.length === 0) return '';
  const items = prompts.map((p, i) => {
    const calls = p.calls.length === 1 ? `call ${p.calls[0]}` : `calls ${p.calls.join(', ')}`;
    const schema = p.schema === null ? '' : `<details><summary>its JSON Schema (${p.schema.split('\n').length} lines)</summary><pre>${e(p.schema)}</pre></details>`;
    return `<details class="step" id="prompt-${i + 1}"><summary>${e(p.state)} <span class="preview">sent by ${e(calls)}; ${p.text.length} characters${p.schema === null ? '' : ' + JSON Schema'}</span></summary>${longText(p.text)}${schema}</details>`;
  });
  return `<section id="prompts"><h2>System prompts <small>each shown once; the calls link here</small></h2>${items.join('')}</section>`;
}

function verdictLine(v: TrajectoryView): string {
  const d = v.verdict;
  const parts = [
    `outcome: <strong>${e(v.outcome.status)}</strong>${v.outcome.fault ? ` (${e(v.outcome.fault)}'s fault)` : ''}${v.outcome.reason ? ` — ${e(v.outcome.reason)}` : ''}`,
    d && d.failing.length + d.passing > 0 ? `listed tests: ${d.passing} passed, ${d.failing.length} failed` : '',
    d?.reason ? e(d.reason) : '',
    d?.apply_method ? `applied with ${e(d.apply_method)}` : '',
    d && d.test_exit_code !== null ? `test exit code ${d.test_exit_code}` : '',
  ].filter(Boolean);
  return `<p>verdict: <span class="badge ${e(v.filter)}" id="verdict">${e(d?.outcome ?? 'no verdict yet')}</span> · ${parts.join(' · ')}</p>`;
}

function contextHtml(v: TrajectoryView, c: TrajectoryContext | null): string {
  if (c === null) return '';
  if (v.phase.startsWith('iter-')) {
    const kept = c.datasets.some((d) => d.kept);
    const text = c.datasets.length === 0 ? 'no dataset made from this iteration yet' : c.datasets.map(datasetMarkText).join(' · ');
    return `<p id="datasets">datasets: <strong>${kept ? 'kept' : 'not kept'}</strong> · ${e(text)}</p>`;
  }
  if (c.candidate !== null) {
    const t = candidateText(c.candidate);
    const cls = c.candidate.submitted === 'yes' ? ' class="submitted"' : '';
    return `<p id="best-of-n">best-of-${c.candidate.of} by verifier ${e(c.candidate.verifier)}: score ${e(t.score)} · rank ${e(t.rank)} · <span${cls}>${e(t.submitted)}</span></p>`;
  }
  if (c.verifier !== null) return `<p id="best-of-n">verifier ${e(c.verifier)}: not ranked (no final verdict on this candidate, so it is not in the best-of-n pool)</p>`;
  return '';
}

export interface TrajectoryLinks {
  index: string;
  report: string | null;
  /** The instance page. */
  instance: string;
  /** The previous and next sample of the instance that have pages. */
  prev: { sample: number; href: string } | null;
  next: { sample: number; href: string } | null;
}

function testsHtml(v: TrajectoryView): string {
  const d = v.verdict;
  if (d === null) return '<p>not verified yet</p>';
  const list =
    d.failing.length > 0
      ? `<ul>${d.failing.map((f) => `<li>${e(f.list)} <code>${e(f.test)}</code> (${e(f.status)})</li>`).join('')}</ul>`
      : `<p>${d.passing > 0 ? `all ${d.passing} listed tests passed` : 'no listed test failed'}</p>`;
  const log = v.log_excerpt !== null ? `<p class="meta">test log (excerpt${d.log_truncated ? '; the stored log was cut to its size limit' : ''})</p>${longText(v.log_excerpt)}` : '';
  return list + log;
}

/**
 * One trajectory, answer first: the verdict and outcome, the datasets that kept it or the
 * verifier's rank, the patch as a coloured diff, the failing tests with their log; then each
 * state's system prompt once, and the calls as collapsed sections (no script needed).
 */
export function renderTrajectoryPage(v: TrajectoryView, links: TrajectoryLinks, context: TrajectoryContext | null = null): string {
  const d = v.verdict;
  const stat = diffStat(v.patch);
  const nav = [
    `<a href="${e(links.index)}">all trajectories</a>`,
    `<a href="${e(links.instance)}">all samples of this instance</a>`,
    links.prev ? `<a href="${e(links.prev.href)}" rel="prev">← sample ${links.prev.sample}</a>` : '',
    links.next ? `<a href="${e(links.next.href)}" rel="next">sample ${links.next.sample} →</a>` : '',
    links.report ? `<a href="${e(links.report)}">report</a>` : '',
  ].join('');
  const toc: Array<[string, string]> = [
    ['patch', 'patch'],
    ['tests', d && d.failing.length > 0 ? `failing tests (${d.failing.length})` : 'tests'],
    ...(v.prompts.length > 0 ? [['prompts', `system prompts (${v.prompts.length})`] as [string, string]] : []),
    ['calls', `calls (${v.steps.length})`],
    ...(v.transitions.length > 0 ? [['transitions', 'transitions'] as [string, string]] : []),
  ];
  const patchStat = v.patch === '' ? '' : `${stat.files} file${stat.files === 1 ? '' : 's'}, +${stat.added} −${stat.removed}`;
  const body = [
    `<nav>${nav}</nav>`,
    `<h1>${e(v.instance_id)} · sample ${v.sample_index}</h1>`,
    `<p class="meta">${e(v.phase)} of run ${e(v.run)} · model ${e(v.model)} · T=${v.temperature} · seed ${v.seed} · ${e(v.protocol)} protocol · ${v.llm_calls} LLM calls · ${v.tokens.prompt}+${v.tokens.completion} tokens · ${(v.duration_ms / 1000).toFixed(1)} s · states: ${v.path.map(e).join(' → ') || '(none)'}</p>`,
    `<section class="summary" id="summary">${verdictLine(v)}${contextHtml(v, context)}<p class="toc" id="contents">jump to: ${toc.map(([id, label]) => `<a href="#${id}">${e(label)}</a>`).join('')}</p></section>`,
    `<section id="patch"><h2>Patch <small>${patchStat}</small></h2>${v.patch === '' ? '<p>(empty patch)</p>' : diffHtml(v.patch)}</section>`,
    `<section id="tests"><h2>${d && d.failing.length > 0 ? 'Failing tests' : 'Tests'}</h2>${testsHtml(v)}</section>`,
    promptsHtml(v.prompts),
    `<section id="calls"><h2>Calls <small>collapsed: open one to read what was new in its prompt and the action</small></h2>` +
      `<ol class="calls">${v.steps.map((s) => `<li><a href="#call-${s.call}">${e(s.state)}</a>${s.invalid ? ' <span class="invalid">✗</span>' : ''}</li>`).join('')}</ol>` +
      `${v.steps.map((s) => stepHtml(s, v.prompts)).join('\n')}</section>`,
    v.transitions.length > 0 ? `<section id="transitions"><h2>Transitions</h2><p>${v.transitions.map((t) => `${e(t.from)} –[${e(t.trigger)}]→ ${e(t.to)}`).join('<br>')}</p></section>` : '',
  ].join('\n');
  return trajectoryDocument(`${v.instance_id} #${v.sample_index} (${v.phase})`, body);
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
      const samples = sorted
        .map((x) => {
          const label = `#${x.sample_index} ${e(x.verdict)}${x.context?.candidate?.submitted === 'yes' ? ' ★' : ''}`;
          return x.file === null
            ? `<span class="${x.filter}" title="${e(x.verdict)}, ${x.llm_calls} calls; no page (rft report --pages)">${label}</span>`
            : `<a class="${x.filter}" href="${e(x.file)}" title="${e(x.verdict)}, ${x.llm_calls} calls">${label}</a>`;
        })
        .join(' ');
      const resolved = xs.filter((x) => x.filter === 'resolved').length;
      return `<tr><td><a href="${e(instancePageName(phase, id))}">${e(id)}</a></td><td>${resolved}/${xs.length}</td><td>${samples}</td></tr>`;
    });
    return `<h2>${e(phase)}</h2><div class="table-wrap"><table><thead><tr><th>instance</th><th>resolved</th><th>samples</th></tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
  });
  const body = [
    `<nav>${links.report ? `<a href="${e(links.report)}">report</a>` : ''}${nav}</nav>`,
    `<h1>Trajectories of ${e(run)}${current === 'all' ? '' : `: ${current}`}</h1>`,
    `<p class="meta">resolved: the patch resolved the task · unresolved: verified and not resolved, or not verified yet · error: the trajectory or its verification ended in an error · ★ the candidate best-of-n submits</p>`,
    tables.join('\n') || '<p>none</p>',
  ].join('\n');
  return trajectoryDocument(`Trajectories of ${run} (${current})`, body);
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
 * trajectory `pages` picks (page-selection.ts; the index and instance pages list every trajectory
 * and link the ones with a page; previous/next link picked siblings only), one page per instance
 * and phase, then the four index pages. The lists come from the records' heads; only the picked
 * records are read whole, and a page whose inputs did not change is not written again
 * (page-reuse.ts). `reportHref` is the report's path relative to `dir`.
 */
export function writeTrajectoryPages(runDir: string, runName: string, dir: string, reportHref: string | null, pages: PagesSpec = parsePagesSpec(undefined)): TrajectoryPages {
  mkdirSync(dir, { recursive: true });
  const context = readRunContext(runDir);
  const list: TrajectoryEntry[] = [];
  const inputs = PageInputs.open(dir);
  let written = 0;
  let reused = 0;
  for (const phase of phasesOf(runDir)) {
    const heads = trajectoryHeads(phase);
    const picked = pickPages(heads, pages);
    // Previous/next within an instance link only samples that have a page.
    const withPage = new Map<string, number[]>();
    heads.forEach((h, i) => {
      if (!picked.has(i)) return;
      const samples = withPage.get(h.instance_id);
      if (samples) samples.push(h.sample_index);
      else withPage.set(h.instance_id, [h.sample_index]);
    });
    for (const samples of withPage.values()) samples.sort((a, b) => a - b);
    const toWrite: LedgerLocation[] = [];
    const linksOf = new Map<string, TrajectoryLinks>();
    const contextOf = new Map<string, TrajectoryContext | null>();
    heads.forEach((h, i) => {
      const file = picked.has(i) ? trajectoryPageName(h.phase, h.instance_id, h.sample_index) : null;
      const ctx = context.of(phase, h.instance_id, h.sample_index);
      list.push({
        phase: h.phase,
        instance_id: h.instance_id,
        sample_index: h.sample_index,
        filter: h.filter,
        verdict: h.verdict,
        outcome: h.status,
        llm_calls: h.llm_calls,
        tokens: h.tokens,
        context: ctx,
        file,
      });
      if (file === null) return;
      const siblings = withPage.get(h.instance_id)!;
      const at = siblings.indexOf(h.sample_index);
      const neighbour = (k: number) => (k >= 0 && k < siblings.length ? { sample: siblings[k]!, href: trajectoryPageName(h.phase, h.instance_id, siblings[k]!) } : null);
      const links: TrajectoryLinks = { index: INDEX_PAGES.all, report: reportHref, instance: instancePageName(h.phase, h.instance_id), prev: neighbour(at - 1), next: neighbour(at + 1) };
      const key = JSON.stringify([h.instance_id, h.sample_index]);
      linksOf.set(key, links);
      contextOf.set(key, ctx);
      if (inputs.current(file, inputs.hash(phase.trajectories, h.at, h.verdict, h.log, [JSON.stringify(links), JSON.stringify(ctx)]))) reused += 1;
      else toWrite.push(h.at);
    });
    forEachViewAt(phase, toWrite, (v) => {
      const key = JSON.stringify([v.instance_id, v.sample_index]);
      writeFileAtomic(path.join(dir, trajectoryPageName(v.phase, v.instance_id, v.sample_index)), renderTrajectoryPage(v, linksOf.get(key)!, contextOf.get(key) ?? null));
      written += 1;
    });
  }
  inputs.close();
  const byInstance = new Map<string, TrajectoryEntry[]>();
  for (const x of list) {
    const key = JSON.stringify([x.phase, x.instance_id]);
    const samples = byInstance.get(key);
    if (samples) samples.push(x);
    else byInstance.set(key, [x]);
  }
  for (const samples of byInstance.values()) {
    const { phase, instance_id } = samples[0]!;
    writeFileAtomic(path.join(dir, instancePageName(phase, instance_id)), renderInstancePage(runName, samples, { index: INDEX_PAGES.all, report: reportHref }));
  }
  for (const f of ['all', 'resolved', 'unresolved', 'error'] as const) {
    writeFileAtomic(path.join(dir, INDEX_PAGES[f]), renderTrajectoryIndex(runName, list, f, { report: reportHref }));
  }
  const counts = { all: list.length, resolved: 0, unresolved: 0, error: 0 };
  for (const x of list) counts[x.filter] += 1;
  return { dir, index: path.join(dir, INDEX_PAGES.all), pages: written + reused, written, reused, counts };
}
