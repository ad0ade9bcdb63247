import { z } from 'zod';

/**
 * One eval candidate's verifier score, as recorded in eval/m<m>/scores.jsonl (append-only, one
 * line per (instance, sample, verifier model), written once the endpoint answered). Scoring
 * reads trajectories only — never verdicts — so the pick cannot peek at the tests.
 */
export const ScoreRecordSchema = z.object({
  instance_id: z.string().min(1),
  sample_index: z.number().int().nonnegative(),
  /** The verifier model that scored it. */
  verifier: z.string().min(1),
  /** sha256 of the candidate's normalised patch (ties the score to the patch it judged). */
  patch_hash: z.string().regex(/^[0-9a-f]{64}$/),
  /** P_YES / (P_YES + P_NO); 0 for an empty patch, which is not sent (there is nothing to submit). */
  score: z.number().min(0).max(1),
  p_yes: z.number().min(0).max(1).nullable(),
  p_no: z.number().min(0).max(1).nullable(),
  /**
   * verifier: the endpoint's answer; empty_patch: scored 0 without a request; too_long: the
   * endpoint refused even the shortest rendering as longer than its context, scored 0 (ranked
   * last: a candidate the verifier could not read is never picked over one it could).
   */
  source: z.enum(['verifier', 'empty_patch', 'too_long']),
  /** Which of render.ts's SHORTER_LIMITS the answer was to, when not the first (the context refused the longer ones). */
  shortened: z.number().int().positive().optional(),
  created_at: z.string(),
});
export type ScoreRecord = z.infer<typeof ScoreRecordSchema>;

export function scoreKey(instanceId: string, sampleIndex: number, verifier: string): string {
  return JSON.stringify([instanceId, sampleIndex, verifier]);
}
