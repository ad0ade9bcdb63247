import { z } from 'zod';
import { TestReportSchema } from './grade.js';
import { TestStatusMapSchema } from './pytest-log.js';
import { TamperingSchema } from './tampering.js';

/**
 * What verifying one (instance, patch) pair came to.
 * - resolved / unresolved: tests ran and were graded.
 * - empty_patch: nothing to verify (the paper's "EP"); never run.
 * - apply_failed: all three ways of applying the patch failed.
 * - timeout: the test command outlived the spec's timeout — the patch's doing (an endless loop,
 *   a hang), so a model failure.
 * - invalid_task: the task itself cannot grade anything (its test patch does not apply to its
 *   repository). Final, and not the model's failure.
 * - error: the harness failed (image missing, engine down, the harness's own deadline). Not the
 *   model's fault: not cached as a result, retried on resume.
 * - repeated_error: the harness failed on this patch and spec as often as sandbox.max_error_attempts
 *   allows (a runner that always crashes, a conda env with another name): final, so the iteration
 *   completes; not the model's failure, and never a success (counted as unresolved in rates). A
 *   distinct outcome rather than a flag on `error`, so older ledgers read exactly as before.
 */
export const OutcomeSchema = z.enum(['resolved', 'unresolved', 'empty_patch', 'apply_failed', 'timeout', 'invalid_task', 'error', 'repeated_error']);
export type Outcome = z.infer<typeof OutcomeSchema>;

/** Which of the three application attempts succeeded (design §4.3), in the order they are tried. */
export const ApplyMethodSchema = z.enum(['git_apply', 'git_apply_reject', 'patch_fuzz']);
export type ApplyMethod = z.infer<typeof ApplyMethodSchema>;

/** sha256 of the empty (normalised) patch. */
export const EMPTY_PATCH_HASH = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, 'expected a sha256 hex digest');

const RAN_TESTS = new Set<Outcome>(['resolved', 'unresolved']);
const NEVER_APPLIED = new Set<Outcome>(['empty_patch', 'apply_failed']);
const NEEDS_REASON = new Set<Outcome>(['apply_failed', 'timeout', 'invalid_task', 'error', 'repeated_error']);

export const VerdictSchema = z
  .object({
    instance_id: z.string().min(1),
    patch_hash: Sha256Hex,
    spec_hash: Sha256Hex,
    outcome: OutcomeSchema,
    /**
     * Present on a graded run (resolved/unresolved) whose patch reaches into the test-reporting
     * machinery or whose runner's own counts disagree with the results (tampering.ts); absent
     * otherwise and in older ledgers. Kept before `reason` so a ledger scan that reads only a
     * record's head (src/select/scan.ts) sees it.
     */
    tampering: TamperingSchema.optional(),
    /** Why apply failed, the infrastructure error, or the timeout detail; null otherwise (a short note is allowed). */
    reason: z.string().nullable(),
    apply_method: ApplyMethodSchema.nullable(),
    /** Exit code of the test command; null when it did not run or was killed without one. */
    test_exit_code: z.number().int().nullable(),
    /** Parsed test statuses (merged junit + summary). */
    tests: TestStatusMapSchema,
    report: TestReportSchema.nullable(),
    /** The stored log was cut to a size limit. */
    log_truncated: z.boolean(),
    /** The Python environment the tests ran in (eval spec python_env, auto-detected or set); null when unknown. */
    python_env: z.enum(['conda', 'system']).nullable().optional(),
    duration_ms: z.number().nonnegative(),
    created_at: z.iso.datetime({ offset: true }),
  })
  // The invariants readers rely on, checked once where the record is made.
  .superRefine((v, ctx) => {
    if (RAN_TESTS.has(v.outcome)) {
      if (v.report === null) ctx.addIssue({ code: 'custom', path: ['report'], message: `${v.outcome} needs a report` });
      // Only the unpatched run of a gold check (the empty patch) runs tests without applying anything.
      if (v.apply_method === null && v.patch_hash !== EMPTY_PATCH_HASH)
        ctx.addIssue({ code: 'custom', path: ['apply_method'], message: `${v.outcome} needs an apply_method` });
    }
    if (NEVER_APPLIED.has(v.outcome)) {
      if (v.apply_method !== null)
        ctx.addIssue({ code: 'custom', path: ['apply_method'], message: `${v.outcome} has no apply_method` });
      if (v.report !== null) ctx.addIssue({ code: 'custom', path: ['report'], message: `${v.outcome} has no report` });
    }
    if (NEEDS_REASON.has(v.outcome) && (v.reason === null || v.reason.trim() === '')) {
      ctx.addIssue({ code: 'custom', path: ['reason'], message: `${v.outcome} needs a reason` });
    }
  });
export type Verdict = z.infer<typeof VerdictSchema>;

/**
 * Cache key of a verdict: the same normalised patch on the same instance under the same eval
 * spec is verified once. The instance id goes first and the two fixed-length hashes last, so the
 * key stays unambiguous whatever characters an instance id holds.
 */
export function verdictKey(instanceId: string, patchHash: string, specHash: string): string {
  return `${instanceId}@${patchHash}@${specHash}`;
}

export function verdictKeyOf(verdict: Pick<Verdict, 'instance_id' | 'patch_hash' | 'spec_hash'>): string {
  return verdictKey(verdict.instance_id, verdict.patch_hash, verdict.spec_hash);
}

/** Did the model fail? `error` and `repeated_error` are the harness's failures and `resolved` is a success. */
export function isModelFailure(outcome: Outcome): boolean {
  return outcome !== 'resolved' && outcome !== 'error' && outcome !== 'repeated_error' && outcome !== 'invalid_task';
}

/** A final verdict that says nothing of the patch (the task or the harness is broken): not data for a verifier. */
export function saysNothingOfPatch(outcome: Outcome): boolean {
  return outcome === 'invalid_task' || outcome === 'repeated_error';
}

/** The final record of the last of `attempts` harness failures on one patch and spec. */
export function repeatedError(last: Verdict, attempts: number, now: Date = new Date()): Verdict {
  return { ...last, outcome: 'repeated_error', reason: `the harness failed ${attempts} times on this patch (sandbox.max_error_attempts): ${last.reason ?? 'no reason given'}`, created_at: now.toISOString() };
}

/** A verdict that settles the question; `error` verdicts are retried on resume instead of reused. */
export function isFinal(outcome: Outcome): boolean {
  return outcome !== 'error';
}
