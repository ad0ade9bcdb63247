import { candidateText, datasetMarkText, type TrajectoryContext } from './trajectory-context.js';
import { e, trajectoryDocument } from './trajectory-html.js';
import type { Filter } from './trajectory-view.js';

/**
 * The page of one instance in one phase: every sample with its outcome, verdict, calls, tokens,
 * and the datasets that kept it (train) or the verifier's score, rank and pick (eval), each
 * linking to its trajectory page. Pure: entries → HTML.
 */

/** What an index or instance page lists of one trajectory. */
export interface TrajectoryEntry {
  phase: string;
  instance_id: string;
  sample_index: number;
  filter: Filter;
  verdict: string;
  outcome: string;
  llm_calls: number;
  tokens: number;
  context: TrajectoryContext | null;
  /** Its page, relative to the folder of the pages, or null: no page was asked for (rft report --pages). */
  file: string | null;
}

export function renderInstancePage(run: string, samples: readonly TrajectoryEntry[], links: { index: string; report: string | null }): string {
  const sorted = [...samples].sort((a, b) => a.sample_index - b.sample_index);
  const { phase, instance_id } = sorted[0]!;
  const evalPhase = !phase.startsWith('iter-');
  const verifier = sorted.find((x) => x.context?.verifier)?.context?.verifier ?? null;
  const scored = evalPhase && verifier !== null;
  const headers = ['sample', 'verdict', 'outcome', 'LLM calls', 'tokens', ...(scored ? ['score', 'rank', 'best-of-n pick'] : []), ...(evalPhase ? [] : ['datasets'])];
  const numeric = new Set(['LLM calls', 'tokens', 'score']);
  const rows = sorted.map((x) => {
    const c = x.context?.candidate ?? null;
    const t = c ? candidateText(c) : null;
    const cells = [
      x.file === null ? `<span title="no page (rft report --pages)">#${x.sample_index}</span>` : `<a href="${e(x.file)}">#${x.sample_index}</a>`,
      `<span class="${x.filter}">${e(x.verdict)}</span>`,
      e(x.outcome),
      String(x.llm_calls),
      String(x.tokens),
      ...(scored ? [t ? e(t.score) : 'not in the pool', t ? e(t.rank) : '–', t ? `<span${c!.submitted === 'yes' ? ' class="submitted"' : ''}>${e(t.submitted)}</span>` : '–'] : []),
      ...(evalPhase ? [] : [e((x.context?.datasets ?? []).map(datasetMarkText).join('; ') || '–')]),
    ];
    return `<tr>${cells.map((cell, i) => `<td${numeric.has(headers[i]!) ? ' class="num"' : ''}>${cell}</td>`).join('')}</tr>`;
  });
  const resolved = sorted.filter((x) => x.filter === 'resolved').length;
  const pick = sorted.find((x) => x.context?.candidate?.submitted === 'yes');
  const body = [
    `<nav><a href="${e(links.index)}">all trajectories</a>${links.report ? `<a href="${e(links.report)}">report</a>` : ''}</nav>`,
    `<h1>${e(instance_id)}</h1>`,
    `<p class="meta">${e(phase)} of run ${e(run)} · ${resolved} of ${sorted.length} samples resolved${scored ? ` · verifier ${e(verifier!)}${pick ? `: submits #${pick.sample_index} (${e(pick.verdict)})` : ''}` : ''}</p>`,
    `<div class="table-wrap"><table id="samples"><thead><tr>${headers.map((h) => `<th${numeric.has(h) ? ' class="num"' : ''}>${e(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table></div>`,
  ].join('\n');
  return trajectoryDocument(`${instance_id} (${phase})`, body);
}
