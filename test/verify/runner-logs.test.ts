import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { djangoDirectives, parseDjangoLog, withUnittestAliases } from '../../src/verify/django-log.js';
import { gradeTests, mergeStatuses } from '../../src/verify/grade.js';
import { rewriteIds } from '../../src/verify/id-rewrite.js';
import { isJunkId, junkIds } from '../../src/verify/junk-ids.js';
import { mangleNodeId, parseJunitXml } from '../../src/verify/junit.js';
import { HOOK_SOURCE, parseHookResults } from '../../src/verify/result-hook.js';
import { RUNNERS, repoFamily } from '../../src/verify/runners.js';
import { parseSympyLog } from '../../src/verify/sympy-log.js';
import { taskNotes } from '../../src/verify/validate.js';

describe('Django log (reference semantics)', () => {
  const log = [
    'test_a (utils_tests.test_text.TestUtilsText) ... ok',
    'test_b (utils_tests.test_text.TestUtilsText) ... FAIL',
    'test_c (utils_tests.test_text.TestUtilsText) ... ERROR',
    "test_d (utils_tests.test_text.TestUtilsText) ... skipped 'no reason'",
    'test_e (utils_tests.test_text.TestUtilsText)',
    'If the text is long, it is cut ... ok',
    'test_f (utils_tests.test_text.TestUtilsText) ... System check identified no issues (0 silenced).',
    'ok',
    'test_g (m.C.test_g) ... ok',
    'test_h (m.C) ... expected failure',
    '======================================================================',
    'FAIL: test_b (utils_tests.test_text.TestUtilsText)',
  ].join('\n');
  const statuses = parseDjangoLog(log);

  it('reads one-line results, docstring ids, results on their own line and the FAIL: headers', () => {
    expect(statuses['test_a (utils_tests.test_text.TestUtilsText)']).toBe('PASSED');
    expect(statuses['test_b (utils_tests.test_text.TestUtilsText)']).toBe('FAILED');
    expect(statuses['test_c (utils_tests.test_text.TestUtilsText)']).toBe('ERROR');
    expect(statuses['test_d (utils_tests.test_text.TestUtilsText)']).toBe('SKIPPED');
    expect(statuses['If the text is long, it is cut']).toBe('PASSED');
    expect(statuses['test_e (utils_tests.test_text.TestUtilsText)']).toBe('PASSED');
    expect(statuses['test_f (utils_tests.test_text.TestUtilsText)']).toBe('PASSED');
    expect(statuses['test_h (m.C)']).toBe('XFAIL');
  });

  it('gives Python ≥ 3.11 ids the older form and the other way round', () => {
    expect(statuses['test_g (m.C)']).toBe('PASSED');
    expect(statuses['test_a (utils_tests.test_text.TestUtilsText.test_a)']).toBe('PASSED');
    expect(withUnittestAliases({ 'x (a.B.x)': 'FAILED' })).toEqual({ 'x (a.B.x)': 'FAILED', 'x (a.B)': 'FAILED' });
  });

  it('derives module labels from test files', () => {
    expect(djangoDirectives(['tests/utils_tests/test_text.py', 'tests/i18n/tests.py'])).toEqual(['utils_tests.test_text', 'i18n.tests']);
  });
});

describe('sympy log (reference semantics)', () => {
  it('reads `test_name <result>` lines and the failure headers', () => {
    const log = [
      'sympy/core/tests/test_x.py[6] ',
      'test_ok ok',
      'test_fail F',
      'test_err E',
      'test_xfail f',
      'test_xpass X',
      'test_skip needs numpy s',
      '________________ sympy/core/tests/test_x.py:test_fail _________________',
    ].join('\n');
    expect(parseSympyLog(log)).toEqual({
      test_ok: 'PASSED',
      test_fail: 'FAILED',
      test_err: 'ERROR',
      test_xfail: 'XFAIL',
      test_xpass: 'XPASS',
      test_skip: 'SKIPPED',
      'sympy/core/tests/test_x.py:test_fail': 'FAILED',
    });
  });
});

describe('one table of runners', () => {
  it('picks the family by repository, case-insensitively', () => {
    expect(repoFamily('django/django')?.kind).toBe('django');
    expect(repoFamily('SymPy/SymPy')?.kind).toBe('sympy');
    expect(repoFamily('python/mypy')?.kind).toBe('pytest');
    expect(repoFamily('nobody/nothing')).toBeNull();
    expect(RUNNERS.django.channel).toBe('hook');
    expect(RUNNERS.pytest.channel).toBe('junit');
  });
});

describe('ids as the datasets wrote them', () => {
  it('computes the classname and name pytest writes for an id', () => {
    expect(mangleNodeId('mypy/test/testcheck.py::TypeCheckSuite::check-dataclasses.test::testSlots')).toEqual({
      classname: 'mypy.test.testcheck.TypeCheckSuite.check-dataclasses.test',
      name: 'testSlots',
    });
    expect(mangleNodeId('tests/a.py::test_p[x.y::z]')).toEqual({ classname: 'tests.a', name: 'test_p[x.y::z]' });
  });

  it('finds mypy data-driven ids in a junit report', () => {
    const xml =
      '<testsuites><testsuite name="pytest">' +
      '<testcase classname="mypy.test.testcheck.TypeCheckSuite.check-dataclasses.test" name="testSlots" />' +
      '<testcase classname="mypy.test.testcheck.TypeCheckSuite.check-dataclasses.test" name="testOther"><failure message="x"/></testcase>' +
      '</testsuite></testsuites>';
    const listed = [
      'mypy/test/testcheck.py::TypeCheckSuite::check-dataclasses.test::testSlots',
      'mypy/test/testcheck.py::TypeCheckSuite::check-dataclasses.test::testOther',
    ];
    expect(parseJunitXml(xml, ['mypy/test/testcheck.py'], listed)).toEqual({ [listed[0]!]: 'PASSED', [listed[1]!]: 'FAILED' });
  });

  it('rewrites ids the way the reference parsers did (requests/pylint paths, matplotlib buttons)', () => {
    expect(rewriteIds({ 'test_r.py::test_str[/tmp/pytest-0/a/file.txt]': 'PASSED' }, 'path_basename')).toEqual({
      'test_r.py::test_str[/tmp/pytest-0/a/file.txt]': 'PASSED',
      'test_r.py::test_str[/file.txt]': 'PASSED',
    });
    expect(rewriteIds({ 't.py::test_sel[MouseButton.LEFT]': 'FAILED' }, 'mousebutton')['t.py::test_sel[1]']).toBe('FAILED');
    expect(rewriteIds({ 't.py::a[//x]': 'PASSED' }, 'path_basename')).toEqual({ 't.py::a[//x]': 'PASSED' });
  });

  it('names listed ids no run can produce: progress columns, their pieces, separators', () => {
    const junk = ['[100%]', '[', '[100%]-------------------------', '[ 50%]', '[1]', '', '  ', '=====', '[100%]====='];
    const real = ['t.py::ok', 't.py::test_p[1]', 't.py::test_p[', 'tests/test_x.py', 'test_a (m.C)', 'test_sqrt', 'sympy/core/tests/test_x.py:test_y'];
    expect(junkIds([...real, ...junk])).toEqual(junk);
    expect(real.some(isJunkId)).toBe(false);
  });

  it('rft tasks validate notes them and how the instance grades, and the install steps rft does not re-run', () => {
    const base = { FAIL_TO_PASS: ['t.py::a'], PASS_TO_PASS: ['t.py::b', '[100%]', '['] };
    expect(taskNotes({ repo: 'pytest-dev/pytest', version: '5.4', ...base })).toEqual([
      'listed ids no test run can produce (a reference parser read them from progress or separator text): PASS_TO_PASS "[100%]", "[". ' +
        'rft grades without them (they count in neither list); SWE-bench grades them by whatever its parser reads from similar text ' +
        'in the new log, and fails them when there is none',
    ]);
    const onlyJunk = taskNotes({ repo: 'pytest-dev/pytest', version: '5.4', FAIL_TO_PASS: ['[100%]-----'], PASS_TO_PASS: [] });
    expect(onlyJunk[0]).toMatch(/^listed ids .*: FAIL_TO_PASS "\[100%\]-----"\. .*Without them FAIL_TO_PASS is empty, so the instance never resolves$/);
    expect(taskNotes({ repo: 'django/django', version: '2.2', FAIL_TO_PASS: ['x'], PASS_TO_PASS: [] })[0]).toMatch(/install step re-run.*setup.py install/);
    expect(taskNotes({ repo: 'django/django', version: '3.0', FAIL_TO_PASS: ['x'], PASS_TO_PASS: [] })).toEqual([]);
  });
});

describe('the result hook (real Python, unittest)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-hook-'));
  writeFileSync(path.join(dir, 'sitecustomize.py'), HOOK_SOURCE);
  writeFileSync(
    path.join(dir, 'test_mod.py'),
    [
      'import sys, unittest',
      'class T(unittest.TestCase):',
      '    def test_pass(self): pass',
      '    def test_fail(self):',
      '        """Docstring first line."""',
      "        print('test_fail (test_mod.T) ... ok', file=sys.stderr)",
      "        print('test_fail (test_mod.T.test_fail) ... ok', file=sys.stderr)",
      '        self.fail()',
      '    def test_nested(self):',
      '        class Inner(unittest.TestCase):',
      '            def test_fail(self): pass',
      "        Inner('test_fail').run(unittest.TestResult())",
      '    @unittest.skip("no")',
      '    def test_skip(self): pass',
      '    def test_sub(self):',
      '        with self.subTest(i=1):',
      '            self.assertEqual(1, 2)',
      '',
    ].join('\n'),
  );
  const results = path.join(dir, 'results.jsonl');
  const run = spawnSync('python3', ['-m', 'unittest', '-v', 'test_mod'], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: dir, RFT_RESULTS_PIPE: results },
  });

  it('records what the runner saw, under the ids Django prints; forged lines and inner suites change nothing', () => {
    const hooked = parseHookResults(readFileSync(results, 'utf8'));
    expect(hooked).not.toBeNull();
    const fail = Object.keys(hooked!).filter((id) => id.startsWith('test_fail'));
    expect(fail.every((id) => hooked![id] === 'FAILED')).toBe(true);
    expect(hooked!['Docstring first line.']).toBe('FAILED');
    expect(hooked!['test_pass (test_mod.T)']).toBe('PASSED');
    expect(hooked!['test_skip (test_mod.T)']).toBe('SKIPPED');
    expect(hooked!['test_sub (test_mod.T)']).toBe('FAILED');
    expect(hooked!['test_nested (test_mod.T)']).toBe('PASSED');
    // The log alone would say test_fail passed (the forged line comes first); merged it cannot.
    const merged = mergeStatuses(hooked, parseDjangoLog(run.stderr));
    const graded = gradeTests({ failToPass: ['test_fail (test_mod.T)'], passToPass: ['test_pass (test_mod.T)'], statuses: merged });
    expect(graded.resolved).toBe(false);
    expect(parseDjangoLog(run.stderr)['test_fail (test_mod.T)']).toBe('FAILED'); // worse of forged ok and real FAIL
  });

  it('refuses an incomplete or foreign record', () => {
    expect(parseHookResults('{"id":"a","status":"PASSED"}\n')).toBeNull();
    expect(parseHookResults('{"id":"a","status":"PASSED"}\n{"end":2}\n')).toBeNull();
    expect(parseHookResults('junk\n{"end":0}\n')).toBeNull();
    expect(parseHookResults('{"id":"a","status":"PASSED"}\n{"end":1}\n')).toEqual({ a: 'PASSED' });
  });
});
