import path from 'node:path';
import { readRecords } from '../store/ledger.js';
import { isFinal, saysNothingOfPatch } from '../verify/verdict.js';
import { scanCandidates } from './pool.js';
import { bestAtK, scalingCurve, type InstanceCandidates, type ScalingPoint } from './scaling.js';
import { ScoreRecordSchema, scoreKey, type ScoreRecord } from './scores.js';

/** Files of one eval rollout (eval/m<m>/). */
export const EVAL_FILES = { trajectories: 'trajectories.jsonl', verdicts: 'verdicts.jsonl', scores: 'scores.jsonl' } as const;

export interface EvalPool {
  /** Per instance, every candidate with a final verdict: resolved, and its score (null: unscored). */
  instances: InstanceCandidates[];
  /** Verifier models with scores in scores.jsonl. */
  verifiers: string[];
  /** The verifier whose scores are used (the one that scored most candidates). */
  verifier: string | null;
  /** Candidates without a final verdict on the patch (none yet, `error`, or `invalid_task`): left out. */
  unverified: number;
  /** Candidates (with a final verdict) the verifier has not scored yet. */
  unscored: number;
}

/**
 * Reads an eval rollout's candidates, verdicts and verifier scores (streamed; a record is a few
 * fields here). Candidates without a final verdict are left out and counted.
 */
export function readEvalPool(evalDir: string): EvalPool {
  const scoresFile = path.join(evalDir, EVAL_FILES.scores);
  const scanned = scanCandidates(path.join(evalDir, EVAL_FILES.trajectories), path.join(evalDir, EVAL_FILES.verdicts));
  const scores = readScores(scoresFile);
  const perVerifier = new Map<string, number>();
  for (const s of scores) perVerifier.set(s.verifier, (perVerifier.get(s.verifier) ?? 0) + 1);
  const verifier = [...perVerifier.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]?.[0] ?? null;
  const scoreOf = new Map(scores.filter((s) => s.verifier === verifier).map((s) => [scoreKey(s.instance_id, s.sample_index, s.verifier), s]));

  const byInstance = new Map<string, InstanceCandidates['candidates'][number][]>();
  let unverified = 0;
  let unscored = 0;
  for (const c of scanned.candidates) {
    // No verdict yet, only `error`, `invalid_task` or `repeated_error` (the task or harness is broken, not the candidate): not data.
    if (c.verdict === null || !isFinal(c.verdict) || saysNothingOfPatch(c.verdict)) {
      unverified += 1;
      continue;
    }
    const s = verifier === null ? undefined : scoreOf.get(scoreKey(c.instance_id, c.sample_index, verifier));
    // A score recorded for another patch is no score of this candidate.
    const score = s !== undefined && s.patch_hash === c.patch_hash ? s.score : null;
    if (score === null && verifier !== null) unscored += 1;
    const list = byInstance.get(c.instance_id) ?? [];
    list.push({ score, resolved: c.verdict === 'resolved' });
    byInstance.set(c.instance_id, list);
  }
  const instances = [...byInstance.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([instance_id, candidates]) => ({ instance_id, candidates }));
  return { instances, verifiers: [...perVerifier.keys()].sort(), verifier, unverified, unscored };
}

export interface BestOfN {
  instances: number;
  /** n: the most candidates of an instance. */
  n: number;
  /** Expected resolved instances when the top-scored candidate of each is submitted (ties averaged). */
  resolved: number;
  rate: number;
}

/** The eval's reported result under best-of-n: the top-scored candidate per instance; null unless every candidate is scored. */
export function bestOfN(pool: EvalPool): BestOfN | null {
  if (pool.verifier === null || pool.instances.length === 0) return null;
  if (pool.instances.some((i) => i.candidates.some((c) => c.score === null))) return null;
  const resolved = pool.instances.reduce((t, i) => t + bestAtK(i.candidates.map((c) => ({ score: c.score!, resolved: c.resolved })), i.candidates.length), 0);
  return { instances: pool.instances.length, n: Math.max(...pool.instances.map((i) => i.candidates.length)), resolved, rate: resolved / pool.instances.length };
}

export function curveOf(pool: EvalPool): ScalingPoint[] {
  return scalingCurve(pool.instances);
}

/** A scores ledger, record by record (a torn last line is skipped, as on open). */
function readScores(file: string): ScoreRecord[] {
  return [...readRecords(file, ScoreRecordSchema)];
}
