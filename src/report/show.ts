import { existsSync } from 'node:fs';
import path from 'node:path';
import { RUN_FILES } from '../store/run-dir.js';
import { renderTrajectoryText } from './trajectory-text.js';
import { forInstanceViews, phasesOf, trajectoryHeads, type PhaseLedgers } from './trajectory-source.js';
import { visible, type Filter } from './trajectory-view.js';

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

const MARK: Record<Filter, string> = { resolved: '✓', unresolved: '✗', error: '!' };

/**
 * `rft show`: one trajectory as text (instance and sample given), else the list of what there is
 * — every instance of the phase with its samples' verdicts, or one instance's samples.
 */
export function showTrajectories(runDir: string, o: ShowOptions): string {
  const phase = pickPhase(path.resolve(runDir), o);
  if (o.instance === undefined) {
    if (o.sample !== undefined) throw new ShowError('--sample needs --instance (which instance\'s sample?)');
    const rows = new Map<string, Map<number, string>>();
    // From the records' heads and the verdicts' outcomes: no record is read whole.
    for (const v of trajectoryHeads(phase)) {
      const samples = rows.get(v.instance_id) ?? new Map<number, string>();
      samples.set(v.sample_index, `#${v.sample_index}${MARK[v.filter]}${v.outcome ?? 'unverified'}`);
      rows.set(v.instance_id, samples);
    }
    const lines = [...rows.entries()].map(([id, s]) => `  ${visible(id)}  ${[...s.entries()].sort((a, b) => a[0] - b[0]).map((x) => x[1]).join('  ')}`);
    return `${phase.phase}: ${rows.size} instances (✓ resolved, ✗ unresolved, ! error); show one with --instance ID --sample N\n${lines.join('\n')}\n`;
  }
  let found: string | null = null;
  const samples = new Map<number, string>();
  // Through the ledger's offset index: one instance's records are read, not the whole ledger.
  const recorded = forInstanceViews(phase, o.instance, o.sample, (v) => {
    samples.set(v.sample_index, `#${v.sample_index} ${v.verdict?.outcome ?? 'unverified'} (${v.outcome.status}, ${v.llm_calls} calls)`);
    if (o.sample !== undefined && v.sample_index === o.sample) found = renderTrajectoryText(v, { full: o.full ?? false });
  });
  if (recorded.length === 0) throw new ShowError(`${phase.phase} has no trajectory of instance ${JSON.stringify(o.instance)}; \`rft show ${runDir}\` lists the instances`);
  if (o.sample === undefined) {
    return `${visible(o.instance)} in ${phase.phase}: ${samples.size} samples; show one with --sample N\n${[...samples.entries()].sort((a, b) => a[0] - b[0]).map((x) => `  ${x[1]}`).join('\n')}\n`;
  }
  if (found === null) throw new ShowError(`${visible(o.instance)} has no sample ${o.sample} in ${phase.phase} (recorded: ${recorded.join(', ')})`);
  return found;
}
