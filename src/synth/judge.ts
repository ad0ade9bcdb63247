import { z } from 'zod';
import type { TestStatusMap } from '../verify/pytest-log.js';
import type { TestRun } from './test-run.js';

/** Why a candidate did not become a task (the yield report counts these). */
export const REJECTIONS = ['duplicate', 'no_tests', 'apply_failed', 'no_failure', 'flaky', 'timeout', 'too_many_failures', 'run_error'] as const;
export const RejectionSchema = z.enum(REJECTIONS);
export type Rejection = z.infer<typeof RejectionSchema>;

/** How many tests a bug may break (CLI flags). */
export interface Bounds {
  /** At most this many FAIL_TO_PASS tests. */
  maxFailToPass: number;
  /** With at least four tests run, at most this share of them may break (1 = no bound). */
  maxFailFraction: number;
}
export const DEFAULT_BOUNDS: Bounds = { maxFailToPass: 20, maxFailFraction: 0.6 };

export type Judgement =
  | { valid: true; FAIL_TO_PASS: string[]; PASS_TO_PASS: string[] }
  | { valid: false; reason: Rejection; detail: string };

const passes = (statuses: TestStatusMap, id: string) => statuses[id] === 'PASSED' || statuses[id] === 'XFAIL';

/**
 * The validation rule (design §13): of the tests that passed before and ran (`considered`), at
 * least one fails after (FAIL_TO_PASS; a test missing after counts as failing, as in grading),
 * the others pass (PASS_TO_PASS), the after-runs agree on every one of them, nothing timed out or
 * died, and no more break than the bounds allow. `after` holds one run when the first showed no
 * failure (a second cannot change that), else two.
 */
export function judge(considered: readonly string[], after: readonly TestRun[], bounds: Bounds): Judgement {
  if (considered.length === 0) return { valid: false, reason: 'no_tests', detail: 'no test that passed before executes the changed functions' };
  for (const run of after) {
    if (run.timedOut) return { valid: false, reason: 'timeout', detail: 'the tests ran out of time' };
    if (run.error !== null || run.killed) return { valid: false, reason: 'run_error', detail: run.error ?? 'the test run was killed' };
  }
  const [first, ...rest] = after;
  if (!first) throw new Error('judge needs at least one run');
  const failing = considered.filter((id) => !passes(first.statuses, id));
  if (failing.length === 0) return { valid: false, reason: 'no_failure', detail: `all ${considered.length} tests still pass` };
  for (const run of rest) {
    const flaky = considered.filter((id) => passes(run.statuses, id) !== passes(first.statuses, id));
    if (flaky.length > 0) return { valid: false, reason: 'flaky', detail: `the two runs disagree on ${flaky.length} tests (${flaky.slice(0, 3).join(', ')})` };
  }
  if (failing.length > bounds.maxFailToPass) {
    return { valid: false, reason: 'too_many_failures', detail: `${failing.length} tests break (at most ${bounds.maxFailToPass})` };
  }
  if (considered.length >= 4 && failing.length / considered.length > bounds.maxFailFraction) {
    return { valid: false, reason: 'too_many_failures', detail: `${failing.length} of ${considered.length} tests break (at most ${bounds.maxFailFraction * 100}%)` };
  }
  const broken = new Set(failing);
  return { valid: true, FAIL_TO_PASS: [...failing].sort(), PASS_TO_PASS: considered.filter((id) => !broken.has(id)).sort() };
}
