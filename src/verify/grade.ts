import { z } from 'zod';
import { recordStatus, worseStatus, type TestStatus, type TestStatusMap } from './pytest-log.js';

export const TestListReportSchema = z.object({
  success: z.array(z.string()),
  failure: z.array(z.string()),
});

/** SWE-bench-style per-list report: which FAIL_TO_PASS / PASS_TO_PASS tests passed and failed. */
export const TestReportSchema = z.object({
  FAIL_TO_PASS: TestListReportSchema,
  PASS_TO_PASS: TestListReportSchema,
});
export type TestReport = z.infer<typeof TestReportSchema>;

/**
 * A test passes iff it is PASSED or XFAIL (SWE-bench's `test_passed`). Everything else fails
 * a FAIL_TO_PASS test:
 * - missing (not collected, crashed run, file did not import), FAILED, ERROR;
 * - XPASS: SWE-bench's parser does not know the word, so there the test is missing and fails;
 * - SKIPPED: a FAIL_TO_PASS test that did not run shows nothing was fixed (SWE-bench v4 lets it
 *   through; that hole stays closed here).
 * A SKIPPED PASS_TO_PASS test is neither a success nor a failure, as in SWE-bench (grading.py):
 * environments skip tests for reasons of their own (one CPU, no network), and counting those as
 * failures would make valid tasks unresolvable. See gradeTests.
 */
export function testPasses(status: TestStatus | undefined): boolean {
  return status === 'PASSED' || status === 'XFAIL';
}

/**
 * Status of a listed test id. An exact match wins. Otherwise the id may be a SWE-bench-truncated
 * one: SWE-bench's log parser takes the id up to the first whitespace, so a parametrized test
 * `t.py::test[two words]` appears in its FAIL_TO_PASS lists as `t.py::test[two`. Such an id
 * stands for every observed id that starts with it followed by whitespace, and gets the worst of
 * their statuses (all must pass). Unknown → undefined (missing).
 */
export function lookupStatus(id: string, statuses: TestStatusMap): TestStatus | undefined {
  const exact = statuses[id];
  if (exact !== undefined) return exact;
  if (/\s/.test(id)) return undefined;
  let found: TestStatus | undefined;
  for (const [observed, status] of Object.entries(statuses)) {
    if (observed.length > id.length && observed.startsWith(id) && /\s/.test(observed[id.length] ?? '')) {
      found = found === undefined ? status : worseStatus(found, status);
    }
  }
  return found;
}

export interface GradeInput {
  failToPass: string[];
  passToPass: string[];
  statuses: TestStatusMap;
}

export interface GradeResult {
  report: TestReport;
  /** Every FAIL_TO_PASS and every PASS_TO_PASS test passed, and there was at least one FAIL_TO_PASS. */
  resolved: boolean;
  /** Why not resolved, in a sentence; null when resolved. */
  reason: string | null;
}

/**
 * Grade a run against the instance's lists (SWE-bench rules, hardened as in testPasses). A
 * SKIPPED PASS_TO_PASS test is in neither list of the report (SWE-bench's "neither").
 *
 * An instance with no FAIL_TO_PASS test is never resolved: SWE-bench scores an empty list as a
 * fail-to-pass rate of 1, which resolves any patch (the empty one too) whenever PASS_TO_PASS
 * holds. Nothing would show the patch fixed anything, so the verdict says so instead.
 */
export function gradeTests(input: GradeInput): GradeResult {
  const grade = (ids: string[], skippedIsNeutral: boolean) => {
    const success: string[] = [];
    const failure: string[] = [];
    for (const id of new Set(ids)) {
      const status = lookupStatus(id, input.statuses);
      if (skippedIsNeutral && status === 'SKIPPED') continue;
      (testPasses(status) ? success : failure).push(id);
    }
    return { success, failure };
  };
  const report: TestReport = { FAIL_TO_PASS: grade(input.failToPass, false), PASS_TO_PASS: grade(input.passToPass, true) };
  const f2pFailed = report.FAIL_TO_PASS.failure.length;
  const p2pFailed = report.PASS_TO_PASS.failure.length;
  let reason: string | null = null;
  if (report.FAIL_TO_PASS.success.length + f2pFailed === 0) {
    reason = 'the instance has no FAIL_TO_PASS tests, so nothing shows the patch fixes the issue';
  } else if (f2pFailed > 0 || p2pFailed > 0) {
    reason = `${f2pFailed} FAIL_TO_PASS and ${p2pFailed} PASS_TO_PASS tests did not pass`;
  }
  return { report, resolved: reason === null, reason };
}

/**
 * Combine the junit report and the `-rA` summary of one run.
 *
 * junit is preferred: it is written to a path chosen per run, so a test cannot have planted it,
 * and it is not mixed with the tests' own output the way the terminal log is. Its set of test ids
 * is authoritative — ids only the summary names are dropped (a forged line can add nothing) — and
 * for ids in both the worse status wins: the summary can only lower a junit result, never raise
 * it, so forging it gains nothing, while it still adds what junit cannot say (XPASS, which junit
 * records as a plain pass).
 *
 * `junit` is null when there is no report. If one was requested (`junitRequested`, the default:
 * the eval script always passes --junitxml for pytest), its absence means pytest never reached the
 * end of its session — pytest writes the report before it prints the summary — so any summary in
 * the log was not printed by pytest's normal end and nothing is trusted: the result is empty and
 * every listed test counts as missing. A junit file that exists but could not be fetched is the
 * harness's failure and belongs in an `error` verdict, not here. Only when no report was asked
 * for (logs from elsewhere) is the summary used alone.
 */
export function mergeStatuses(
  junit: TestStatusMap | null,
  summary: TestStatusMap,
  options: { junitRequested?: boolean } = {},
): TestStatusMap {
  if (junit === null) return options.junitRequested === false ? { ...summary } : {};
  const merged: TestStatusMap = {};
  for (const [id, status] of Object.entries(junit)) {
    recordStatus(merged, id, status);
    const alsoInSummary = summary[id];
    if (alsoInSummary !== undefined) recordStatus(merged, id, alsoInSummary);
  }
  return merged;
}
