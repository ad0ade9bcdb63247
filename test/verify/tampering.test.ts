import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readVerdictsStreaming, type VerdictOutcome } from '../../src/select/scan.js';
import { describe, expect, it } from 'vitest';
import { mergeStatuses } from '../../src/verify/grade.js';
import { parseJunitXml } from '../../src/verify/junit.js';
import { addedLines } from '../../src/verify/patch-lines.js';
import { parsePytestSummary, type TestStatusMap } from '../../src/verify/pytest-log.js';
import { HOOK_ENV, HOOK_SOURCE } from '../../src/verify/result-hook.js';
import { runnerCounts } from '../../src/verify/runner-counts.js';
import { buildEvalSpec } from '../../src/verify/spec.js';
import { countFindings, detectTampering, patchFindings, TAMPER_RULES } from '../../src/verify/tampering.js';
import { VerdictSchema } from '../../src/verify/verdict.js';
import { makePatch, minigymInstances } from '../helpers/minigym.js';
import { realRunnerFixtures } from '../helpers/realrunner.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const SPEC = { test_files: ['tests/test_units.py'], protected_paths: { files: ['tests/test_units.py'], dirs: ['tests'], names: [] } };

/** A patch adding `lines` to the end of a bundled repository's file. */
const adding = (file: string, lines: string[]) => makePatch('unitkit', [{ file, from: '', to: `\n${lines.join('\n')}\n` }]);
const rulesOf = (patch: string, repo = 'minigym/unitkit') => patchFindings(patch, repo, SPEC).map((r) => r.rule);

describe('addedLines', () => {
  it('gives each added line with its file and line number in the new file', () => {
    const patch = ['diff --git a/a.py b/a.py', '--- a/a.py', '+++ b/a.py', '@@ -3,2 +3,3 @@', ' x = 1', '+++y = 2', ' z = 3', ''].join('\n');
    expect(addedLines(patch)).toEqual([{ file: 'a.py', line: 4, text: '++y = 2' }]);
  });
});

describe('the static rules', () => {
  it.each([
    ['pytest_reporting', ['import _pytest.reports as r', 'r.TestReport.__init__ = None']],
    ['pytest_hook', ['def pytest_runtest_makereport(item, call):', '    pass']],
    ['unittest_result', ['import unittest.result', 'unittest.result.TestResult.addFailure = None']],
    ['sympy_runner', ['from sympy.testing import runtests', 'runtests.PyTestReporter.test_fail = None']],
    ['result_hook', [`import os; os.environ.get('${HOOK_ENV}')`]],
    ['import_rewiring', ["import sys; sys.modules['_pytest.junitxml'] = None"]],
    ['gc_walk', ['import gc', 'objs = gc.get_objects()']],
    ['atexit_results', ['import atexit', "atexit.register(lambda: open('/tmp/report.xml', 'w').write('x'))"]],
  ])('%s names the file and line of what it matched', (rule, lines) => {
    const found = patchFindings(adding('unitkit/units.py', lines), 'minigym/unitkit', SPEC).filter((r) => r.rule === rule);
    expect(found.length).toBeGreaterThan(0);
    expect(found.every((r) => r.file === 'unitkit/units.py' && r.line !== null && r.line > 1)).toBe(true);
  });

  it('start-up files and conftest.py are named wherever they are, test directories included', () => {
    expect(rulesOf(makePatch('unitkit', [{ file: 'tests/conftest.py', from: '', to: 'x = 1\n' }]))).toEqual(['conftest']);
    expect(rulesOf(makePatch('unitkit', [{ file: 'unitkit/sitecustomize.py', from: '', to: 'x = 1\n' }]))).toEqual(['startup_file']);
    expect(rulesOf(makePatch('unitkit', [{ file: 'hack.pth', from: '', to: 'import os\n' }]))).toEqual(['startup_file']);
  });

  it('lines in the test files and test directories the eval script puts back are not read', () => {
    expect(rulesOf(adding('tests/test_temperature.py', ['import _pytest.reports']))).toEqual([]);
    expect(rulesOf(adding('unitkit/units.py', ['import _pytest.reports']))).toEqual(['pytest_reporting']);
  });

  it("a repository's own runner is its subject there: pytest's _pytest, Django's test package", () => {
    const patch = ['--- a/src/_pytest/reports.py', '+++ b/src/_pytest/reports.py', '@@ -1,1 +1,2 @@', ' x = 1', '+class TestReport: pass', ''].join('\n');
    expect(patchFindings(patch, 'pytest-dev/pytest', SPEC)).toEqual([]);
    expect(patchFindings(patch, 'astropy/astropy', SPEC).map((r) => r.rule)).toEqual(['pytest_reporting']);
  });

  it('atexit alone (a cleanup hook) is not tampering', () => {
    expect(rulesOf(adding('unitkit/units.py', ['import atexit', 'atexit.register(print)']))).toEqual([]);
  });

  it("the result hook's names the rule looks for are the hook's", () => {
    const rule = TAMPER_RULES.find((r) => r.id === 'result_hook')!.line!;
    for (const name of [HOOK_ENV, '_rft_test', '_rft_wrapped', 'SympyRunnerFinder', 'PytestResults', 'patch_sympy_pytest']) {
      expect(HOOK_SOURCE).toContain(name);
      expect(rule.test(name)).toBe(true);
    }
  });

  it('no gold patch of the bundled and real-runner tasks is flagged (twelve patches)', () => {
    const instances = [...minigymInstances(), ...realRunnerFixtures().map((f) => f.instance)];
    expect(instances.length).toBeGreaterThanOrEqual(10);
    for (const instance of instances) {
      expect({ id: instance.instance_id, found: patchFindings(instance.patch, instance.repo, buildEvalSpec(instance)) }).toEqual({ id: instance.instance_id, found: [] });
    }
  });
});

describe('the runner counts', () => {
  it("reads pytest's closing line: failed tests each, errors at least one", () => {
    expect(runnerCounts('pytest', fixture('main.log'))?.failing).toBe(6);
    expect(runnerCounts('pytest', fixture('collect-error.log'))?.failing).toBe(1);
    expect(runnerCounts('pytest', '===== 3 passed in 0.01s =====\n')).toEqual({ line: '===== 3 passed in 0.01s =====', failing: 0 });
    expect(runnerCounts('pytest', 'no closing line\n')).toBeNull();
  });

  it("reads unittest's verdict line under 'Ran N tests'", () => {
    expect(runnerCounts('django', 'Ran 18 tests in 0.094s\n\nFAILED (failures=2, errors=1)\n')?.failing).toBe(1);
    expect(runnerCounts('django', 'Ran 18 tests in 0.094s\n\nOK (skipped=1)\n')?.failing).toBe(0);
  });

  it("reads sympy's 'tests finished' line, wrapped or not", () => {
    expect(runnerCounts('sympy', '==== tests finished: 3 passed, 1 failed,\n 1 expected to fail, in 0.10 seconds ====\n')?.failing).toBe(1);
    expect(runnerCounts('sympy', '== tests finished: 3 passed, 1 expected to fail, but passed, in 0.10 seconds ==\n')?.failing).toBe(0);
  });

  it('agree with the collected results of a real pytest run; a result turned to a pass disagrees', () => {
    const junit = parseJunitXml(fixture('main.xml'), ['tests/test_basic.py', 'tests/test_marks.py', 'tests/test_fixtures.py', 'tests/test_forge.py', 'tests/v1.2/test_dotted.py']);
    const merged = mergeStatuses(junit, parsePytestSummary(fixture('main.log')));
    expect(countFindings('pytest', fixture('main.log'), merged)).toEqual([]);
    const forged: TestStatusMap = Object.fromEntries(Object.entries(merged).map(([id, s]) => [id, s === 'FAILED' ? 'PASSED' : s]));
    const [finding] = countFindings('pytest', fixture('main.log'), forged);
    expect(finding).toMatchObject({ rule: 'count_mismatch', file: null, line: null });
    expect(finding?.detail).toMatch(/6 failed.*at least 6 failing.*hold 2/);
  });
});

describe('the verdict record', () => {
  it('writes tampering before reason, where a ledger scan reading only the head finds it', () => {
    const tampering = detectTampering({ patch: adding('unitkit/units.py', ['import _pytest.reports']), repo: 'minigym/unitkit', spec: { ...SPEC, parser: 'pytest' }, log: '', tests: {} });
    const verdict = VerdictSchema.parse({
      instance_id: 'i',
      patch_hash: 'a'.repeat(64),
      spec_hash: 'b'.repeat(64),
      reason: null,
      outcome: 'resolved',
      tampering,
      apply_method: 'git_apply',
      test_exit_code: 0,
      tests: {},
      report: { FAIL_TO_PASS: { success: ['t'], failure: [] }, PASS_TO_PASS: { success: [], failure: [] } },
      log_truncated: false,
      duration_ms: 1,
      created_at: new Date(0).toISOString(),
    });
    const line = JSON.stringify(verdict);
    expect(line.indexOf('"tampering"')).toBeLessThan(line.indexOf(',"reason":'));
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'rft-tamper-')), 'verdicts.jsonl');
    writeFileSync(file, `${line}\n`);
    const read: VerdictOutcome[] = [];
    readVerdictsStreaming(file, (v) => read.push(v));
    expect(read[0]?.tampering).toEqual(tampering);
    expect(detectTampering({ patch: '', repo: 'r', spec: { ...SPEC, parser: 'pytest' }, log: '', tests: {} })).toBeNull();
  });
});
