import { beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { LABEL } from '../../src/sandbox/container.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import { imageNameFor } from '../../src/tasks/image-name.js';
import type { Instance } from '../../src/tasks/instance.js';
import { verifyPatch, type VerifyContext } from '../../src/verify/run.js';
import { buildEvalSpec } from '../../src/verify/spec.js';
import { validateTasks } from '../../src/verify/validate.js';
import { SYMPY_PRE16_TASKS } from '../fixtures/realrunner/tasks.js';
import { RUNNER_TEMPLATE } from '../helpers/layouts.js';
import { realRunnerFixtures, type RealRunnerFixture } from '../helpers/realrunner.js';

/**
 * sympy laid out as releases before 1.6 laid it out (SYMPY_PRE16_LAYOUT: the runner in
 * sympy/utilities/runtests.py, no sympy.testing), graded against the real engine the way
 * real-images.test.ts grades the 1.11 layout. The image is built by the global set-up.
 */
const RUN = `sympy-pre16-test-${process.pid}`;
let docker: Docker;
let fixture: RealRunnerFixture;

const ctx = (): VerifyContext => ({
  docker,
  imageFor: (i) => imageNameFor(i.instance_id, RUNNER_TEMPLATE.system),
  limits: { memoryBytes: 1024 ** 3, cpus: 1, pids: 512 },
  labels: { [LABEL.run]: RUN },
  maxLogBytes: 512 * 1024,
});
const specOf = (i: Instance) => buildEvalSpec(i, { timeout_s: 600, pythonEnv: 'auto' });

beforeAll(async () => {
  docker = await connectEngine();
  fixture = realRunnerFixtures(undefined, SYMPY_PRE16_TASKS)[0]!;
});

describe('sympy before 1.6 (runner in sympy/utilities/runtests.py)', () => {
  it('the image has the old layout: sympy.test (what bin/test calls) comes from sympy.utilities.runtests, sympy.testing is gone', async () => {
    const image = imageNameFor(fixture.instance.instance_id, RUNNER_TEMPLATE.system);
    const probe = [
      'import importlib.util, sympy',
      "print(sympy.test.__module__, importlib.util.find_spec('sympy.testing') is None)",
    ].join('\n');
    const container = await docker.createContainer({ Image: image, Cmd: ['python3', '-c', probe], WorkingDir: '/testbed', Labels: { [LABEL.run]: RUN } });
    try {
      await container.start();
      await container.wait();
      const out = (await container.logs({ stdout: true, stderr: true })).toString('utf8');
      expect(out).toContain('sympy.utilities.runtests True');
    } finally {
      await container.remove({ force: true });
    }
  }, 120_000);

  it('validates: gold resolves, the unpatched repository fails exactly FAIL_TO_PASS', async () => {
    const [row] = await validateTasks(ctx(), [fixture.instance], specOf, 1);
    expect(row!.problem, row!.gold.reason ?? undefined).toBeNull();
    expect(row!.gold.outcome).toBe('resolved');
    expect(row!.empty.outcome).toBe('unresolved');
    expect(row!.empty.report?.FAIL_TO_PASS.failure.sort()).toEqual([...fixture.task.FAIL_TO_PASS].sort());
    expect(row!.empty.report?.PASS_TO_PASS.failure).toEqual([]);
  }, 600_000);

  it('grades the wrong prediction unresolved from results the hook collected', async () => {
    const { verdict } = await verifyPatch(ctx(), fixture.instance, specOf(fixture.instance), fixture.predictions.wrong);
    expect(verdict.outcome, verdict.reason ?? undefined).toBe('unresolved');
    // Graded on collected results (not an empty hand-over): PASS_TO_PASS passed, the new test failed.
    expect(verdict.report?.FAIL_TO_PASS.failure).toContain('test_digits_padding');
    expect(verdict.report?.PASS_TO_PASS.success.sort()).toEqual([...fixture.task.PASS_TO_PASS].sort());
  }, 600_000);
});
