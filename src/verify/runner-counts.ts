import { stripAnsi } from './pytest-log.js';
import type { RunnerKind } from './runners.js';

/**
 * What a test runner's own closing line says of a run, read from its printed log: the line
 * itself (quoted in findings) and the fewest tests it proves did not pass.
 *
 * The closing line is printed by the runner from its own tallies, apart from the channel the
 * harness reads results from (pytest's junit report, the result hook): a patch that rewrites one
 * rarely rewrites the other in step. `failing` is a lower bound, never a guess: pytest's
 * "N failed" is one per test, but an "error" may be a second report of a test already counted
 * (a teardown error), so errors alone prove one; unittest counts every failing subTest and sympy
 * every failing file import, so their counts prove one failing test, not k.
 */
export interface RunnerCounts {
  line: string;
  failing: number;
}

const ANY_NUMBER = (text: string, word: RegExp): number => {
  const match = word.exec(text);
  return match ? Number(match[1]) : 0;
};

/** pytest's `==== 2 failed, 3 passed, 1 error in 0.12s ====` (the last such line: the run's). */
function pytestCounts(lines: string[]): RunnerCounts | null {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = (lines[i] ?? '').trim();
    const match = /^=+ (.+) in [\d.]+s(?: \([^)]*\))? =+$/.exec(line);
    if (!match) continue;
    const text = match[1]!;
    const failed = ANY_NUMBER(text, /(\d+) failed\b/);
    const errors = ANY_NUMBER(text, /(\d+) errors?\b/);
    return { line, failing: Math.max(failed, errors > 0 ? 1 : 0) };
  }
  return null;
}

/** unittest's `Ran N tests in Xs` and, below it, `OK` or `FAILED (failures=1, errors=2)`. */
function unittestCounts(lines: string[]): RunnerCounts | null {
  for (let i = lines.length - 1; i >= 0; i--) {
    if (!/^Ran \d+ tests? in /.test((lines[i] ?? '').trim())) continue;
    const verdict = lines.slice(i + 1).map((l) => l.trim()).find((l) => l !== '');
    if (verdict === undefined) return null;
    const failed = /^FAILED \((.*)\)$/.exec(verdict);
    if (!failed && !/^OK\b/.test(verdict)) return null;
    const bad = failed ? ANY_NUMBER(failed[1]!, /\bfailures=(\d+)/) + ANY_NUMBER(failed[1]!, /\berrors=(\d+)/) : 0;
    return { line: verdict, failing: bad > 0 ? 1 : 0 };
  }
  return null;
}

/** sympy's `tests finished: 3 passed, 1 failed, 1 exceptions, in 0.10 seconds` (it may wrap). */
function sympyCounts(lines: string[]): RunnerCounts | null {
  for (let i = lines.length - 1; i >= 0; i--) {
    const at = (lines[i] ?? '').indexOf('tests finished:');
    if (at < 0) continue;
    const text = `${(lines[i] ?? '').slice(at)} ${lines[i + 1] ?? ''}`.replace(/=+/g, ' ').replace(/\s+/g, ' ');
    const end = text.indexOf(' seconds');
    const line = (end >= 0 ? text.slice(0, end + ' seconds'.length) : text).trim();
    // "expected to fail, but passed" holds "fail": only the bare words count.
    const bad = ANY_NUMBER(line, /(\d+) failed\b/) + ANY_NUMBER(line, /(\d+) exceptions\b/);
    return { line, failing: bad > 0 ? 1 : 0 };
  }
  return null;
}

const READERS: Readonly<Record<RunnerKind, (lines: string[]) => RunnerCounts | null>> = {
  pytest: pytestCounts,
  django: unittestCounts,
  sympy: sympyCounts,
};

/** The runner's closing counts in a test log; null when it printed none (killed, or another runner). */
export function runnerCounts(kind: RunnerKind, log: string): RunnerCounts | null {
  return READERS[kind](stripAnsi(log).replace(/\r\n?/g, '\n').split('\n'));
}
