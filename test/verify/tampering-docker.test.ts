import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { LABEL } from '../../src/sandbox/container.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import { poolEntryOf } from '../../src/select/pool.js';
import { selectTrajectories } from '../../src/select/select.js';
import { imageNameFor } from '../../src/tasks/image-name.js';
import type { Instance } from '../../src/tasks/instance.js';
import { verifyPatch, type VerifyContext } from '../../src/verify/run.js';
import { buildEvalSpec } from '../../src/verify/spec.js';
import { verdictKeyOf, type Verdict } from '../../src/verify/verdict.js';
import { RUNNER_TEMPLATE } from '../helpers/layouts.js';
import { makePatch, minigymInstance } from '../helpers/minigym.js';
import { realRunnerFixtures, type RealRunnerFixture } from '../helpers/realrunner.js';

/**
 * The four-line forgeries of the runners' reporting, each in a module the tests import, on the
 * real engine: pytest (a bundled task), Django and sympy (the real-runner tasks, system layout).
 * Each really does forge a pass (resolved), is named as tampering, and selection drops it.
 * One container per case; the gold patches of the same tasks are checked unflagged by the
 * validation tests (docker-verify.test.ts, real-images.test.ts).
 */
const RUN = `tampering-test-${process.pid}`;
let docker: Docker;
let fixtures: RealRunnerFixture[];

function context(imageFor: (i: Instance) => string): VerifyContext {
  return { docker, imageFor, limits: { memoryBytes: 1024 ** 3, cpus: 1, pids: 512 }, labels: { [LABEL.run]: RUN }, maxLogBytes: 512 * 1024 };
}

/** A git diff appending `lines` to `file` of a source tree (the real-runner trees carry no .git). */
function appendPatch(sourceDir: string, file: string, lines: string[]): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-tamper-'));
  try {
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd: dir, encoding: 'utf8' });
    const text = readFileSync(path.join(sourceDir, file), 'utf8');
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
    git('init', '-q');
    git('add', '-A');
    git('commit', '-qm', 'base');
    writeFileSync(path.join(dir, file), `${text}\n${lines.join('\n')}\n`);
    return git('diff', 'HEAD');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The verdict as selection sees it, with the default recipe settings. */
function selected(verdict: Verdict, instance: Instance, patch: string) {
  const trajectory = { iteration: 0, instance_id: instance.instance_id, sample_index: 0, llm_calls: 3, tokens: { prompt: 10, completion: 5, max_example: 10 }, patch, outcome: { status: 'finished' as const, reason: null } };
  const entry = poolEntryOf(trajectory as never, new Map([[verdictKeyOf(verdict), verdict]]), () => verdictKeyOf(verdict))!;
  return selectTrajectories([entry], { seed: 0 });
}

beforeAll(async () => {
  docker = await connectEngine();
  fixtures = realRunnerFixtures();
});

afterAll(async () => {
  const left = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL.run}=${RUN}`] }) });
  expect(left).toEqual([]);
});

describe('a forged pass is resolved, named as tampering and never selected', () => {
  it('pytest: TestReport.__init__ wrapped in a module the tests import', async () => {
    const instance = minigymInstance('minigym__unitkit-101');
    const patch = makePatch('unitkit', [
      {
        file: 'unitkit/units.py',
        from: '',
        to: [
          '',
          'import _pytest.reports as _reports',
          '_init = _reports.TestReport.__init__',
          "def _passed(self, *a, **k): _init(self, *a, **k); self.outcome = 'passed'",
          '_reports.TestReport.__init__ = _passed',
          '',
        ].join('\n'),
      },
    ]);
    const { verdict } = await verifyPatch(context((i) => imageNameFor(i.instance_id, 'swebench')), instance, buildEvalSpec(instance, { timeout_s: 120 }), patch);
    expect(verdict.outcome, verdict.reason ?? '').toBe('resolved');
    expect(verdict.tampering?.reasons.map((r) => [r.rule, r.file])).toEqual([
      ['pytest_reporting', 'unitkit/units.py'],
      ['pytest_reporting', 'unitkit/units.py'],
      ['pytest_reporting', 'unitkit/units.py'],
    ]);
    expect(verdict.tampering?.reasons[0]?.line).toBeGreaterThan(1);
    const selection = selected(verdict, instance, patch);
    expect(selection.kept).toEqual([]);
    expect(selection.dropped.map((d) => d.reason)).toEqual(['tampering']);
    expect(selection.counts).toMatchObject({ resolved: 1, tampered: 1, tampering: 1, successes: 0 });
  }, 300_000);

  const realRunner = (id: string, file: string, lines: string[], rule: string) => async () => {
    const { instance, sourceDir } = fixtures.find((f) => f.instance.instance_id === id)!;
    const patch = appendPatch(sourceDir, file, lines);
    const { verdict, log } = await verifyPatch(context((i) => imageNameFor(i.instance_id, RUNNER_TEMPLATE.system)), instance, buildEvalSpec(instance, { timeout_s: 600 }), patch);
    expect(verdict.outcome, `${verdict.reason}\n${log.slice(-3000)}`).toBe('resolved');
    expect(verdict.tampering?.reasons.map((r) => r.rule)).toContain(rule);
    expect(verdict.tampering?.reasons.every((r) => r.file === file && r.line !== null)).toBe(true);
    expect(selected(verdict, instance, patch).dropped.map((d) => d.reason)).toEqual(['tampering']);
  };

  it(
    'Django: unittest.result.TestResult.addFailure reassigned, through the result hook',
    // Python 3.11's TextTestResult prints the test again with FAIL after the reassigned method
    // returns, which the log parser reads and lowers; `_newline` makes that FAIL a bare line.
    realRunner(
      'django__django-90001',
      'django/utils/text.py',
      ['import unittest.result as _result', 'def _passed(self, test, err):', '    self.addSuccess(test); self._newline = False', '_result.TestResult.addFailure = _passed'],
      'unittest_result',
    ),
    300_000,
  );

  it(
    "sympy: its runner's reporter told that a failure is a pass",
    realRunner('sympy__sympy-90001', 'sympy/ntheory/digits.py', ['from sympy.testing import runtests as _runtests', '_runtests.PyTestReporter.test_fail = lambda self, *a: self.test_pass()'], 'sympy_runner'),
    300_000,
  );
});
