import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Trajectory } from '../agent/trajectory.js';
import { runLayout } from '../loop/layout.js';
import { readTrajectoriesAt, readVerdictsStreaming, scanPool } from '../select/scan.js';
import { normalizePatch, patchHash } from '../verify/patch.js';
import { trajectoryKey } from '../select/pool.js';
import { isFinal, type Verdict } from '../verify/verdict.js';
import { trajectoryView, type TrajectoryView } from './trajectory-view.js';

/**
 * Where the trajectories of a run are, and each one with its verdict and test log, for
 * `rft show` and the report's trajectory pages. Records come from the project's streaming ledger
 * readers (src/select/scan.ts): the ledger is scanned for where each record is, then the wanted
 * records are read back one at a time, so memory holds one trajectory (plus a few hundred bytes
 * per record and the verdicts), never the whole ledger.
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
  readVerdictsStreaming(file, (read) => {
    const v = read as Verdict; // `full`: every field, validated by VerdictSchema
    const key = `${v.instance_id}@${v.patch_hash}`;
    const seen = byKey.get(key);
    if (seen === undefined || !isFinal(seen.outcome) || isFinal(v.outcome)) byKey.set(key, v);
  }, { full: true });
  return (t) => byKey.get(`${t.instance_id}@${patchHash(normalizePatch(t.patch))}`) ?? null;
}

function readLog(phase: PhaseLedgers, verdict: Verdict | null): string | null {
  if (verdict === null) return null;
  const file = runLayout.verifyLog(phase.verdicts, verdict.instance_id, verdict.patch_hash);
  return existsSync(file) ? readFileSync(file, 'utf8') : null;
}

/** Where a visited trajectory stands among the visited ones. */
export interface Siblings {
  /** The sample indices of its instance that are visited, ascending (for previous/next links). */
  samples: number[];
}

/**
 * Calls `visit` with the view of every trajectory of a phase, in ledger order. Records of
 * infrastructure errors (not data: the sample is retried on resume) are left out, as the pool
 * leaves them out. `want` picks records by instance and sample before they are read.
 */
export function forEachTrajectoryView(
  phase: PhaseLedgers,
  visit: (view: TrajectoryView, siblings: Siblings) => void,
  want: (t: Pick<Trajectory, 'instance_id' | 'sample_index'>) => boolean = () => true,
): void {
  const verdictOf = verdictIndex(phase.verdicts);
  // Only where each record is: the scan's own verdict lookup is not used (the key never matches).
  const scanned = scanPool(phase.trajectories, phase.verdicts, () => '');
  const picked = scanned.entries.filter(want);
  const samples = new Map<string, number[]>();
  for (const e of picked) {
    const list = samples.get(e.instance_id);
    if (list) list.push(e.sample_index);
    else samples.set(e.instance_id, [e.sample_index]);
  }
  for (const list of samples.values()) list.sort((a, b) => a - b);
  const wanted = picked.map((e) => scanned.locations.get(trajectoryKey(e))!);
  wanted.sort((a, b) => a.offset - b.offset);
  for (const t of readTrajectoriesAt(phase.trajectories, wanted)) {
    const verdict = verdictOf(t);
    visit(trajectoryView(phase.phase, t, verdict, readLog(phase, verdict)), { samples: samples.get(t.instance_id) ?? [t.sample_index] });
  }
}
