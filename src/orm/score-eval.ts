import { existsSync } from 'node:fs';
import { Ledger, readRecords } from '../store/ledger.js';
import type { Instance } from '../tasks/instance.js';
import { EMPTY_PATCH_HASH } from '../verify/verdict.js';
import { VerifierContextLengthError, type VerifierClient, type VerifierScore } from './client.js';
import { issueOf, readCandidate, scanCandidates, type Candidate } from './pool.js';
import { SHORTER_LIMITS, verifierMessages, type VerifierInput } from './render.js';
import { ScoreRecordSchema, scoreKey, type ScoreRecord } from './scores.js';

export interface ScoreEvalOptions {
  trajectoriesFile: string;
  scoresFile: string;
  /** The eval instances by id (the issue text of the prompt). */
  instances: ReadonlyMap<string, Instance>;
  client: VerifierClient;
  concurrency: number;
  stopping: () => boolean;
  warn?: (message: string) => void;
  /** After each recorded score. */
  onScore?: (record: ScoreRecord) => void;
  now?: () => Date;
}

export interface ScoreEvalResult {
  candidates: number;
  /** Scored in this call (requests answered, plus empty patches). */
  scored: number;
  /** Already recorded before this call. */
  known: number;
  complete: boolean;
}

/**
 * Scores every candidate of an eval pool with the verifier, skipping what scores.jsonl already
 * holds for this verifier model: a run killed mid-scoring resumes without asking again what is
 * recorded. Each answer is appended (fsync) as it comes; the first error stops new requests, lets
 * the ones in flight finish (their scores are right and kept), and is thrown — nothing is
 * recorded for a candidate whose answer could not be read.
 */
export async function scoreEvalPool(options: ScoreEvalOptions): Promise<ScoreEvalResult> {
  const opened = Ledger.open(options.scoresFile, ScoreRecordSchema, (bytes) => options.warn?.(`${options.scoresFile}: dropped a torn last line (${bytes} bytes)`));
  const model = options.client.model;
  const done = new Set<string>();
  for (const r of readRecords(options.scoresFile, ScoreRecordSchema)) if (r.verifier === model) done.add(scoreKey(r.instance_id, r.sample_index, r.verifier));
  // Trajectories only: the verdicts are not the verifier's business.
  const entries = existsSync(options.trajectoriesFile) ? scanCandidates(options.trajectoriesFile, null).candidates : [];
  const todo = entries.filter((e) => !done.has(scoreKey(e.instance_id, e.sample_index, model)));
  const now = options.now ?? (() => new Date());
  let scored = 0;
  let failure: unknown = null;
  let next = 0;

  const record = (entry: Candidate, fields: Pick<ScoreRecord, 'score' | 'p_yes' | 'p_no' | 'source'>): void => {
    const r: ScoreRecord = { instance_id: entry.instance_id, sample_index: entry.sample_index, verifier: model, patch_hash: entry.patch_hash, ...fields, created_at: now().toISOString() };
    opened.ledger.append(r);
    scored += 1;
    options.onScore?.(r);
  };

  const worker = async (): Promise<void> => {
    while (failure === null && !options.stopping() && next < todo.length) {
      const entry = todo[next++]!;
      if (entry.patch_hash === EMPTY_PATCH_HASH) {
        record(entry, { score: 0, p_yes: null, p_no: null, source: 'empty_patch' });
        continue;
      }
      const trajectory = readCandidate(options.trajectoriesFile, entry);
      const issue = options.instances.get(entry.instance_id)?.problem_statement ?? issueOf(trajectory);
      if (issue === null) {
        failure ??= new Error(`${options.trajectoriesFile}:${entry.at.line}: the issue of ${entry.instance_id} is neither in the eval task set nor in the trajectory`);
        return;
      }
      try {
        const fitted = await scoreFitting(options.client, { problem_statement: issue, trajectory });
        if (fitted) {
          const { answer, rung } = fitted;
          record(entry, { score: answer.score, p_yes: Math.min(1, answer.p_yes), p_no: Math.min(1, answer.p_no), source: 'verifier', ...(rung > 0 ? { shortened: rung } : {}) });
        } else {
          // Past the shortest rendering the candidate ranks last.
          options.warn?.(`${entry.instance_id} sample ${entry.sample_index}: the verifier refused even the shortest rendering as too long for its context; scored 0`);
          record(entry, { score: 0, p_yes: null, p_no: null, source: 'too_long' });
        }
      } catch (err) {
        failure ??= err;
        return;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, todo.length)) }, worker));
  } finally {
    opened.ledger.close();
  }
  if (failure !== null) throw failure;
  return { candidates: entries.length, scored, known: entries.length - todo.length, complete: !options.stopping() && next >= todo.length };
}

/**
 * The verifier's answer to the longest rendering its context takes (SHORTER_LIMITS, tried in
 * order while the endpoint refuses the prompt as too long), and which one; null when it takes none.
 */
async function scoreFitting(client: VerifierClient, input: VerifierInput): Promise<{ answer: VerifierScore; rung: number } | null> {
  for (const [rung, limits] of SHORTER_LIMITS.entries()) {
    try {
      return { answer: await client.score(verifierMessages(input, limits)), rung };
    } catch (err) {
      if (!(err instanceof VerifierContextLengthError)) throw err;
    }
  }
  return null;
}
