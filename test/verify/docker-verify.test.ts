import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { LABEL } from '../../src/sandbox/container.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import { imageNameFor } from '../../src/tasks/image-name.js';
import type { Instance } from '../../src/tasks/instance.js';
import { verifyPatch, type VerifyContext } from '../../src/verify/run.js';
import { buildEvalSpec } from '../../src/verify/spec.js';
import { validateTasks } from '../../src/verify/validate.js';
import { Verifier } from '../../src/verify/verifier.js';
import { makePatch, minigymInstance, minigymInstances } from '../helpers/minigym.js';

const RUN = `verify-test-${process.pid}`;
const TASK = 'minigym__unitkit-101';
const FIX = { file: 'unitkit/units.py', from: 'return value / self.factor - self.offset', to: 'return (value - self.offset) / self.factor' };

let docker: Docker;
let ctx: VerifyContext;
let instance: Instance;

async function runningContainers(): Promise<number> {
  const found = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL.run}=${RUN}`] }) });
  return found.length;
}

function verify(patch: string, timeout_s = 60) {
  return verifyPatch(ctx, instance, buildEvalSpec(instance, { timeout_s }), patch);
}

beforeAll(async () => {
  docker = await connectEngine();
  ctx = {
    docker,
    imageFor: (i) => imageNameFor(i.instance_id, 'swebench'),
    limits: { memoryBytes: 512 * 1024 ** 2, cpus: 1, pids: 256 },
    labels: { [LABEL.run]: RUN },
    maxLogBytes: 256 * 1024,
  };
  instance = minigymInstance(TASK);
});

afterAll(async () => {
  expect(await runningContainers()).toBe(0);
});

describe('verification on the real engine', () => {
  it('every bundled gold patch resolves its task and the unpatched repository does not', async () => {
    const instances = minigymInstances();
    expect(instances.length).toBeGreaterThanOrEqual(8);
    const rows = await validateTasks(ctx, instances, (i) => buildEvalSpec(i, { timeout_s: 120 }), 2);
    for (const row of rows) {
      expect({ id: row.instance_id, gold: row.gold.outcome, empty: row.empty.outcome }).toEqual({ id: row.instance_id, gold: 'resolved', empty: 'unresolved' });
      expect(row.gold.report?.FAIL_TO_PASS.failure).toEqual([]);
      // Ordinary gold patches are never taken for tampering (src/verify/tampering.ts), nor is the unpatched run.
      expect([row.gold.tampering, row.empty.tampering]).toEqual([undefined, undefined]);
      expect(row.empty.report?.FAIL_TO_PASS.success).toEqual([]);
      expect(row.empty.report?.PASS_TO_PASS.failure).toEqual([]);
    }
  });

  it('an empty patch is empty_patch and runs nothing', async () => {
    const { verdict } = await verify('  \n');
    expect(verdict).toMatchObject({ outcome: 'empty_patch', apply_method: null, report: null });
  });

  it('a wrong patch is unresolved, with the failing FAIL_TO_PASS tests named', async () => {
    const patch = makePatch('unitkit', [{ ...FIX, to: 'return value / self.factor + self.offset' }]);
    const { verdict } = await verify(patch);
    expect(verdict.outcome).toBe('unresolved');
    expect(verdict.apply_method).toBe('git_apply');
    expect(verdict.report?.FAIL_TO_PASS.failure.length).toBeGreaterThan(0);
  });

  it('a patch that fixes the bug but breaks a PASS_TO_PASS test is unresolved', async () => {
    const patch = makePatch('unitkit', [FIX, { file: 'unitkit/temperature.py', from: 'raise UnknownUnitError(name) from None', to: 'return name' }]);
    const { verdict } = await verify(patch);
    expect(verdict.outcome).toBe('unresolved');
    expect(verdict.report?.FAIL_TO_PASS.failure).toEqual([]);
    expect(verdict.report?.PASS_TO_PASS.failure).toEqual(['tests/test_temperature.py::test_unknown_scale']);
  });

  it('a malformed patch is apply_failed after all three methods', async () => {
    const { verdict } = await verify('diff --git a/unitkit/units.py b/unitkit/units.py\n--- a/unitkit/units.py\n+++ b/unitkit/units.py\n@@ -1,3 +1,3 @@\n-no such line\n+x\n');
    expect(verdict.outcome).toBe('apply_failed');
    expect(verdict.reason).toMatch(/no method applied/);
  });

  it('a patch touching .git is refused', async () => {
    const { verdict } = await verify('diff --git a/.git/config b/.git/config\n--- a/.git/config\n+++ b/.git/config\n@@ -1 +1 @@\n-a\n+b\n');
    expect(verdict).toMatchObject({ outcome: 'apply_failed', reason: expect.stringContaining('.git') });
  });

  it('prose before the diff and CRLF line endings still apply', async () => {
    const patch = `Here is my fix for the issue:\r\n\r\n${makePatch('unitkit', [FIX]).replace(/\n/g, '\r\n')}`;
    const { verdict } = await verify(patch);
    expect(verdict.outcome).toBe('resolved');
  });

  it('a patch whose context drifted applies through the patch --fuzz fallback', async () => {
    const exact = makePatch('unitkit', [FIX]);
    const drifted = exact.replace('     def is_compatible(self, other):', '     def is_compatible(self, other, strict=False):');
    expect(drifted).not.toBe(exact);
    const { verdict } = await verify(drifted);
    expect(verdict).toMatchObject({ outcome: 'resolved', apply_method: 'patch_fuzz' });
  });

  it('a patch that loops forever times out and its container is gone', async () => {
    const patch = makePatch('unitkit', [{ ...FIX, to: 'while True:\n            pass' }]);
    const { verdict } = await verify(patch, 5);
    expect(verdict.outcome).toBe('timeout');
    expect(verdict.reason).toMatch(/ran past 5 s/);
    expect(await runningContainers()).toBe(0);
  });

  it('code that tries the network fails inside the sandbox', async () => {
    const patch = makePatch('unitkit', [
      { ...FIX, to: 'import socket\n        socket.create_connection(("1.1.1.1", 80), timeout=3)\n        return (value - self.offset) / self.factor' },
    ]);
    const { verdict, log } = await verify(patch);
    expect(verdict.outcome).toBe('unresolved');
    expect(log).toMatch(/Network is unreachable|OSError/);
  });

  it('a patch that floods stdout is capped and still graded from the report', async () => {
    const patch = makePatch('unitkit', [{ ...FIX, to: 'print("flood " * 200000)\n        return (value - self.offset) / self.factor' }]);
    const { verdict, log } = await verify(patch);
    expect(verdict.log_truncated).toBe(true);
    expect(log.length).toBeLessThan(300 * 1024);
    expect(verdict.outcome).toBe('resolved');
  });

  it('printing a forged pytest summary for the FAIL_TO_PASS ids does not resolve', async () => {
    const forged = [
      '=========================== short test summary info ============================',
      ...instance.FAIL_TO_PASS.map((id) => `PASSED ${id}`),
      ...instance.PASS_TO_PASS.map((id) => `PASSED ${id}`),
      '============================== 15 passed in 0.05s ==============================',
    ].join('\\n');
    // No fix; an exit hook prints after pytest's own summary, where a naive parser would read it last.
    const patch = makePatch('unitkit', [{ file: 'unitkit/units.py', from: '', to: `\nimport atexit\natexit.register(lambda: print("${forged}"))\n` }]);
    const { verdict, log } = await verify(patch);
    expect(log).toContain(`PASSED ${instance.FAIL_TO_PASS[0]}`);
    expect(verdict.outcome).toBe('unresolved');
    expect(verdict.report?.FAIL_TO_PASS.failure.length).toBe(instance.FAIL_TO_PASS.length);
  });

  it('a conftest.py that reports failures as passes does not resolve', async () => {
    const conftest = [
      'import pytest',
      '',
      '@pytest.hookimpl(hookwrapper=True)',
      'def pytest_runtest_makereport(item, call):',
      '    outcome = yield',
      '    report = outcome.get_result()',
      '    report.outcome = "passed"',
      '',
    ].join('\n');
    for (const file of ['conftest.py', 'tests/conftest.py', 'unitkit/conftest.py']) {
      const patch = makePatch('unitkit', [{ file, from: '', to: conftest }]);
      const { verdict } = await verify(patch);
      expect({ file, outcome: verdict.outcome }).toEqual({ file, outcome: 'unresolved' });
    }
  });

  it('editing the tests so that they pass does not resolve', async () => {
    const patch = makePatch('unitkit', [
      { file: 'tests/test_temperature.py', from: 'def test_unknown_scale():', to: 'def test_convert_to_fahrenheit(*a, **k):\n    pass\n\n\ndef test_unknown_scale():' },
      { file: 'pytest.ini', from: '[pytest]', to: '[pytest]\naddopts = -p no:junitxml' },
    ]);
    const { verdict } = await verify(patch);
    expect(verdict.outcome).toBe('unresolved');
  });

  it('the verifier runs one container per distinct patch', async () => {
    const verifier = new Verifier(ctx, { concurrency: 2, specFor: (i) => buildEvalSpec(i, { timeout_s: 60 }) });
    const fix = makePatch('unitkit', [FIX]);
    const verdicts = await Promise.all([
      verifier.verify(instance, fix),
      verifier.verify(instance, fix.replace(/\n/g, '\r\n')),
      verifier.verify(instance, `Prose first.\n${fix}`),
      verifier.verify(instance, ''),
    ]);
    expect(verdicts.map((v) => v.outcome)).toEqual(['resolved', 'resolved', 'resolved', 'empty_patch']);
    expect(verifier.stats).toEqual({ requests: 4, cacheHits: 2, containerRuns: 1 });
    await verifier.verify(instance, fix);
    expect(verifier.stats.containerRuns).toBe(1);
  });
});
