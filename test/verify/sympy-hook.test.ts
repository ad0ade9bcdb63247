import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { gradeTests, mergeStatuses } from '../../src/verify/grade.js';
import { HOOK_ENV, HOOK_SOURCE, parseHookResults, SYMPY_RUNNERS } from '../../src/verify/result-hook.js';
import { parseSympyLog } from '../../src/verify/sympy-log.js';

/**
 * The result hook on each place a sympy release keeps its runner (SYMPY_RUNNERS), with real Python
 * (and the machine's pytest for the pytest-run layout). The packages here are small trees of ours
 * with sympy's module names and the runner's reporter interface (entering_filename, entering_test,
 * test_pass, …: the names the hook wraps, the same from 0.7.6 to master); the real trees are graded
 * by sympy-pre16.test.ts (before 1.6) and real-images.test.ts (1.11).
 */

/** sympy's own runner: runs test_* functions of the files it is given and tells its reporter, printing `name word`. */
const REPORTER_RUNNER = [
  'import importlib.util, sys',
  '',
  'class PyTestReporter:',
  '    def entering_filename(self, filename, n):',
  "        print('%s[%d] ' % (filename, n))",
  '    def entering_test(self, f):',
  '        self.name = f.__name__',
  '    def say(self, word):',
  '        print(self.name, word)',
  "    def test_pass(self, char='.'): self.say('ok')",
  "    def test_fail(self, exc_info): self.say('F')",
  "    def test_exception(self, exc_info): self.say('E')",
  "    def test_skip(self, v=None): self.say('s')",
  "    def test_xfail(self): self.say('f')",
  "    def test_xpass(self, v): self.say('X')",
  '',
  'def test(*paths, **kwargs):',
  '    reporter = PyTestReporter()',
  '    for path in paths:',
  "        spec = importlib.util.spec_from_file_location('under_test', path)",
  '        module = importlib.util.module_from_spec(spec)',
  '        spec.loader.exec_module(module)',
  "        tests = [f for name, f in vars(module).items() if name.startswith('test_')]",
  '        reporter.entering_filename(path, len(tests))',
  '        for f in tests:',
  '            reporter.entering_test(f)',
  '            try:',
  '                f()',
  '            except AssertionError:',
  '                reporter.test_fail(sys.exc_info())',
  '            except BaseException as e:  # pytest.skip raises a BaseException',
  "                if type(e).__name__ == 'Skipped':",
  '                    reporter.test_skip()',
  '                else:',
  '                    reporter.test_exception(sys.exc_info())',
  '            else:',
  '                reporter.test_pass()',
  '    return True',
  '',
].join('\n');

/** From 1.13: sympy.test() runs pytest through this module's global `pytest`, or the old runner when asked. */
const PYTEST_RUNNER = [
  'import pytest',
  'from sympy.testing.runtests import test as test_sympy',
  '',
  'def test(*paths, use_sympy_runner=False, **kwargs):',
  '    if use_sympy_runner:',
  '        return test_sympy(*paths, **kwargs)',
  "    return pytest.main(['--verbose', '-p', 'no:cacheprovider', *paths])",
  '',
].join('\n');

/** test_ok prints a forged pass for test_bad first: the log alone would say it passed. */
const TEST_FILE = [
  'import pytest',
  '',
  'def test_ok():',
  "    print('test_bad ok')",
  '',
  'def test_bad():',
  '    assert 1 == 2',
  '',
  'def test_err():',
  "    raise ValueError('boom')",
  '',
  'def test_skip():',
  "    pytest.skip('not here')",
  '',
].join('\n');

const fileOf = (module: string) => `${module.replaceAll('.', '/')}.py`;

/** A package `sympy` whose sympy.test() is `runner.module`'s test, the other modules as that release has them. */
const made: string[] = [];
afterAll(() => made.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function layoutTree(runner: (typeof SYMPY_RUNNERS)[number]): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-sympy-layout-'));
  made.push(dir);
  const files: Record<string, string> = {
    'sympy/__init__.py': `from ${runner.module} import test\n`,
    'sympy/utilities/__init__.py': '',
    'sympy/tests/test_x.py': TEST_FILE,
  };
  if (runner.module.startsWith('sympy.testing.')) {
    files['sympy/testing/__init__.py'] = '';
    files['sympy/testing/runtests.py'] = REPORTER_RUNNER;
    // The old name as 1.6 on keeps it: a shim re-exporting the new module (imported here, so the
    // test shows its re-exported reporter is not wrapped twice).
    files['sympy/utilities/runtests.py'] = 'from sympy.testing.runtests import *\n';
    files['sympy/__init__.py'] += 'from .utilities import runtests as _old_name\n';
  }
  files[fileOf(runner.module)] = runner.collect === 'pytest' ? PYTEST_RUNNER : REPORTER_RUNNER;
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

const hookDir = mkdtempSync(path.join(tmpdir(), 'rft-sympy-hook-'));
made.push(hookDir);
writeFileSync(path.join(hookDir, 'sitecustomize.py'), HOOK_SOURCE);

/** `bin/test sympy/tests/test_x.py` as every release's bin/test does it: import sympy, call sympy.test(). */
function runTests(tree: string, useSympyRunner = false): { pipe: string; log: string } {
  const pipe = path.join(tree, 'results.jsonl');
  const call = useSympyRunner ? "sympy.test('sympy/tests/test_x.py', use_sympy_runner=True)" : "sympy.test('sympy/tests/test_x.py')";
  const run = spawnSync('python3', ['-c', `import sympy\n${call}`], {
    cwd: tree,
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: `${hookDir}:${tree}`, [HOOK_ENV]: pipe, PYTHONDONTWRITEBYTECODE: '1' },
  });
  return { pipe: readFileSync(pipe, 'utf8'), log: `${run.stdout}${run.stderr}` };
}

function expectGraded(pipe: string, log: string, errorStatus: string): void {
  // One line per test and the end line: nothing recorded twice.
  expect(pipe.trim().split('\n')).toHaveLength(5);
  const hooked = parseHookResults(pipe);
  expect(hooked).toEqual({ test_ok: 'PASSED', test_bad: 'FAILED', test_err: errorStatus, test_skip: 'SKIPPED' });
  const statuses = mergeStatuses(hooked, parseSympyLog(log));
  expect(gradeTests({ failToPass: ['test_bad'], passToPass: ['test_ok'], statuses }).resolved).toBe(false);
  expect(gradeTests({ failToPass: ['test_ok'], passToPass: ['test_skip'], statuses }).resolved).toBe(true);
}

describe('the result hook on every sympy runner layout (real Python)', () => {
  it('lists the three places upstream keeps the runner', () => {
    expect(SYMPY_RUNNERS.map((r) => r.module)).toEqual(['sympy.utilities.runtests', 'sympy.testing.runtests', 'sympy.testing.runtests_pytest']);
  });

  for (const runner of SYMPY_RUNNERS) {
    it(`collects the results of ${runner.module} (sympy ${runner.releases}); a forged line changes nothing`, () => {
      const { pipe, log } = runTests(layoutTree(runner));
      // sympy's runner reports an exception as E (ERROR); pytest counts it a failure.
      expectGraded(pipe, log, runner.collect === 'pytest' ? 'FAILED' : 'ERROR');
      if (runner.collect === 'pytest') expect(log).toMatch(/test_x\.py::test_bad FAILED/);
      else expect(log).toContain('test_bad ok');
    });
  }

  it('collects the old runner that 1.13 on still runs when asked (use_sympy_runner)', () => {
    const { pipe, log } = runTests(layoutTree(SYMPY_RUNNERS.find((r) => r.collect === 'pytest')!), true);
    expectGraded(pipe, log, 'ERROR');
  });
});
