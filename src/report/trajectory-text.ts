import { candidateText, datasetMarkText, type TrajectoryContext } from './trajectory-context.js';
import { collapse, visible, type MessageView, type PromptView, type TrajectoryView } from './trajectory-view.js';

/**
 * A trajectory for the terminal (`rft show`): a header, the path through the states, each call's
 * new prompt messages and the action answered, the patch, the verdict and the failing tests'
 * log. Long texts are collapsed (head and tail, the middle counted) unless `full`; every text is
 * passed through `visible`, so nothing a model wrote can send escape sequences to the terminal.
 */

export interface TextOptions {
  full?: boolean;
  /** The datasets that kept it, or the verifier's rank of it. */
  context?: TrajectoryContext | null;
}

function indent(text: string, prefix = '    '): string {
  return text
    .split('\n')
    .map((l) => `${prefix}${l}`)
    .join('\n');
}

function body(text: string, full: boolean): string {
  const safe = visible(text);
  const c = full ? null : collapse(safe);
  if (c === null) return indent(safe);
  const what = c.hiddenLines > 0 ? `${c.hiddenLines} lines, ${c.hiddenChars} characters` : `${c.hiddenChars} characters`;
  return [indent(c.head), `    ⋯ [${what} collapsed; --full shows everything]`, indent(c.tail)].join('\n');
}

function message(m: MessageView, full: boolean, prompts: readonly PromptView[]): string {
  if (m.prompt !== null) return `  system: the ${visible(prompts[m.prompt]!.state)} prompt (system prompt ${m.prompt + 1}, above)`;
  return `  ${visible(m.role)}:\n${body(m.text === '' ? '(empty)' : m.text, full)}`;
}

export function renderTrajectoryText(v: TrajectoryView, options: TextOptions = {}): string {
  const full = options.full ?? false;
  const s = visible;
  const out: string[] = [];
  const verdict = v.verdict ? v.verdict.outcome : 'no verdict yet';
  out.push(`${s(v.instance_id)} · sample ${v.sample_index} · ${s(v.phase)} of run ${s(v.run)}`);
  out.push(`model ${s(v.model)} · T=${v.temperature} · seed ${v.seed} · ${v.protocol} protocol · ${v.llm_calls} LLM calls · ${v.tokens.prompt}+${v.tokens.completion} tokens · ${(v.duration_ms / 1000).toFixed(1)} s`);
  const reason = v.outcome.reason ? ` (${s(v.outcome.reason)})` : '';
  out.push(`outcome: ${v.outcome.status}${v.outcome.fault ? `, ${v.outcome.fault}'s fault` : ''}${reason} · verdict: ${verdict} · ${v.filter.toUpperCase()}`);
  out.push(`states: ${v.path.map(s).join(' → ') || '(none)'}`);
  const c = options.context ?? null;
  if (c !== null && v.phase.startsWith('iter-')) out.push(`datasets: ${c.datasets.length === 0 ? 'no dataset made from this iteration yet' : c.datasets.map(datasetMarkText).map(s).join(' · ')}`);
  if (c?.candidate) {
    const t = candidateText(c.candidate);
    out.push(`best-of-${c.candidate.of} by verifier ${s(c.candidate.verifier)}: score ${t.score} · rank ${t.rank} · ${t.submitted}`);
  }
  v.prompts.forEach((p, i) => {
    out.push('', `── system prompt ${i + 1} · ${s(p.state)} (sent by call${p.calls.length === 1 ? '' : 's'} ${p.calls.join(', ')})`);
    out.push(body(p.text, full));
    if (p.schema !== null) out.push('  JSON Schema:', body(p.schema, full));
  });
  for (const step of v.steps) {
    const flags = [step.retry ? 'retry' : '', step.fresh_prompt ? 'new prompt' : `${step.repeated} earlier messages not repeated`, step.tokens !== null ? `${step.tokens} tokens` : '']
      .filter(Boolean)
      .join(', ');
    out.push('', `── call ${step.call} · ${s(step.state)} (${flags})`);
    for (const m of step.shown) out.push(message(m, full, v.prompts));
    out.push(`  ▶ action:\n${body(step.action.text === '' ? '(empty)' : step.action.text, full)}`);
    if (step.invalid) out.push(`  ✗ not a valid action: ${s(step.invalid)}`);
  }
  if (v.transitions.length > 0) out.push('', `transitions: ${v.transitions.map((t) => `${s(t.from)} -[${s(t.trigger)}]→ ${s(t.to)}`).join(', ')}`);
  out.push('', '── patch');
  out.push(v.patch === '' ? '    (empty patch)' : body(v.patch, full));
  out.push('', '── verdict');
  if (v.verdict === null) {
    out.push('    not verified yet');
  } else {
    const d = v.verdict;
    out.push(`    ${d.outcome}${d.reason ? `: ${s(d.reason)}` : ''}${d.apply_method ? ` · applied with ${d.apply_method}` : ''}${d.test_exit_code !== null ? ` · test exit code ${d.test_exit_code}` : ''}`);
    if (d.failing.length > 0 || d.passing > 0) out.push(`    ${d.passing} listed tests passed, ${d.failing.length} failed`);
    for (const f of d.failing) out.push(`    ✗ ${f.list} ${s(f.test)} (${f.status})`);
    if (d.tampering) {
      out.push(`    ⚠ tampering: not trained on unless select.allow_tampering (RELIABILITY.md)`);
      for (const r of d.tampering.reasons) out.push(`    ⚠ ${r.rule}${r.file !== null ? ` ${s(r.file)}${r.line !== null ? `:${r.line}` : ''}` : ''}: ${s(r.detail)}`);
    }
  }
  if (v.log_excerpt !== null) {
    out.push('', `── test log (excerpt${v.verdict?.log_truncated ? '; the stored log was cut to its size limit' : ''})`);
    out.push(body(v.log_excerpt, full));
  }
  return `${out.join('\n')}\n`;
}
