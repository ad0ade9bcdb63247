import { existsSync } from 'node:fs';
import path from 'node:path';
import { RUN_FILES } from '../store/run-dir.js';
import { candidateMark, candidateText, evalRanks } from './trajectory-context.js';
import { renderTrajectoryText } from './trajectory-text.js';
import { forInstanceViews, phasesOf, trajectoryHeads, type PhaseLedgers, type TrajectoryHeadEntry } from './trajectory-source.js';
import { visible } from './trajectory-view.js';

/** What `rft show` was asked for cannot be found: says what there is instead. */
export class ShowError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShowError';
  }
}

export interface ShowOptions {
  /** Train iteration k (default: the first one recorded), or `eval` for eval/m<m>. */
  iteration?: number;
  eval?: number;
  instance?: string;
  /** List only these instances (`--instance-ids`); an id the phase has no trajectory of is refused. */
  instanceIds?: readonly string[] | null;
  sample?: number;
  full?: boolean;
}

function pickPhase(runDir: string, o: ShowOptions): PhaseLedgers {
  if (!existsSync(path.join(runDir, RUN_FILES.meta)) && !existsSync(path.join(runDir, RUN_FILES.recipe))) {
    throw new ShowError(`${runDir} is not a run directory (no ${RUN_FILES.meta}); runs are made by \`rft run <recipe.yaml>\``);
  }
  const phases = phasesOf(runDir);
  const names = phases.map((p) => p.phase).join(', ') || 'none yet';
  if (o.iteration !== undefined && o.eval !== undefined) throw new ShowError('give --iteration or --eval, not both');
  const wanted =
    o.eval !== undefined
      ? phases.find((p) => p.kind === 'eval' && p.index === o.eval)
      : o.iteration !== undefined
        ? phases.find((p) => p.kind === 'train' && p.index === o.iteration)
        : phases[0];
  if (!wanted) {
    const asked = o.eval !== undefined ? `eval/m${o.eval}` : o.iteration !== undefined ? `iter-${o.iteration}` : 'any phase';
    throw new ShowError(`${runDir} has no trajectories for ${asked} (recorded: ${names})`);
  }
  return wanted;
}

/**
 * The list's mark of a sample: an empty patch (the model left nothing to verify) is not an error
 * (the harness or the endpoint failed; retried on resume), and neither is a sample not verified yet.
 */
const MARKS = { resolved: '✓', failed: '✗', empty: '∅', error: '!', unverified: '?' } as const;
const LEGEND = '✓ resolved, ✗ unresolved (tests fail, patch does not apply, timeout), ∅ empty patch, ! error (harness or endpoint), ? not verified, ⚠ tampering';

function markOf(v: Pick<TrajectoryHeadEntry, 'outcome' | 'status'>): string {
  switch (v.outcome) {
    case 'resolved':
      return MARKS.resolved;
    case 'unresolved':
    case 'apply_failed':
    case 'timeout':
      return MARKS.failed;
    case 'empty_patch':
      return MARKS.empty;
    case 'error':
    case 'repeated_error':
    case 'invalid_task':
      return MARKS.error;
    default:
      return v.status === 'error' ? MARKS.error : MARKS.unverified;
  }
}

/** Instance ids in reading order: `django-9` before `django-10`. */
const byInstanceId = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

/**
 * `rft show`: one trajectory as text (instance and sample given), else the list of what there is
 * — every instance of the phase with its samples' verdicts, or one instance's samples.
 */
export function showTrajectories(runDir: string, o: ShowOptions): string {
  const phase = pickPhase(path.resolve(runDir), o);
  if (o.instance !== undefined && o.instanceIds) throw new ShowError('give --instance (one, with its samples) or --instance-ids (a list), not both');
  if (o.instance === undefined) {
    if (o.sample !== undefined) throw new ShowError('--sample needs --instance (which instance\'s sample?)');
    const rows = new Map<string, Map<number, string>>();
    const wanted = o.instanceIds ? new Set(o.instanceIds) : null;
    // From the records' heads and the verdicts' outcomes: no record is read whole.
    for (const v of trajectoryHeads(phase)) {
      if (wanted && !wanted.has(v.instance_id)) continue;
      const samples = rows.get(v.instance_id) ?? new Map<number, string>();
      samples.set(v.sample_index, `#${v.sample_index}${markOf(v)}${v.outcome ?? 'unverified'}${v.tampered ? '⚠tampering' : ''}`);
      rows.set(v.instance_id, samples);
    }
    const missing = (o.instanceIds ?? []).filter((id) => !rows.has(id));
    if (missing.length > 0) throw new ShowError(`--instance-ids: ${phase.phase} has no trajectory of ${missing.map((id) => JSON.stringify(id)).join(', ')}; \`rft show ${runDir}\` lists the instances`);
    const lines = [...rows.entries()]
      .sort((a, b) => byInstanceId(a[0], b[0]))
      .map(([id, s]) => `  ${visible(id)}  ${[...s.entries()].sort((a, b) => a[0] - b[0]).map((x) => x[1]).join('  ')}`);
    return `${phase.phase}: ${rows.size} instances; show one with --instance ID --sample N\n  ${LEGEND}\n${lines.join('\n')}\n`;
  }
  let found: string | null = null;
  const samples = new Map<number, string>();
  // Eval candidates: the verifier's score and rank, and which one best-of-n submits.
  const ranks = phase.kind === 'eval' ? evalRanks(path.dirname(phase.trajectories)) : null;
  const instance = o.instance;
  // Through the ledger's offset index: one instance's records are read, not the whole ledger.
  const recorded = forInstanceViews(phase, instance, o.sample, (v) => {
    const candidate = ranks ? candidateMark(ranks, v.instance_id, v.sample_index) : null;
    const t = candidate ? candidateText(candidate) : null;
    const scored = ranks?.verifier ? (t ? ` · score ${t.score} · rank ${t.rank}${candidate!.submitted === 'yes' ? ' ◀ submitted' : candidate!.submitted === 'tied' ? ` ◀ ${t.submitted}` : ''}` : ' · not ranked (no final verdict)') : '';
    const tampering = v.verdict?.tampering ? `, tampering: ${[...new Set(v.verdict.tampering.reasons.map((r) => r.rule))].join(', ')}` : '';
    samples.set(v.sample_index, `#${v.sample_index} ${v.verdict?.outcome ?? 'unverified'} (${v.outcome.status}, ${v.llm_calls} calls${tampering})${scored}`);
    if (o.sample !== undefined && v.sample_index === o.sample) {
      found = renderTrajectoryText(v, { full: o.full ?? false, context: ranks ? { datasets: [], candidate, verifier: ranks.verifier } : null });
    }
  });
  if (recorded.length === 0) throw new ShowError(`${phase.phase} has no trajectory of instance ${JSON.stringify(o.instance)}; \`rft show ${runDir}\` lists the instances`);
  if (o.sample === undefined) {
    const pool = ranks?.byInstance.get(instance) ?? [];
    const pick = pool.find((c) => c.submitted === 'yes');
    const head =
      ranks === null
        ? ''
        : ranks.verifier === null
          ? ' · no verifier scores recorded'
          : ` · best-of-${pool.length} by verifier ${visible(ranks.verifier)}: ${pick ? `submits #${pick.sample_index} (${pick.resolved ? 'resolved' : 'not resolved'})` : pool.some((c) => c.submitted === 'tied') ? 'the top score is tied' : 'no pick until every candidate is scored'}`;
    return `${visible(o.instance)} in ${phase.phase}: ${samples.size} samples${head}; show one with --sample N\n${[...samples.entries()].sort((a, b) => a[0] - b[0]).map((x) => `  ${x[1]}`).join('\n')}\n`;
  }
  if (found === null) throw new ShowError(`${visible(o.instance)} has no sample ${o.sample} in ${phase.phase} (recorded: ${recorded.join(', ')})`);
  return found;
}
