import path from 'node:path';
import { readRecords } from '../store/ledger.js';
import { isFinal, saysNothingOfPatch } from '../verify/verdict.js';
import { scanCandidates } from './pool.js';
import { bestAtK, scalingCurve, type ScalingPoint } from './scaling.js';
import { ScoreRecordSchema, scoreKey, type ScoreRecord } from './scores.js';

/** Files of one eval rollout (eval/m<m>/). */
export const EVAL_FILES = { trajectories: 'trajectories.jsonl', verdicts: 'verdicts.jsonl', scores: 'scores.jsonl' } as const;

/** One candidate of the best-of-n pool. */
export interface EvalCandidate {
  sample_index: number;
  /** null: unscored. */
  score: number | null;
  resolved: boolean;
}

export interface EvalPool {
  /** Per instance, every candidate with a final verdict: resolved, and its score (null: unscored). */
  instances: Array<{ instance_id: string; candidates: EvalCandidate[] }>;
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

  const byInstance = new Map<string, EvalCandidate[]>();
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
    list.push({ sample_index: c.sample_index, score, resolved: c.verdict === 'resolved' });
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

/** Where one candidate stands in its instance's best-of-n pick. */
export interface CandidateRank extends EvalCandidate {
  /** 1 + the candidates scored higher (tied ones share a rank); null when unscored. */
  rank: number | null;
  /** Candidates of the instance in the pool. */
  of: number;
  /**
   * yes: the top score alone, so the pick; tied: one of `tied` sharing the top score (the pick is
   * one of them, and best-of-n counts their mean); no: scored lower; null: not every candidate
   * of the instance is scored yet, so there is no pick.
   */
  submitted: 'yes' | 'tied' | 'no' | null;
  tied: number;
}

/**
 * Every candidate of the pool with its rank and whether the top-scored pick is it — the same
 * pick bestOfN counts (candidates without a final verdict are not in the pool, as there).
 */
export function rankCandidates(pool: EvalPool): Map<string, CandidateRank[]> {
  const out = new Map<string, CandidateRank[]>();
  for (const { instance_id, candidates } of pool.instances) {
    const complete = candidates.every((c) => c.score !== null);
    const top = Math.max(...candidates.map((c) => c.score ?? Number.NEGATIVE_INFINITY));
    const atTop = candidates.filter((c) => c.score === top).length;
    const ranked = candidates.map((c): CandidateRank => {
      const rank = c.score === null ? null : 1 + candidates.filter((o) => o.score !== null && o.score > c.score!).length;
      const tied = c.score === null ? 1 : candidates.filter((o) => o.score === c.score).length;
      const submitted = !complete ? null : c.score !== top ? 'no' : atTop === 1 ? 'yes' : 'tied';
      return { ...c, rank, of: candidates.length, submitted, tied };
    });
    out.set(instance_id, ranked.sort((a, b) => a.sample_index - b.sample_index));
  }
  return out;
}

export function curveOf(pool: EvalPool): ScalingPoint[] {
  return scalingCurve(pool.instances);
}

/** A scores ledger, record by record (a torn last line is skipped, as on open). */
function readScores(file: string): ScoreRecord[] {
  return [...readRecords(file, ScoreRecordSchema)];
}
