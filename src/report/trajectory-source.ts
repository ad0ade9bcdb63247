import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Trajectory } from '../agent/trajectory.js';
import { runLayout } from '../loop/layout.js';
import { readTrajectoriesAt, readVerdictsStreaming, type VerdictOutcome } from '../select/scan.js';
import { normalizePatch, patchHash } from '../verify/patch.js';
import { isFinal, VerdictSchema, type Verdict } from '../verify/verdict.js';
import { ledgerLines, parseLedgerLine, type LedgerLocation } from '../store/ledger.js';
import { readTrajectoryHeads, type TrajectoryHead } from '../store/trajectories.js';
import { isInfrastructureError } from '../select/pool.js';
import { locateInstance } from '../store/trajectory-index.js';
import { filterOf, trajectoryView, type Filter, type TrajectoryView } from './trajectory-view.js';

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

/** Keeps `v` as the verdict of its (instance, patch) unless a final one is kept already, as the pool takes it. */
function keepVerdict<V extends Pick<Verdict, 'instance_id' | 'patch_hash' | 'outcome'>>(byKey: Map<string, V>, v: V): void {
  const key = `${v.instance_id}@${v.patch_hash}`;
  const seen = byKey.get(key);
  if (seen === undefined || !isFinal(seen.outcome) || isFinal(v.outcome)) byKey.set(key, v);
}

const verdictOfIn = (byKey: Map<string, Verdict>) => (t: Trajectory) => byKey.get(`${t.instance_id}@${patchHash(normalizePatch(t.patch))}`) ?? null;

/** The verdict of each (instance, patch): a final one when there is one, as the pool takes it. */
function verdictIndex(file: string): (t: Trajectory) => Verdict | null {
  const byKey = new Map<string, Verdict>();
  readVerdictsStreaming(file, (read) => keepVerdict(byKey, read as Verdict), { full: true }); // `full`: every field, validated by VerdictSchema
  return verdictOfIn(byKey);
}

/**
 * The verdicts of one instance: only lines holding its id as the `instance_id` value are parsed
 * (the bytes `"instance_id":"<id>"` cannot occur inside a JSON string, whose quotes are escaped).
 */
function instanceVerdicts(file: string, instanceId: string): (t: Trajectory) => Verdict | null {
  const needle = Buffer.from(`"instance_id":${JSON.stringify(instanceId)}`);
  const byKey = new Map<string, Verdict>();
  for (const { bytes, line } of ledgerLines(file)) {
    if (bytes.indexOf(needle) === -1) continue;
    const v = parseLedgerLine(file, line, bytes.toString('utf8'), VerdictSchema);
    if (v.instance_id === instanceId) keepVerdict(byKey, v);
  }
  return verdictOfIn(byKey);
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
 * The views of one instance's trajectories (one sample, or all of them when `sample` is
 * undefined), found through the ledger's offset index (src/store/trajectory-index.ts): only those
 * records and the instance's verdicts are read, so one trajectory costs about the same in a run of
 * 250 or of 73,140. Returns the instance's recorded sample indexes, whether or not they were asked for.
 */
export function forInstanceViews(phase: PhaseLedgers, instanceId: string, sample: number | undefined, visit: (view: TrajectoryView) => void): number[] {
  const at = locateInstance(phase.trajectories, instanceId);
  const samples = [...at.keys()].sort((a, b) => a - b);
  const wanted = [...at.entries()].filter(([s]) => sample === undefined || s === sample).map(([, location]) => location);
  if (wanted.length === 0) return samples;
  const verdictOf = instanceVerdicts(phase.verdicts, instanceId);
  for (const t of readTrajectoriesAt(phase.trajectories, wanted.sort((a, b) => a.offset - b.offset))) {
    const verdict = verdictOf(t);
    visit(trajectoryView(phase.phase, t, verdict, readLog(phase, verdict)));
  }
  return samples;
}

/** One trajectory as the index pages list it, from its record's head (calls never read). */
export interface TrajectoryHeadEntry {
  phase: string;
  instance_id: string;
  sample_index: number;
  filter: Filter;
  verdict: string;
  /** The verdict's outcome, or null: not verified yet. */
  outcome: Verdict['outcome'] | null;
  llm_calls: number;
  /** How the trajectory itself ended (the record's outcome status). */
  status: TrajectoryHead['outcome']['status'];
  /** The verdict found test-reporting machinery touched (verify/tampering.ts). */
  tampered: boolean;
  /** Prompt + completion tokens of all its calls. */
  tokens: number;
  at: LedgerLocation;
  /** The test log the page shows (when verified), for telling whether a written page is current. */
  log: string | null;
}

/**
 * Every trajectory of a phase from the records' heads and the verdicts' outcomes only (memory: a
 * few hundred bytes a record), in ledger order; infrastructure errors left out as the pool leaves them.
 */
export function trajectoryHeads(phase: PhaseLedgers): TrajectoryHeadEntry[] {
  // Only the outcome of each verdict (and its key): the test maps and reports are not read.
  const outcomes = new Map<string, VerdictOutcome>();
  readVerdictsStreaming(phase.verdicts, (v) => keepVerdict(outcomes, v));
  const byKey = new Map<string, TrajectoryHeadEntry>();
  for (const { head, at } of readTrajectoryHeads(phase.trajectories)) {
    if (isInfrastructureError(head)) continue;
    const hash = patchHash(normalizePatch(head.patch));
    const verdict = outcomes.get(`${head.instance_id}@${hash}`) ?? null;
    byKey.set(`${head.instance_id}\u0000${head.sample_index}`, {
      phase: phase.phase,
      instance_id: head.instance_id,
      sample_index: head.sample_index,
      filter: filterOf(head, verdict),
      verdict: verdict?.outcome ?? (head.outcome.status === 'error' ? 'error' : 'unverified'),
      outcome: verdict?.outcome ?? null,
      llm_calls: head.llm_calls,
      status: head.outcome.status,
      tampered: verdict?.tampering !== undefined,
      tokens: head.tokens.prompt + head.tokens.completion,
      at,
      log: verdict === null ? null : runLayout.verifyLog(phase.verdicts, head.instance_id, hash),
    });
  }
  return [...byKey.values()];
}

/** The views of the records at `locations` (read back one at a time, in file order), with their verdicts and logs. */
export function forEachViewAt(phase: PhaseLedgers, locations: readonly LedgerLocation[], visit: (view: TrajectoryView) => void): void {
  if (locations.length === 0) return;
  const verdictOf = verdictIndex(phase.verdicts);
  for (const t of readTrajectoriesAt(phase.trajectories, [...locations].sort((a, b) => a.offset - b.offset))) {
    const verdict = verdictOf(t);
    visit(trajectoryView(phase.phase, t, verdict, readLog(phase, verdict)));
  }
}
