import { z } from 'zod';
import { withUnittestAliases } from './django-log.js';
import { recordStatus, TestStatusSchema, type TestStatusMap } from './pytest-log.js';

/**
 * Results of runners that have no junit report (Django's unittest runner, sympy's bin/test),
 * collected inside the test process and handed to the harness through a channel it owns — as
 * pytest's junit report is (see verifyPatch): a named pipe at a path chosen per run.
 *
 * The harness puts HOOK_SOURCE as `sitecustomize.py` in a directory of its own outside the
 * repository and prepends that directory to PYTHONPATH, so Python imports it at start-up. With
 * RFT_RESULTS_PIPE set (it is removed from the environment at once, so the processes the tests
 * start do not report), it records:
 * - unittest: every result the first TestResult object receives (the runner's; a suite a test
 *   runs inside itself reports to a result object of its own and is ignored), under `str(test)`
 *   and, for a test with a docstring, the docstring's first line — the two ids Django's verbose
 *   output shows;
 * - sympy: every result sympy's runner reports, under the test function's name, wherever the
 *   release keeps the runner (SYMPY_RUNNERS): its reporter's calls, or pytest's reports when
 *   bin/test runs pytest (1.13 on).
 * At exit it writes one JSON line per result and a last line `{"end": <count>}` into the pipe. A
 * test that prints `test_x (m.C) ... ok` changes nothing here; the printed log is only read to
 * lower these results (mergeStatuses). What stays open: code in the test process can still reach
 * this module or the pipe (the same as for pytest's in-process junit writer).
 */
export const HOOK_ENV = 'RFT_RESULTS_PIPE';

/**
 * The module each sympy release runs its tests from: `bin/test` calls `sympy.test()`, which lives
 * there; the hook wraps each of these when it is imported. Read from upstream sympy's git tags
 * (sympy-0.7.6, 1.0, 1.5, 1.6, 1.12, 1.13.0, 1.14.0 and master: where runtests.py is, what
 * sympy/__init__.py takes `test` from, what bin/test calls, and that PyTestReporter keeps the method
 * names the hook wraps). `reporter`: sympy's own runner, whose PyTestReporter the hook wraps;
 * `pytest`: from 1.13 `sympy.test()` hands the run to `pytest.main` (unless given
 * use_sympy_runner, which goes back to sympy.testing.runtests), and the hook adds a plugin to that
 * call. Checked running: before 1.6 on Debian's 1.11.1 tree relaid that way
 * (test/verify/sympy-pre16.test.ts), 1.6 on with that tree as it is (real-images.test.ts), 1.13 on
 * with sympy 1.14.0 from PyPI by hand (results collected through pytest and through
 * use_sympy_runner); every layout with small trees of ours in test/verify/sympy-hook.test.ts.
 */
export const SYMPY_RUNNERS = [
  { releases: '0.7 to 1.5', module: 'sympy.utilities.runtests', collect: 'reporter' },
  // From 1.6 sympy.utilities.runtests is a shim that re-exports this module's names.
  { releases: '1.6 on', module: 'sympy.testing.runtests', collect: 'reporter' },
  { releases: '1.13 on', module: 'sympy.testing.runtests_pytest', collect: 'pytest' },
] as const;

export const HOOK_SOURCE = String.raw`# rft: test results for the harness (src/verify/result-hook.ts). Not part of the repository.
import atexit as _atexit
import json as _json
import os as _os
import sys as _sys

_path = _os.environ.pop('RFT_RESULTS_PIPE', None)


def _install(path):
    results = []

    def note(test_id, status):
        results.append((str(test_id), status))

    def flush():
        try:
            with open(path, 'w', encoding='utf-8', errors='replace') as out:
                for test_id, status in results:
                    out.write(_json.dumps({'id': test_id, 'status': status}) + '\n')
                out.write(_json.dumps({'end': len(results)}) + '\n')
        except OSError:
            pass

    _atexit.register(flush)

    import unittest.result as ur
    owner = []

    def ids(test):
        found = [str(test)]
        try:
            doc = test.shortDescription()
        except Exception:
            doc = None
        if doc:
            found.append(doc)
        return found

    def mine(result):
        if not owner:
            owner.append(result)
        return owner[0] is result

    def wrap(method, status):
        original = getattr(ur.TestResult, method)

        def wrapper(self, test, *args, **kwargs):
            if mine(self):
                for test_id in ids(test):
                    note(test_id, status)
            return original(self, test, *args, **kwargs)

        setattr(ur.TestResult, method, wrapper)

    for method, status in (('addSuccess', 'PASSED'), ('addFailure', 'FAILED'), ('addError', 'ERROR'),
                           ('addSkip', 'SKIPPED'), ('addExpectedFailure', 'XFAIL'),
                           ('addUnexpectedSuccess', 'XPASS')):
        wrap(method, status)
    original_subtest = ur.TestResult.addSubTest

    def add_subtest(self, test, subtest, err):
        if err is not None and mine(self):
            status = 'FAILED' if issubclass(err[0], test.failureException) else 'ERROR'
            for test_id in ids(test):
                note(test_id, status)
        return original_subtest(self, test, subtest, err)

    ur.TestResult.addSubTest = add_subtest

    def patch_sympy(module):
        reporter = getattr(module, 'PyTestReporter', None)
        # From 1.6 the old module name re-exports the new one's class: wrap it once.
        if reporter is None or reporter.__dict__.get('_rft_wrapped'):
            return
        reporter._rft_wrapped = True

        def wrap_reporter(method, status):
            original = getattr(reporter, method)

            def wrapper(self, *args, **kwargs):
                test = getattr(self, '_rft_test', None)
                if test is not None:
                    note(test, status)
                return original(self, *args, **kwargs)

            setattr(reporter, method, wrapper)

        for method, status in (('test_pass', 'PASSED'), ('test_fail', 'FAILED'), ('test_exception', 'ERROR'),
                               ('test_skip', 'SKIPPED'), ('test_xfail', 'XFAIL'), ('test_xpass', 'XPASS')):
            wrap_reporter(method, status)
        entering_test = reporter.entering_test
        entering_filename = reporter.entering_filename

        def on_test(self, f, *args, **kwargs):
            self._rft_test = getattr(f, '__name__', None)
            return entering_test(self, f, *args, **kwargs)

        def on_file(self, *args, **kwargs):
            # A whole file skipped is reported without a test: it must not land on the last one.
            self._rft_test = None
            return entering_filename(self, *args, **kwargs)

        reporter.entering_test = on_test
        reporter.entering_filename = on_file

    class PytestResults:
        """A pytest plugin: each test's outcome under its function name (the ids sympy's tasks list)."""

        def pytest_runtest_logreport(self, report):
            xfail = hasattr(report, 'wasxfail')
            if report.when == 'call':
                if report.passed:
                    status = 'XPASS' if xfail else 'PASSED'
                elif report.failed:
                    status = 'FAILED'
                else:
                    status = 'XFAIL' if xfail else 'SKIPPED'
            elif report.failed:
                status = 'ERROR'
            elif report.skipped:
                status = 'XFAIL' if xfail else 'SKIPPED'
            else:
                return
            note(report.nodeid.split('::')[-1], status)

    def patch_sympy_pytest(module):
        # bin/test reaches pytest through this module's global name pytest: give the module a
        # stand-in whose main() adds the plugin, and leave the real pytest module as it is.
        real = getattr(module, 'pytest', None)
        if real is None or not hasattr(real, 'main'):
            return

        class Pytest:
            def __getattr__(self, name):
                return getattr(real, name)

            @staticmethod
            def main(args=None, plugins=None, **kwargs):
                return real.main(args, plugins=[*(plugins or ()), PytestResults()], **kwargs)

        module.pytest = Pytest()

    # Where each sympy release keeps its runner (SYMPY_RUNNERS in result-hook.ts).
    watched = {
${SYMPY_RUNNERS.map((r) => `        '${r.module}': ${r.collect === 'pytest' ? 'patch_sympy_pytest' : 'patch_sympy'},`).join('\n')}
    }

    class SympyRunnerFinder:
        def find_spec(self, name, path=None, target=None):
            patch = watched.pop(name, None)
            if patch is None:
                return None
            import importlib.util
            _sys.meta_path.remove(self)
            try:
                spec = importlib.util.find_spec(name)
            finally:
                if watched:
                    _sys.meta_path.insert(0, self)
            if spec is None or spec.loader is None:
                return spec
            exec_module = spec.loader.exec_module

            def exec_and_patch(module):
                exec_module(module)
                patch(module)

            spec.loader.exec_module = exec_and_patch
            return spec

    _sys.meta_path.insert(0, SympyRunnerFinder())


if _path:
    _install(_path)
`;

const HookLineSchema = z.union([z.object({ id: z.string(), status: TestStatusSchema }).strict(), z.object({ end: z.number().int().nonnegative() }).strict()]);

/**
 * Test id → status from what the hook wrote into the pipe; null when it is not a complete,
 * well-formed record (no end line, a count that does not match, a line that is not the hook's):
 * the test process did not finish normally, or something else wrote the pipe. Unittest ids get
 * their Python-version aliases (withUnittestAliases).
 */
export function parseHookResults(text: string): TestStatusMap | null {
  const lines = text.split('\n').filter((line) => line !== '');
  const statuses: TestStatusMap = {};
  for (const [index, line] of lines.entries()) {
    let parsed: z.infer<typeof HookLineSchema>;
    try {
      parsed = HookLineSchema.parse(JSON.parse(line));
    } catch {
      return null;
    }
    if ('end' in parsed) return index === lines.length - 1 && parsed.end === lines.length - 1 ? withUnittestAliases(statuses) : null;
    recordStatus(statuses, parsed.id, parsed.status);
  }
  return null;
}
