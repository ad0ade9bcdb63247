import { recordStatus, stripAnsi, type TestStatus, type TestStatusMap } from './pytest-log.js';

/**
 * Django's test runner (`tests/runtests.py --verbosity 2`): its directives and its log.
 *
 * Directives, as SWE-bench derives them: each test file of the test patch as a module label —
 * `.py` dropped, a leading `tests/` dropped, `/` → `.` (`tests/utils_tests/test_text.py` →
 * `utils_tests.test_text`).
 */
export function djangoDirectives(testFiles: readonly string[]): string[] {
  const labels = testFiles.map((file) => file.replace(/\.py$/, '').replace(/^tests\//, '').split('/').join('.'));
  return [...new Set(labels)];
}

const RESULT_AT_END: readonly [RegExp, TestStatus][] = [
  [/ \.\.\. {1,2}(ok|OK)$/, 'PASSED'],
  [/ \.\.\. skipped\b/, 'SKIPPED'],
  [/ \.\.\. FAIL$/, 'FAILED'],
  [/ \.\.\. ERROR$/, 'ERROR'],
  [/ \.\.\. expected failure$/, 'XFAIL'],
  [/ \.\.\. unexpected success$/, 'XPASS'],
];
const RESULT_ALONE: readonly [RegExp, TestStatus][] = [
  [/^(ok|OK)$/, 'PASSED'],
  [/^skipped\b/, 'SKIPPED'],
  [/^FAIL$/, 'FAILED'],
  [/^ERROR$/, 'ERROR'],
  [/^expected failure$/, 'XFAIL'],
  [/^unexpected success$/, 'XPASS'],
];
/** `name (module.Class)` or, Python ≥ 3.11, `name (module.Class.name)`: what str(test) prints. */
const UNITTEST_NAME = /^(\w+) \(([\w.]+)\)$/;

/**
 * Test id → status from a verbose unittest log, read the way SWE-bench's Django parser reads it:
 * - `<id> ... ok | OK | skipped '…' | FAIL | ERROR` on one line, the id being what precedes ` ... `;
 * - a test with a docstring is printed as `name (module.Class)` on a line of its own and its
 *   docstring's first line before ` ... `: that first line is the id (as in the datasets), and the
 *   `name (module.Class)` line before it gets the same status;
 * - a result word alone on a line (`ok`, `FAIL`, …) belongs to the last test whose ` ... ` line
 *   had no result yet (the test printed something in between, e.g. "System check identified…");
 * - the `FAIL: <id>` / `ERROR: <id>` headers of the failure report count too (they can only lower).
 * `expected failure` is XFAIL and `unexpected success` XPASS (SWE-bench's parser does not know
 * them: there such a test is missing). Python ≥ 3.11 ids get the older form as an alias and the
 * other way round (withUnittestAliases), so a dataset written under either Python matches.
 */
export function parseDjangoLog(log: string): TestStatusMap {
  const statuses: TestStatusMap = {};
  const lines = stripAnsi(log).replace(/\r\n?/g, '\n').split('\n');
  let pending: string[] | null = null;
  let previous = '';
  for (const raw of lines) {
    const line = raw.trim();
    const header = /^(FAIL|ERROR): (.+)$/.exec(line);
    if (header) {
      recordStatus(statuses, header[2]!.trim(), header[1] === 'FAIL' ? 'FAILED' : 'ERROR');
      previous = line;
      continue;
    }
    const dots = line.indexOf(' ... ');
    if (dots > 0) {
      const id = line.slice(0, dots);
      const names = UNITTEST_NAME.test(previous) && !UNITTEST_NAME.test(id) ? [id, previous] : [id];
      const result = RESULT_AT_END.find(([pattern]) => pattern.test(line));
      if (result) {
        for (const name of names) recordStatus(statuses, name, result[1]);
        pending = null;
      } else {
        pending = names;
      }
    } else if (pending) {
      const alone = RESULT_ALONE.find(([pattern]) => pattern.test(line));
      if (alone) {
        for (const name of pending) recordStatus(statuses, name, alone[1]);
        pending = null;
      }
    }
    previous = line;
  }
  return withUnittestAliases(statuses);
}

/**
 * unittest names a test `name (module.Class)` before Python 3.11 and `name (module.Class.name)`
 * from 3.11 on; datasets hold whichever their harness's Python printed. Each id of either shape
 * also stands for the other.
 */
export function withUnittestAliases(statuses: TestStatusMap): TestStatusMap {
  const out: TestStatusMap = { ...statuses };
  for (const [id, status] of Object.entries(statuses)) {
    const match = UNITTEST_NAME.exec(id);
    if (!match) continue;
    const [, name, where] = match as unknown as [string, string, string];
    const alias = where.endsWith(`.${name}`) ? `${name} (${where.slice(0, -name.length - 1)})` : `${name} (${where}.${name})`;
    recordStatus(out, alias, status);
  }
  return out;
}
