import type { Trajectory } from '../agent/trajectory.js';
import { isInfrastructureError } from '../select/pool.js';
import { readVerdictsStreaming } from '../select/scan.js';
import { LedgerCorruptError, type LedgerLocation } from '../store/ledger.js';
import { readTrajectoriesAt, readTrajectoryHeads } from '../store/trajectories.js';
import { normalizePatch, patchHash } from '../verify/patch.js';
import { isFinal, type Outcome } from '../verify/verdict.js';

/**
 * A pool as the learned verifier reads it: each trajectory's few fields, its verdict and where
 * its record is (read back one at a time when rendered). Streamed line by line: memory grows with
 * the number of records, not their size. A trajectory's verdict is the first final one recorded
 * for its (instance, normalised patch) — the eval spec is the run's own, as the report takes it.
 */

export interface Candidate {
  iteration: number;
  instance_id: string;
  sample_index: number;
  model: string;
  patch_hash: string;
  /** null: no verdict recorded yet. */
  verdict: Outcome | null;
  at: LedgerLocation;
}

export interface ScannedCandidates {
  candidates: Candidate[];
  lines: number;
  infrastructure_records: number;
}

export function scanCandidates(trajectoriesFile: string, verdictsFile: string | null): ScannedCandidates {
  const outcome = new Map<string, Outcome>();
  if (verdictsFile !== null) {
    readVerdictsStreaming(verdictsFile, (v) => {
      const key = `${v.instance_id}@${v.patch_hash}`;
      const seen = outcome.get(key);
      if (seen === undefined || (!isFinal(seen) && isFinal(v.outcome))) outcome.set(key, v.outcome);
    });
  }
  const candidates = new Map<string, Candidate>();
  let infrastructure = 0;
  let lines = 0;
  for (const { head: t, at } of readTrajectoryHeads(trajectoriesFile)) {
    lines += 1;
    if (isInfrastructureError(t)) {
      infrastructure += 1;
      continue;
    }
    const hash = patchHash(normalizePatch(t.patch));
    const key = JSON.stringify([t.iteration, t.instance_id, t.sample_index]);
    if (candidates.has(key)) throw new LedgerCorruptError(trajectoriesFile, at.line, `trajectory ${t.instance_id} #${t.sample_index} is recorded twice`);
    candidates.set(key, {
      iteration: t.iteration,
      instance_id: t.instance_id,
      sample_index: t.sample_index,
      model: t.model,
      patch_hash: hash,
      verdict: outcome.get(`${t.instance_id}@${hash}`) ?? null,
      at,
    });
  }
  return { candidates: [...candidates.values()], lines, infrastructure_records: infrastructure };
}

export function readCandidate(trajectoriesFile: string, c: Pick<Candidate, 'at'>): Trajectory {
  for (const t of readTrajectoriesAt(trajectoriesFile, [c.at])) return t;
  throw new Error(`${trajectoriesFile}:${c.at.line}: the record could not be read back`);
}

/** The issue text the agent was given (its first <issue> block), for a trajectory whose instance the task set no longer has. */
export function issueOf(trajectory: Pick<Trajectory, 'calls'>): string | null {
  for (const m of trajectory.calls[0]?.messages ?? []) {
    if (m.role !== 'user') continue;
    const found = /<issue>\n?([\s\S]*?)\n?<\/issue>/.exec(m.content);
    if (found) return found[1]!;
  }
  return null;
}
