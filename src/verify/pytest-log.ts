import { z } from 'zod';

/** A test's outcome as pytest reports it (`-rA` summary words; junit maps onto the same set). */
export const TestStatusSchema = z.enum(['PASSED', 'FAILED', 'SKIPPED', 'ERROR', 'XFAIL', 'XPASS']);
export type TestStatus = z.infer<typeof TestStatusSchema>;

/** Test id → status, the parsed result of one test run. */
export const TestStatusMapSchema = z.record(z.string(), TestStatusSchema);
export type TestStatusMap = z.infer<typeof TestStatusMapSchema>;

/**
 * How bad a status is, for a test reported more than once: pytest prints `PASSED` and then
 * `ERROR` for a test whose teardown blew up, and the two parsers may disagree. The worse one
 * wins, so a second report can never turn a failure into a pass.
 */
const SEVERITY: Record<TestStatus, number> = { PASSED: 0, XFAIL: 1, SKIPPED: 2, XPASS: 3, FAILED: 4, ERROR: 5 };

export function worseStatus(a: TestStatus, b: TestStatus): TestStatus {
  return SEVERITY[b] > SEVERITY[a] ? b : a;
}

/** Record `status` for `id`, keeping the worse of it and anything already recorded. */
export function recordStatus(map: TestStatusMap, id: string, status: TestStatus): void {
  const prior = map[id];
  map[id] = prior === undefined ? status : worseStatus(prior, status);
}

// CSI sequences (colours, cursor moves) that --color=yes or a tty adds.
const ANSI = /\u001b\[[0-9;?]*[ -\/]*[@-~]/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

const SUMMARY_HEADER = /^=+ short test summary info =+$/;
const SECTION_LINE = /^=+ .* =+$/;
const STATUS_WORD = /^(PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS) (.+)$/;

/**
 * Parse the "short test summary info" section that `pytest -rA` prints at the end of a run.
 *
 * Only that section counts, and only its last occurrence: a test's captured stdout/stderr is
 * replayed in the FAILURES and PASSES sections, which come before the real summary, so a test
 * that prints a forged header and `PASSED ...` lines lands above it and is never read. The
 * section ends at the next `=== ... ===` line (the `N passed in Xs` totals), so output after the
 * run is not read either, and a section line after the totals voids the whole section (the run
 * died before its summary and the "last" header is a replayed fake): the result is then empty.
 * This is a defence against accidents and cheap tricks, not against code in the test process
 * itself (which can write anything anywhere); the junit report is the primary source, see
 * mergeStatuses in grade.ts.
 *
 * The line forms, by pytest release (src/_pytest/terminal.py: `short_test_summary` and, for
 * PASSED/FAILED/ERROR, `_get_line_with_reprcrash_message`; read in 4.6.11, 5.4.3, 6.2.5, 7.1.3,
 * 7.2.1, 7.4.0, 8.0.0, 8.3.0 and 9.0.3, and seen in real runs of 7.2.1 and 9.0.3):
 * - `PASSED|FAILED|ERROR <id>`, with ` - <message>` when there is one: every release.
 * - XFAIL: `XFAIL <id>`, the reason on the next line indented two spaces (to 7.1.x; the indented
 *   line is not a status line and is skipped); `XFAIL <id> - <reason>` from 7.2.0.
 * - XPASS: `XPASS <id> <reason>` after a bare space (to 7.4.x; an empty reason leaves a trailing
 *   space); `XPASS <id> - <reason>` from 8.0.0. Nothing in the older line tells where the id ends
 *   (ids may hold spaces), so the id read here keeps the reason and mergeStatuses (grade.ts) finds
 *   the junit id it starts with; the XPASS then lowers that test's junit PASSED as for 8.0.0+.
 * - SKIPPED: `SKIPPED [N] <path>:<line>: <reason>` (or without `:<line>`) in every release: a
 *   location, not a test id (pytest folds skips with the same location and reason into one line),
 *   so it is not mapped; from 8.3.0, `--no-fold-skipped` prints `SKIPPED <id> - <reason>`, read
 *   like the others. Nothing is lost for grading: a test that is missing fails exactly as a
 *   SKIPPED one does, and junit names them.
 */
export function parsePytestSummary(log: string): TestStatusMap {
  const lines = stripAnsi(log).replace(/\r\n?/g, '\n').split('\n');
  let header = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (SUMMARY_HEADER.test((lines[i] ?? '').trim())) {
      header = i;
      break;
    }
  }
  const statuses: TestStatusMap = {};
  if (header < 0) return statuses;
  let totals = -1;
  for (let i = header + 1; i < lines.length && totals < 0; i++) {
    if (SECTION_LINE.test((lines[i] ?? '').trim())) totals = i;
  }
  // The real summary is the end of pytest's report: a section line after its totals means this
  // "summary" is text from inside the report (the run died before printing the real one).
  if (totals < 0 || lines.slice(totals + 1).some((line) => SECTION_LINE.test(line.trim()))) return statuses;
  for (let i = header + 1; i < totals; i++) {
    const line = (lines[i] ?? '').replace(/\s+$/, '');
    const match = STATUS_WORD.exec(line);
    if (!match) continue;
    const status = match[1] as TestStatus;
    const rest = match[2] ?? '';
    if (status === 'SKIPPED' && /^\[\d+\] /.test(rest)) continue;
    // PASSED lines normally carry no message, but a report a hook rewrote from failed keeps its
    // message, so every line is split the same way.
    const id = splitTestId(rest);
    if (id !== '') recordStatus(statuses, id, status);
  }
  return statuses;
}

/**
 * The node id at the start of `<id> - <message>`. Parametrized ids may contain spaces, ` - `,
 * `::` and nested brackets inside their `[...]` part, so the id ends at the first ` - ` outside
 * brackets. When the brackets do not balance (a parameter string holding a lone `[`), fall back
 * to the first `]` that is followed by ` - ` or the end of the line.
 */
export function splitTestId(rest: string): string {
  const text = rest.replace(/\s+$/, '');
  let depth = 0;
  let balanced = true;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '[') depth += 1;
    else if (ch === ']') {
      depth -= 1;
      if (depth < 0) balanced = false;
    } else if (depth === 0 && text.startsWith(' - ', i)) return text.slice(0, i);
  }
  if (balanced && depth === 0) return text;
  const firstBracket = text.indexOf('[');
  for (let i = firstBracket; i >= 0 && i < text.length; i++) {
    if (text[i] === ']' && (i === text.length - 1 || text.startsWith(' - ', i + 1))) return text.slice(0, i + 1);
  }
  const dash = text.indexOf(' - ');
  return dash >= 0 ? text.slice(0, dash) : text;
}
