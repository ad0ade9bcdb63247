import { beforeAll, describe, expect, it } from 'vitest';
import type Docker from 'dockerode';
import { LABEL } from '../../src/sandbox/container.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import { imageNameFor } from '../../src/tasks/image-name.js';
import type { Instance } from '../../src/tasks/instance.js';
import { gradeTests } from '../../src/verify/grade.js';
import { verifyPatch, type VerifyContext } from '../../src/verify/run.js';
import { RUNNERS } from '../../src/verify/runners.js';
import { buildEvalSpec, type PythonEnvMode } from '../../src/verify/spec.js';
import { validateTasks } from '../../src/verify/validate.js';
import { isFinal, isModelFailure } from '../../src/verify/verdict.js';
import { BUNDLED_TEMPLATE, LAYOUTS, RUNNER_TEMPLATE, type Layout } from '../helpers/layouts.js';
import { minigymInstances } from '../helpers/minigym.js';
import { realRunnerFixtures, type RealRunnerFixture } from '../helpers/realrunner.js';

/**
 * The verifier on images laid out like the real thing, against the real engine: the bundled tasks
 * in the conda layout, and the real-runner tasks (Django's tests/runtests.py and sympy's bin/test
 * from Debian's source packages, bugs of ours injected) in both layouts. Images are built by the
 * global set-up (test/helpers/images.ts).
 */
const RUN = `real-images-test-${process.pid}`;
let docker: Docker;
let fixtures: RealRunnerFixture[];

function context(template: string): VerifyContext {
  return {
    docker,
    imageFor: (i) => imageNameFor(i.instance_id, template),
    limits: { memoryBytes: 1024 ** 3, cpus: 1, pids: 512 },
    labels: { [LABEL.run]: RUN },
    maxLogBytes: 512 * 1024,
  };
}

const specOf = (pythonEnv: PythonEnvMode = 'auto') => (i: Instance) => buildEvalSpec(i, { timeout_s: 600, pythonEnv });

beforeAll(async () => {
  docker = await connectEngine();
  fixtures = realRunnerFixtures();
});

describe('bundled tasks in the conda layout', () => {
  it('every one validates with auto-detection, which picks the conda env', async () => {
    const rows = await validateTasks(context(BUNDLED_TEMPLATE.conda), minigymInstances(), specOf(), 2);
    expect(rows.map((r) => [r.instance_id, r.problem])).toEqual(rows.map((r) => [r.instance_id, null]));
    expect(rows.every((r) => r.gold.python_env === 'conda' && r.empty.python_env === 'conda')).toBe(true);
  }, 1_200_000);

  it('without activation (python_env system) pytest is not there and nothing can pass, as on real images', async () => {
    const instance = minigymInstances()[0]!;
    const { verdict } = await verifyPatch(context(BUNDLED_TEMPLATE.conda), instance, specOf('system')(instance), instance.patch);
    expect(verdict.python_env).toBe('system');
    expect(verdict.outcome).toBe('unresolved');
    expect(verdict.report?.FAIL_TO_PASS.success).toEqual([]);
  }, 600_000);

  it('a test patch that does not apply makes a final invalid_task verdict, not a retried error', async () => {
    const instance = minigymInstances()[0]!;
    const broken = { ...instance, test_patch: instance.test_patch.replace(/^ (.*)$/m, ' $1 # not in the file') };
    expect(broken.test_patch).not.toBe(instance.test_patch);
    const { verdict } = await verifyPatch(context(BUNDLED_TEMPLATE.conda), broken, specOf()(broken), instance.patch);
    expect(verdict.outcome).toBe('invalid_task');
    expect(verdict.reason).toMatch(/the test patch did not apply/);
    expect(isFinal(verdict.outcome) && !isModelFailure(verdict.outcome)).toBe(true);
  }, 600_000);
});

for (const layout of LAYOUTS as Layout[]) {
  describe(`real runners, ${layout} layout`, () => {
    const ctx = () => context(RUNNER_TEMPLATE[layout]);

    it('every task validates: gold resolves, the unpatched repository does not', async () => {
      const rows = await validateTasks(ctx(), fixtures.map((f) => f.instance), specOf(), 2);
      for (const row of rows) {
        expect(row.problem, row.instance_id).toBeNull();
        expect(row.gold.python_env).toBe(layout);
        // Ordinary gold patches are never taken for tampering (src/verify/tampering.ts), nor is the unpatched run.
        expect([row.gold.tampering, row.empty.tampering]).toEqual([undefined, undefined]);
        // The unpatched run fails exactly the FAIL_TO_PASS tests and keeps PASS_TO_PASS.
        const task = fixtures.find((f) => f.instance.instance_id === row.instance_id)!.task;
        expect(row.empty.report?.FAIL_TO_PASS.failure.sort()).toEqual([...task.FAIL_TO_PASS].sort());
        expect(row.empty.report?.PASS_TO_PASS.failure).toEqual([]);
      }
    }, 1_200_000);

    for (const kind of ['wrong', 'breaksP2P', 'forged'] as const) {
      it(`grades the ${kind} prediction unresolved on every task`, async () => {
        for (const fixture of fixtures) {
          const { instance, task } = fixture;
          const { verdict, log } = await verifyPatch(ctx(), instance, specOf()(instance), fixture.predictions[kind]);
          expect(verdict.outcome, `${instance.instance_id} ${kind}: ${verdict.reason}`).toBe('unresolved');
          if (kind === 'breaksP2P') {
            expect(verdict.report?.FAIL_TO_PASS.failure).toEqual([]);
            expect(verdict.report?.PASS_TO_PASS.failure.length).toBeGreaterThan(0);
          }
          if (kind === 'forged') {
            // The printed log alone, read with the reference semantics, would resolve it (Django,
            // sympy); the verdict says the trusted channel got nothing.
            const parser = specOf()(instance).parser;
            if (parser !== 'pytest') {
              const fromLog = RUNNERS[parser].parseLog(log);
              expect(gradeTests({ failToPass: task.FAIL_TO_PASS, passToPass: task.PASS_TO_PASS, statuses: fromLog }).resolved).toBe(true);
            }
            expect(verdict.reason, log.slice(-2000)).toMatch(/handed over no results|pytest wrote no report/);
          }
        }
      }, 1_200_000);
    }
  });
}
