import { describe, expect, it } from 'vitest';
import { patchHash } from '../../src/verify/patch.js';
import {
  isFinal,
  isModelFailure,
  OutcomeSchema,
  repeatedError,
  saysNothingOfPatch,
  VerdictSchema,
  verdictKey,
  verdictKeyOf,
  type Verdict,
} from '../../src/verify/verdict.js';

const H1 = patchHash('diff --git a/x b/x\n');
const H2 = patchHash('spec');

function resolvedVerdict(): Verdict {
  return {
    instance_id: 'getmoto__moto-1234',
    patch_hash: H1,
    spec_hash: H2,
    outcome: 'resolved',
    reason: null,
    apply_method: 'git_apply',
    test_exit_code: 0,
    tests: { 'tests/t.py::a': 'PASSED' },
    report: { FAIL_TO_PASS: { success: ['tests/t.py::a'], failure: [] }, PASS_TO_PASS: { success: [], failure: [] } },
    log_truncated: false,
    duration_ms: 1234,
    created_at: '2025-01-02T03:04:05.678Z',
  };
}

function errorVerdict(): Verdict {
  return { ...resolvedVerdict(), outcome: 'error', reason: 'engine gone', apply_method: null, test_exit_code: null, tests: {}, report: null };
}

describe('VerdictSchema', () => {
  it('accepts a complete resolved verdict and round-trips it through JSON', () => {
    const v = resolvedVerdict();
    expect(VerdictSchema.parse(JSON.parse(JSON.stringify(v)))).toEqual(v);
  });

  it('accepts an empty_patch verdict with nothing run', () => {
    const v: Verdict = { ...resolvedVerdict(), outcome: 'empty_patch', apply_method: null, test_exit_code: null, tests: {}, report: null };
    expect(VerdictSchema.safeParse(v).success).toBe(true);
  });

  it('rejects malformed hashes, dates, statuses and outcomes', () => {
    expect(VerdictSchema.safeParse({ ...resolvedVerdict(), patch_hash: 'abc' }).success).toBe(false);
    expect(VerdictSchema.safeParse({ ...resolvedVerdict(), created_at: 'yesterday' }).success).toBe(false);
    expect(VerdictSchema.safeParse({ ...resolvedVerdict(), tests: { a: 'OK' } }).success).toBe(false);
    expect(VerdictSchema.safeParse({ ...resolvedVerdict(), outcome: 'passed' }).success).toBe(false);
    expect(VerdictSchema.safeParse({ ...resolvedVerdict(), test_exit_code: 1.5 }).success).toBe(false);
  });

  it('enforces the invariants between outcome, report, apply_method and reason', () => {
    const base = resolvedVerdict();
    expect(VerdictSchema.safeParse({ ...base, report: null }).success).toBe(false);
    expect(VerdictSchema.safeParse({ ...base, apply_method: null }).success).toBe(false);
    expect(VerdictSchema.safeParse({ ...base, outcome: 'apply_failed', report: null }).success).toBe(false); // apply_method set
    expect(
      VerdictSchema.safeParse({ ...base, outcome: 'apply_failed', report: null, apply_method: null, reason: null }).success,
    ).toBe(false); // no reason
    expect(
      VerdictSchema.safeParse({ ...base, outcome: 'apply_failed', report: null, apply_method: null, reason: 'hunk 1 failed' })
        .success,
    ).toBe(true);
    expect(VerdictSchema.safeParse({ ...base, outcome: 'error', reason: '' }).success).toBe(false);
    expect(VerdictSchema.safeParse({ ...base, outcome: 'timeout', reason: 'killed after 1800 s', report: null }).success).toBe(true);
  });
});

describe('verdictKey', () => {
  it('combines instance, patch and spec, and changes when any of them does', () => {
    const key = verdictKey('a__b-1', H1, H2);
    expect(key).toContain('a__b-1');
    expect(key).toContain(H1);
    expect(key).toContain(H2);
    expect(verdictKey('a__b-2', H1, H2)).not.toBe(key);
    expect(verdictKey('a__b-1', H2, H1)).not.toBe(key);
    expect(verdictKeyOf(resolvedVerdict())).toBe(verdictKey('getmoto__moto-1234', H1, H2));
  });
});

describe('isModelFailure / isFinal', () => {
  it('counts every outcome but resolved and error against the model', () => {
    const failures = OutcomeSchema.options.filter(isModelFailure);
    expect(failures).toEqual(['unresolved', 'empty_patch', 'apply_failed', 'timeout']);
  });

  it('retries only error verdicts', () => {
    expect(OutcomeSchema.options.filter((o) => !isFinal(o))).toEqual(['error']);
  });

  it('an error made final by repetition is final, blames neither the model nor the patch, and keeps the reason', () => {
    expect(isFinal('repeated_error')).toBe(true);
    expect(isModelFailure('repeated_error')).toBe(false);
    expect(saysNothingOfPatch('repeated_error')).toBe(true);
    expect(VerdictSchema.safeParse({ ...errorVerdict(), outcome: 'repeated_error', reason: null }).success).toBe(false);
    const final = repeatedError(errorVerdict(), 3, new Date('2026-01-01T00:00:00Z'));
    expect(VerdictSchema.parse(final)).toMatchObject({ outcome: 'repeated_error', reason: 'the harness failed 3 times on this patch (sandbox.max_error_attempts): engine gone', created_at: '2026-01-01T00:00:00.000Z' });
  });
});
