import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { TrajectorySchema, type Trajectory } from '../agent/trajectory.js';
import { runLayout } from '../loop/layout.js';
import { readLedgerFile } from '../store/ledger.js';
import { normalizePatch, patchHash } from '../verify/patch.js';
import { isFinal, VerdictSchema, type Verdict } from '../verify/verdict.js';
import { trajectoryView, type TrajectoryView } from './trajectory-view.js';

/**
 * Where the trajectories of a run are, and each one with its verdict and test log, for
 * `rft show` and the report's trajectory pages. Records come from the ledger reader of
 * src/store; a view is built and handed on one trajectory at a time.
 */

export interface PhaseLedgers {
  /** `iter-<k>` or `eval/m<m>`. */
  phase: string;
  kind: 'train' | 'eval';
  index: number;
  trajectories: string;
  verdicts: string;
}

/** Every ledger folder of a run that holds trajectories: train iterations first, then evals. */
export function phasesOf(runDir: string): PhaseLedgers[] {
  const numbered = (dir: string, re: RegExp): number[] =>
    existsSync(dir)
      ? readdirSync(dir)
          .map((name) => re.exec(name))
          .filter((m): m is RegExpExecArray => m !== null && statSync(path.join(dir, m[0])).isDirectory())
          .map((m) => Number(m[1]))
          .sort((a, b) => a - b)
      : [];
  const out: PhaseLedgers[] = [];
  for (const k of numbered(runDir, /^iter-(\d+)$/)) {
    const trajectories = runLayout.trajectories(runDir, k);
    if (existsSync(trajectories)) out.push({ phase: `iter-${k}`, kind: 'train', index: k, trajectories, verdicts: runLayout.verdicts(runDir, k) });
  }
  for (const m of numbered(path.join(runDir, 'eval'), /^m(\d+)$/)) {
    const dir = runLayout.evalDir(runDir, m);
    const trajectories = path.join(dir, 'trajectories.jsonl');
    if (existsSync(trajectories)) out.push({ phase: `eval/m${m}`, kind: 'eval', index: m, trajectories, verdicts: path.join(dir, 'verdicts.jsonl') });
  }
  return out;
}

/** The verdict of each (instance, patch): a final one when there is one, as the pool takes it. */
function verdictIndex(file: string): (t: Trajectory) => Verdict | null {
  const byKey = new Map<string, Verdict>();
  for (const v of readLedgerFile(file, VerdictSchema).records) {
    const key = `${v.instance_id}@${v.patch_hash}`;
    const seen = byKey.get(key);
    if (seen === undefined || !isFinal(seen.outcome) || isFinal(v.outcome)) byKey.set(key, v);
  }
  return (t) => byKey.get(`${t.instance_id}@${patchHash(normalizePatch(t.patch))}`) ?? null;
}

function readLog(phase: PhaseLedgers, verdict: Verdict | null): string | null {
  if (verdict === null) return null;
  const file = runLayout.verifyLog(phase.verdicts, verdict.instance_id, verdict.patch_hash);
  return existsSync(file) ? readFileSync(file, 'utf8') : null;
}

/**
 * Calls `visit` with the view of every trajectory record of a phase, in ledger order (a sample
 * recorded twice — an infrastructure error, then its real record — is visited twice; the later
 * one is the one that counts). `want` filters on the record before the view is built.
 */
export function forEachTrajectoryView(
  phase: PhaseLedgers,
  visit: (view: TrajectoryView) => void,
  want: (t: Pick<Trajectory, 'instance_id' | 'sample_index'>) => boolean = () => true,
): void {
  const verdictOf = verdictIndex(phase.verdicts);
  for (const t of readLedgerFile(phase.trajectories, TrajectorySchema).records) {
    if (!want(t)) continue;
    const verdict = verdictOf(t);
    visit(trajectoryView(phase.phase, t, verdict, readLog(phase, verdict)));
  }
}
