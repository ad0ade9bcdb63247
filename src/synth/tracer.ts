import { z } from 'zod';
import { HOOK_SOURCE } from '../verify/result-hook.js';

/**
 * The tracer task synthesis injects into one run of a repository's tests (design §13): which of
 * the repository's functions each test executes. Installed the way the result hook is
 * (result-hook.ts): a `sitecustomize.py` in a directory of the harness's own, outside the
 * repository, put first on PYTHONPATH; for pytest also a plugin module named in PYTEST_PLUGINS.
 * The hook's own source follows the tracer in the same file, so the runners that report through
 * the hook (Django, sympy) still do.
 *
 * Which test is running:
 * - pytest: the plugin's runtest-protocol wrapper (setup, call and teardown of one item, by node id);
 * - unittest (Django): TestResult.startTest / stopTest, under `str(test)` — one of the ids the hook
 *   records for it;
 * - neither (sympy's runner): a module-level `test_*` function of a test file, entered from
 *   outside a test file, is a test until it returns (that is how sympy's runner calls them).
 * What is recorded: every function (code object) whose file is under the repository root and not
 * a test file, called while a test runs, as (file, __qualname__ on 3.11+, first line, last line).
 * sys.settrace's global function sees only calls, so the cost is one dict look-up per call.
 * At exit it writes one JSON document to RFT_TRACE_OUT (removed from the environment at once).
 */
export const TRACE_ENV = 'RFT_TRACE_OUT';
export const TRACE_PLUGIN = 'rft_trace_plugin';

const TRACER_CORE = String.raw`# rft: test -> function tracer for task synthesis (src/synth/tracer.ts). Not part of the repository.
import atexit as _rt_atexit
import json as _rt_json
import os as _rt_os
import sys as _rt_sys
import threading as _rt_threading

_rt_out = _rt_os.environ.pop('${TRACE_ENV}', None)
_rt_root = _rt_os.getcwd().rstrip('/') + '/'
_rt_state = {'test': None, 'mode': None, 'frame': None}
_rt_tests = {}
_rt_functions = []
_rt_codes = {}
_rt_skip_names = {'<module>', '<lambda>', '<listcomp>', '<genexpr>', '<dictcomp>', '<setcomp>'}
_rt_test_dirs = {'test', 'tests', 'testing', 'unittests', 'unittest'}


def _rt_rel(filename):
    if not filename or not filename.startswith(_rt_root):
        return None
    return filename[len(_rt_root):]


def _rt_is_test_file(rel):
    parts = rel.split('/')
    name = parts[-1]
    return (any(p in _rt_test_dirs for p in parts[:-1]) or name.startswith('test_') or name.endswith('_test.py')
            or name == 'conftest.py' or name.startswith('test.'))


def _rt_classify(code):
    rel = _rt_rel(code.co_filename)
    if rel is None or not rel.endswith('.py') or code.co_name in _rt_skip_names or _rt_is_test_file(rel):
        return -1
    last = code.co_firstlineno
    for _start, _end, line in code.co_lines():
        if line is not None and line > last:
            last = line
    _rt_functions.append([rel, getattr(code, 'co_qualname', code.co_name), code.co_firstlineno, last])
    return len(_rt_functions) - 1


def _rt_begin(test_id, file):
    entry = _rt_tests.get(test_id)
    if entry is None:
        entry = _rt_tests[test_id] = {'file': file, 'functions': set()}
    _rt_state['test'] = entry


def _rt_end():
    _rt_state['test'] = None
    _rt_state['frame'] = None


def _rt_local(frame, event, arg):
    if event == 'return' and frame is _rt_state['frame']:
        _rt_end()
    return _rt_local


def _rt_trace(frame, event, arg):
    code = frame.f_code
    index = _rt_codes.get(code)
    if index is None:
        index = _rt_codes[code] = _rt_classify(code)
    entry = _rt_state['test']
    if entry is not None:
        if index >= 0:
            entry['functions'].add(index)
        return None
    if _rt_state['mode'] is None and index < 0 and code.co_name.startswith('test_') \
            and getattr(code, 'co_qualname', code.co_name) == code.co_name:
        rel = _rt_rel(code.co_filename)
        caller = frame.f_back
        # Called from another file (the runner), not a test calling a test helper of its own file.
        if rel is not None and _rt_is_test_file(rel) and (caller is None or caller.f_code.co_filename != code.co_filename):
            _rt_begin(code.co_name, rel)
            _rt_state['frame'] = frame
            return _rt_local
    return None


def _rt_flush():
    _rt_sys.settrace(None)
    try:
        with open(_rt_out, 'w', encoding='utf-8') as out:
            tests = {k: {'file': v['file'], 'functions': sorted(v['functions'])} for k, v in _rt_tests.items()}
            _rt_json.dump({'functions': _rt_functions, 'tests': tests}, out)
    except OSError:
        pass


def _rt_unittest():
    import unittest.result as ur
    start, stop = ur.TestResult.startTest, ur.TestResult.stopTest

    def start_test(self, test):
        _rt_state['mode'] = 'unittest'
        module = _rt_sys.modules.get(type(test).__module__)
        rel = _rt_rel(getattr(module, '__file__', None) or '') or type(test).__module__
        _rt_begin(str(test), rel)
        return start(self, test)

    def stop_test(self, test):
        _rt_end()
        return stop(self, test)

    ur.TestResult.startTest = start_test
    ur.TestResult.stopTest = stop_test


if _rt_out:
    _rt_atexit.register(_rt_flush)
    _rt_unittest()
    _rt_sys.settrace(_rt_trace)
    _rt_threading.settrace(_rt_trace)
`;

/** The pytest plugin: the node id of the item whose setup, call and teardown are running. */
export const TRACE_PLUGIN_SOURCE = String.raw`# rft: pytest side of the synthesis tracer (src/synth/tracer.ts). Not part of the repository.
import pytest
import sitecustomize as _core


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _core._rt_state['mode'] = 'pytest'
    _core._rt_begin(item.nodeid, item.nodeid.split('::')[0])
    try:
        yield
    finally:
        _core._rt_end()
`;

/** The sitecustomize.py of a traced run: the tracer, then the result hook (for the runners that report through it). */
export const TRACER_SOURCE = `${TRACER_CORE}\n\n${HOOK_SOURCE}`;

/** What the tracer writes: the functions it saw (indexed) and, per test id, its file and the functions it executed. */
export const TraceOutputSchema = z.object({
  functions: z.array(z.tuple([z.string(), z.string(), z.number().int(), z.number().int()])),
  tests: z.record(z.string(), z.object({ file: z.string(), functions: z.array(z.number().int().nonnegative()) })),
});
export type TraceOutput = z.infer<typeof TraceOutputSchema>;
