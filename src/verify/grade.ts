import { z } from 'zod';
import { isJunkId } from './junk-ids.js';
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
 * The statuses SWE-bench's pytest parsers can hold for a test: pytest's `-rA` summary names
 * passed, xfailed, errored and failed tests by id, a skipped test only folded into
 * `SKIPPED [N] file:line: reason` (every pytest release; unfolded lines need pytest ≥ 8.3's
 * `--no-fold-skipped`, which SWE-bench does not pass), and `XPASS` is not one of SWE-bench's
 * status words, so its lines are not read (harness/constants TestStatus, v4.1.0 and main).
 */
const NAMED_BY_SWEBENCH: ReadonlySet<TestStatus> = new Set<TestStatus>(['PASSED', 'XFAIL', 'FAILED', 'ERROR']);

/**
 * Status of a listed test id. An exact match wins. Otherwise the id may be a truncated one:
 * SWE-bench's pytest parser keeps the first whitespace-separated word after the status word, so a
 * parametrized test `t.py::test[a b]` is listed as `t.py::test[a`.
 *
 * Such an id stands for what SWE-bench's status map would hold under that key, i.e. for the
 * observed ids that start with it followed by whitespace (`t.py::test[a b]`, `t.py::test[a c]`;
 * not `t.py::test[ab]`, whose first word differs) AND that SWE-bench sees at all:
 * - v4.1.0 (log_parsers parse_log_pytest, grading test_passed/test_failed): every summary line
 *   writes its status under the cut id, so the key holds the status of the LAST such line. `-rA`
 *   prints passed, then the folded skips, xfailed, xpassed, errors and failures (pytest's
 *   terminal.py `getreportopt`, "PpsxXEf"), so a failure or error among them wins, else the key
 *   passes; skipped and XPASS parametrizations never reach the map.
 * - main (grading `_resolve_case`): an exact key still wins; an id with more `[` than `]` that
 *   is no key matches the keys it prefixes and passes only if all of them pass, fails otherwise.
 * Both come to the same here: the worst status among the matches SWE-bench sees (PASSED < XFAIL
 * < FAILED < ERROR; only pass versus fail matters). rft matches only where the id is followed by
 * whitespace, the cut SWE-bench's parser made (main's plain prefix also takes `t.py::test[ab]`). So one PASSED and one SKIPPED parametrization
 * grade PASSED, one PASSED and one XPASS too, one PASSED and one FAILED grade FAILED.
 *
 * When every match is SKIPPED or XPASS, SWE-bench would find nothing and call the test missing.
 * rft grades it as it grades those statuses on an exact id instead (the worst of them): XPASS fails
 * like missing does, and all-SKIPPED is SKIPPED — a failure as FAIL_TO_PASS, neutral as
 * PASS_TO_PASS, the rule testPasses describes. No match at all → undefined (missing).
 */
export function lookupStatus(id: string, statuses: TestStatusMap): TestStatus | undefined {
  const exact = statuses[id];
  if (exact !== undefined) return exact;
  if (/\s/.test(id)) return undefined;
  let seen: TestStatus | undefined;
  let unseen: TestStatus | undefined;
  for (const [observed, status] of Object.entries(statuses)) {
    if (observed.length > id.length && observed.startsWith(id) && /\s/.test(observed[id.length] ?? '')) {
      if (NAMED_BY_SWEBENCH.has(status)) seen = seen === undefined ? status : worseStatus(seen, status);
      else unseen = unseen === undefined ? status : worseStatus(unseen, status);
    }
  }
  return seen ?? unseen;
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
 *
 * Listed ids no run can produce (junk-ids.ts: `[100%]`, `[`, …) are left out of both lists, like
 * a skipped PASS_TO_PASS test: they stand for no test, and counting them missing would make the
 * instance unresolvable whatever the patch. `rft tasks validate` names them.
 */
export function gradeTests(input: GradeInput): GradeResult {
  const grade = (ids: string[], skippedIsNeutral: boolean) => {
    const success: string[] = [];
    const failure: string[] = [];
    for (const id of new Set(ids)) {
      if (isJunkId(id)) continue;
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
 * pytest before 8.0 prints an XPASS's reason after a bare space, `XPASS t.py::test_x reason`
 * (src/_pytest/terminal.py `short_test_summary`, `show_xpassed`: so in 4.6.11, 5.4.3, 6.2.5, 7.2.1
 * and 7.4.0; 8.0.0 added the " - " the other lines have), so the summary's id for it may carry
 * the reason. An XPASS id that is not a trusted id therefore names the longest trusted id it
 * starts with followed by whitespace. (Read alone, such an XPASS id matches no listed test, which
 * fails it just as XPASS would.)
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
  for (const [id, status] of Object.entries(summary)) {
    if (status !== 'XPASS' || junit[id] !== undefined) continue;
    const named = longestIdBefore(id, junit);
    if (named !== undefined) recordStatus(merged, named, status);
  }
  return merged;
}

/** The longest of `ids` that `text` starts with, followed by whitespace. */
function longestIdBefore(text: string, ids: TestStatusMap): string | undefined {
  let best: string | undefined;
  for (const space of text.matchAll(/\s/g)) {
    const prefix = text.slice(0, space.index);
    if (Object.hasOwn(ids, prefix)) best = prefix;
  }
  return best;
}
