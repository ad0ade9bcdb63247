import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { gradeTests, lookupStatus, mergeStatuses, TestReportSchema, testPasses } from '../../src/verify/grade.js';
import { parseJunitXml } from '../../src/verify/junit.js';
import { parsePytestSummary, TestStatusSchema, type TestStatus } from '../../src/verify/pytest-log.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');

describe('grading table: every status in every list', () => {
  const PASSING: TestStatus[] = ['PASSED', 'XFAIL'];
  for (const status of TestStatusSchema.options) {
    const passes = PASSING.includes(status);
    it(`${status} ${passes ? 'passes' : 'fails'} as FAIL_TO_PASS`, () => {
      const { report, resolved } = gradeTests({ failToPass: ['t.py::a'], passToPass: [], statuses: { 't.py::a': status } });
      expect(report.FAIL_TO_PASS).toEqual(passes ? { success: ['t.py::a'], failure: [] } : { success: [], failure: ['t.py::a'] });
      expect(resolved).toBe(passes);
    });
    const neutral = status === 'SKIPPED';
    it(`${status} ${neutral ? 'is neutral' : passes ? 'passes' : 'fails'} as PASS_TO_PASS`, () => {
      const { report, resolved } = gradeTests({
        failToPass: ['t.py::f'],
        passToPass: ['t.py::p'],
        statuses: { 't.py::f': 'PASSED', 't.py::p': status },
      });
      expect(report.PASS_TO_PASS).toEqual(
        neutral ? { success: [], failure: [] } : passes ? { success: ['t.py::p'], failure: [] } : { success: [], failure: ['t.py::p'] },
      );
      expect(resolved).toBe(passes || neutral);
    });
  }

  it('a missing test fails in either list', () => {
    const missingF2P = gradeTests({ failToPass: ['t.py::gone'], passToPass: [], statuses: { 't.py::other': 'PASSED' } });
    expect(missingF2P.report.FAIL_TO_PASS.failure).toEqual(['t.py::gone']);
    expect(missingF2P.resolved).toBe(false);
    const missingP2P = gradeTests({ failToPass: ['t.py::f'], passToPass: ['t.py::gone'], statuses: { 't.py::f': 'PASSED' } });
    expect(missingP2P.report.PASS_TO_PASS.failure).toEqual(['t.py::gone']);
    expect(missingP2P.resolved).toBe(false);
  });

  it('testPasses agrees with the table', () => {
    expect(testPasses(undefined)).toBe(false);
    expect(TestStatusSchema.options.filter(testPasses)).toEqual(['PASSED', 'XFAIL']);
  });
});

describe('gradeTests', () => {
  it('resolves when every listed test passes, and keeps list order in the report', () => {
    const result = gradeTests({
      failToPass: ['t.py::b', 't.py::a'],
      passToPass: ['t.py::c'],
      statuses: { 't.py::a': 'PASSED', 't.py::b': 'XFAIL', 't.py::c': 'PASSED' },
    });
    expect(result).toEqual({
      report: {
        FAIL_TO_PASS: { success: ['t.py::b', 't.py::a'], failure: [] },
        PASS_TO_PASS: { success: ['t.py::c'], failure: [] },
      },
      resolved: true,
      reason: null,
    });
    expect(TestReportSchema.parse(result.report)).toEqual(result.report);
  });

  it('says how many tests failed when not resolved', () => {
    const result = gradeTests({
      failToPass: ['t.py::a', 't.py::b'],
      passToPass: ['t.py::c'],
      statuses: { 't.py::a': 'PASSED', 't.py::b': 'SKIPPED', 't.py::c': 'ERROR' },
    });
    expect(result.resolved).toBe(false);
    expect(result.reason).toBe('1 FAIL_TO_PASS and 1 PASS_TO_PASS tests did not pass');
  });

  it('never resolves an instance without FAIL_TO_PASS tests, even when PASS_TO_PASS all pass', () => {
    const result = gradeTests({ failToPass: [], passToPass: ['t.py::c'], statuses: { 't.py::c': 'PASSED' } });
    expect(result.resolved).toBe(false);
    expect(result.reason).toMatch(/no FAIL_TO_PASS tests/);
    expect(result.report.PASS_TO_PASS.success).toEqual(['t.py::c']);
  });

  it('lists a duplicated id once', () => {
    const result = gradeTests({ failToPass: ['t.py::a', 't.py::a'], passToPass: [], statuses: { 't.py::a': 'FAILED' } });
    expect(result.report.FAIL_TO_PASS.failure).toEqual(['t.py::a']);
  });
});

describe('lookupStatus: ids SWE-bench cut at the first space', () => {
  const statuses: Record<string, TestStatus> = {
    't.py::test_x[two words]': 'PASSED',
    't.py::test_x[two more words]': 'FAILED',
    't.py::test_y[only one]': 'PASSED',
    't.py::test_z': 'PASSED',
  };

  it('matches exactly first', () => {
    expect(lookupStatus('t.py::test_z', statuses)).toBe('PASSED');
    expect(lookupStatus('t.py::test_x[two words]', statuses)).toBe('PASSED');
  });

  it('stands for every observed id it is the first word of, and takes the worst', () => {
    expect(lookupStatus('t.py::test_y[only', statuses)).toBe('PASSED');
    expect(lookupStatus('t.py::test_x[two', statuses)).toBe('FAILED');
  });

  it('does not match a plain prefix or an id with spaces', () => {
    expect(lookupStatus('t.py::test_', statuses)).toBeUndefined();
    expect(lookupStatus('t.py::test_x[two wo', statuses)).toBeUndefined();
  });

  // SWE-bench's -rA summary never names a skipped test and its parser ignores XPASS lines, so its
  // status map holds only the other parametrizations under the cut id.
  const prefixOf = (...matches: TestStatus[]) =>
    lookupStatus('t.py::test_p[a', Object.fromEntries(matches.map((status, i) => [`t.py::test_p[a ${i}]`, status])));

  it('ignores skipped and XPASS parametrizations when any other matches, as SWE-bench sees them', () => {
    expect(prefixOf('PASSED', 'SKIPPED')).toBe('PASSED');
    expect(prefixOf('SKIPPED', 'PASSED')).toBe('PASSED');
    expect(prefixOf('PASSED', 'XPASS')).toBe('PASSED');
    expect(prefixOf('XFAIL', 'SKIPPED', 'XPASS')).toBe('XFAIL');
    expect(prefixOf('PASSED', 'SKIPPED', 'FAILED')).toBe('FAILED');
    expect(prefixOf('ERROR', 'XPASS')).toBe('ERROR');
  });

  it('takes the worst of skipped and XPASS parametrizations when nothing else matches', () => {
    expect(prefixOf('SKIPPED', 'SKIPPED')).toBe('SKIPPED');
    expect(prefixOf('SKIPPED', 'XPASS')).toBe('XPASS');
    expect(prefixOf('XPASS')).toBe('XPASS');
  });

  it('grades test_trunc_skip[a (one PASSED, one SKIPPED) resolved as FAIL_TO_PASS', () => {
    const result = gradeTests({
      failToPass: ['t.py::test_trunc_skip[a'],
      passToPass: [],
      statuses: { 't.py::test_trunc_skip[a b]': 'PASSED', 't.py::test_trunc_skip[a c]': 'SKIPPED' },
    });
    expect(result.resolved).toBe(true);
  });
});

describe('truncated ids and pytest 7 XPASS lines on real runs (pytest 9.0.3 and Debian 7.2.1)', () => {
  const files = ['tests/test_trunc.py', 'tests/test_marks.py'];
  const merged = (name: string) => mergeStatuses(parseJunitXml(fixture(`${name}.xml`), files), parsePytestSummary(fixture(`${name}.log`)));
  const cut = (name: string) => `tests/test_trunc.py::test_trunc_${name}[a`;

  for (const run of ['trunc', 'pytest7']) {
    it(`${run}: a cut id passes unless a parametrization SWE-bench sees fails`, () => {
      const result = gradeTests({
        failToPass: [cut('skip'), cut('xpass'), cut('xfail'), cut('fail')],
        passToPass: [cut('all_skipped')],
        statuses: merged(run),
      });
      expect(result.report).toEqual({
        FAIL_TO_PASS: { success: [cut('skip'), cut('xpass'), cut('xfail')], failure: [cut('fail')] },
        PASS_TO_PASS: { success: [], failure: [] }, // every parametrization skipped: neutral, as an exact skipped id
      });
    });

    it(`${run}: an XPASS lowers the junit PASSED, so the test fails`, () => {
      const statuses = merged(run);
      expect(statuses['tests/test_trunc.py::test_trunc_xpass[a c]']).toBe('XPASS');
      const result = gradeTests({
        failToPass: ['tests/test_trunc.py::test_trunc_xpass[a c]', 'tests/test_trunc.py::test_trunc_xpass[a b]'],
        passToPass: [],
        statuses,
      });
      expect(result.report.FAIL_TO_PASS.failure).toEqual(['tests/test_trunc.py::test_trunc_xpass[a c]']);
    });
  }

  it('pytest7: the XPASS line carries its reason after a bare space, and still names the junit test', () => {
    const statuses = merged('pytest7');
    expect(statuses['tests/test_marks.py::test_xpass']).toBe('XPASS');
    expect(statuses['tests/test_marks.py::test_xpass_strict']).toBe('FAILED');
    expect(statuses['tests/test_marks.py::test_xfail']).toBe('XFAIL');
    expect(Object.keys(statuses).some((id) => id.endsWith('maybe fixed'))).toBe(false);
  });

  it('an XPASS id that starts with no junit id lowers nothing', () => {
    expect(mergeStatuses({ 't.py::a': 'PASSED', 't.py::ab': 'PASSED' }, { 't.py::a b': 'XPASS', 't.py::abc d': 'XPASS' })).toEqual({
      't.py::a': 'XPASS',
      't.py::ab': 'PASSED',
    });
  });
});

describe('gradeTests: listed ids no run can produce', () => {
  it('leaves [100%] out of PASS_TO_PASS, so the gold patch of pytest-dev__pytest-5262 can resolve', () => {
    const result = gradeTests({ failToPass: ['t.py::f'], passToPass: ['t.py::p', '[100%]', '['], statuses: { 't.py::f': 'PASSED', 't.py::p': 'PASSED' } });
    expect(result.resolved).toBe(true);
    expect(result.report.PASS_TO_PASS).toEqual({ success: ['t.py::p'], failure: [] });
  });

  it('leaves them out of FAIL_TO_PASS too: an instance listing nothing else never resolves', () => {
    const result = gradeTests({ failToPass: ['[100%]------'], passToPass: [], statuses: { '[100%]------': 'PASSED' } });
    expect(result.resolved).toBe(false);
    expect(result.reason).toMatch(/no FAIL_TO_PASS tests/);
  });
});

describe('mergeStatuses', () => {
  it('keeps junit ids, lets the summary only lower them, and drops ids only the summary names', () => {
    const merged = mergeStatuses(
      { 'a::pass': 'PASSED', 'a::xpass': 'PASSED', 'a::fail': 'FAILED', 'a::skip': 'SKIPPED' },
      { 'a::pass': 'PASSED', 'a::xpass': 'XPASS', 'a::fail': 'PASSED', 'a::forged': 'PASSED' },
    );
    expect(merged).toEqual({ 'a::pass': 'PASSED', 'a::xpass': 'XPASS', 'a::fail': 'FAILED', 'a::skip': 'SKIPPED' });
  });

  it('trusts nothing when a requested junit report is missing', () => {
    expect(mergeStatuses(null, { 'a::pass': 'PASSED' })).toEqual({});
  });

  it('uses the summary alone when no junit report was requested', () => {
    expect(mergeStatuses(null, { 'a::pass': 'PASSED' }, { junitRequested: false })).toEqual({ 'a::pass': 'PASSED' });
  });

  it('on the real fixtures: the forged test stays unknown and the XPASS fails', () => {
    const junit = parseJunitXml(fixture('main.xml'), ['tests/test_basic.py', 'tests/test_marks.py', 'tests/test_forge.py']);
    const merged = mergeStatuses(junit, parsePytestSummary(fixture('main.log')));
    const result = gradeTests({
      failToPass: ['tests/test_forge.py::test_fake', 'tests/test_marks.py::test_xpass', 'tests/test_marks.py::test_xfail'],
      passToPass: ['tests/test_basic.py::test_param_str[two words]', 'tests/test_marks.py::test_skip_marker'],
      statuses: merged,
    });
    expect(result.report).toEqual({
      FAIL_TO_PASS: {
        success: ['tests/test_marks.py::test_xfail'],
        failure: ['tests/test_forge.py::test_fake', 'tests/test_marks.py::test_xpass'],
      },
      // The skipped PASS_TO_PASS test is neither a success nor a failure (SWE-bench's rule).
      PASS_TO_PASS: { success: ['tests/test_basic.py::test_param_str[two words]'], failure: [] },
    });
  });
});
