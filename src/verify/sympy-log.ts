import { recordStatus, stripAnsi, type TestStatus, type TestStatusMap } from './pytest-log.js';

/**
 * sympy's own runner (`bin/test -C --verbose <files>`): its directives and its log.
 *
 * Directives: the test patch's files as they are (SWE-bench passes the paths).
 */
export function sympyDirectives(testFiles: readonly string[]): string[] {
  return [...new Set(testFiles)];
}

/** The last character the verbose runner prints for a test. */
const RESULT_WORD: Readonly<Record<string, TestStatus>> = {
  ok: 'PASSED',
  F: 'FAILED',
  E: 'ERROR',
  T: 'ERROR', // timed out
  f: 'XFAIL',
  X: 'XPASS',
  s: 'SKIPPED',
  w: 'SKIPPED', // slow, not run
  K: 'SKIPPED', // interrupted
};

/**
 * Test id → status from `bin/test --verbose` output, read the way SWE-bench's sympy parser
 * reads it: a line `test_name … <result>` (the id is the bare function name, its first word;
 * a skip may print its reason before the `s`), plus the failure report's
 * `____ path/test_file.py:test_name ____` headers, recorded as FAILED under `path.py:test_name`.
 */
export function parseSympyLog(log: string): TestStatusMap {
  const statuses: TestStatusMap = {};
  for (const raw of stripAnsi(log).replace(/\r\n?/g, '\n').split('\n')) {
    const line = raw.trim();
    const header = /^_+ (.+\.py):(\S+) _+$/.exec(line);
    if (header) {
      recordStatus(statuses, `${header[1]}:${header[2]}`, 'FAILED');
      continue;
    }
    if (!line.startsWith('test_')) continue;
    const words = line.split(/\s+/);
    if (words.length < 2) continue;
    const status = RESULT_WORD[words[words.length - 1]!];
    if (status) recordStatus(statuses, words[0]!, status);
  }
  return statuses;
}
