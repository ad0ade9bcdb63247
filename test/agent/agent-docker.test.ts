import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareInstance } from '../../src/agent/instance-workspace.js';
import { runTrajectory } from '../../src/agent/run.js';
import { OpenAiPolicy } from '../../src/policy/client.js';
import { startSimServer, type SimServer } from '../../src/doubles/server.js';
import { AgentSchema } from '../../src/recipe/schema.js';
import { LABEL } from '../../src/sandbox/container.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import { verifyPatch } from '../../src/verify/run.js';
import { buildEvalSpec } from '../../src/verify/spec.js';
import { MINIGYM_TASKS, minigymInstances } from '../helpers/minigym.js';
import { bundledVerifyContext } from '../helpers/verify-context.js';
import { RFT_BIN } from '../cli/helpers.js';

const RUN = `agent-docker-${process.pid}`;
let sim: SimServer;

beforeAll(async () => {
  sim = await startSimServer({ models: [], tasks: minigymInstances() });
});

afterAll(async () => {
  await sim.close();
});

describe('the agent against the SIMULATED policy, verified in Docker', () => {
  it('at T=1.0 over 10 seeds some samples resolve, some fail, and every patch applies with git apply', async () => {
    const docker = await connectEngine();
    const ctx = bundledVerifyContext(docker, RUN);
    const policy = new OpenAiPolicy({ baseUrl: sim.url, model: 'sim-base', apiKey: null, timeoutMs: 30_000, maxRetries: 3 });
    const outcomes: string[] = [];
    for (const instance of minigymInstances().filter((i) => ['minigym__unitkit-101', 'minigym__iniform-203'].includes(i.instance_id))) {
      const prepared = await prepareInstance(docker, ctx.imageFor(instance), ctx.labels);
      for (let seed = 0; seed < 10; seed++) {
        const trajectory = await runTrajectory({
          ids: { run: RUN, iteration: 0, instance_id: instance.instance_id, sample_index: seed },
          seed,
          instance,
          ...prepared,
          policy,
          agent: AgentSchema.parse({}),
          sampling: { temperature: 1, top_p: 1 },
        });
        const { verdict } = await verifyPatch(ctx, instance, buildEvalSpec(instance, { timeout_s: 60 }), trajectory.patch);
        outcomes.push(verdict.outcome);
        if (trajectory.patch !== '') {
          // Plain `git apply` takes every patch the agent writes: no fallback needed.
          expect({ seed, method: verdict.apply_method }).toEqual({ seed, method: 'git_apply' });
        }
      }
      prepared.release();
    }
    expect(outcomes).toContain('resolved');
    expect(outcomes.some((o) => o !== 'resolved')).toBe(true);
    const left = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL.run}=${RUN}`] }) });
    expect(left).toEqual([]);
  });

  it("shares an instance's snapshot and index between its users, and closes the index when the last one releases it", async () => {
    const docker = await connectEngine();
    const ctx = bundledVerifyContext(docker, RUN);
    const instance = minigymInstances().find((i) => i.instance_id === 'minigym__unitkit-101')!;
    const request = { query: 'convert a temperature between units', class_names: [], function_names: [] };
    const first = await prepareInstance(docker, ctx.imageFor(instance), ctx.labels);
    const second = await prepareInstance(docker, ctx.imageFor(instance), ctx.labels);
    expect(second.files).toBe(first.files);
    const hits = await first.index.search(request);
    expect(hits.length).toBeGreaterThan(0);
    first.release();
    first.release(); // a second release of the same use counts once
    expect(await second.index.search(request)).toEqual(hits);
    second.release();
    await expect(second.index.search(request)).rejects.toThrow(/closed/);
    // The next user prepares it afresh, and it answers the same.
    const third = await prepareInstance(docker, ctx.imageFor(instance), ctx.labels);
    expect(third.files).not.toBe(first.files);
    expect(await third.index.search(request)).toEqual(hits);
    third.release();
  });

  it('rft agent run prints the states it walked, the patch and the verdict', async () => {
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [RFT_BIN, 'agent', 'run', '--tasks', MINIGYM_TASKS, '--instance', 'minigym__unitkit-101', '--base-url', sim.url, '--model', 'sim-base', '--seed', '1', '--temperature', '0', '--verify', '--timeout', '60']);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(out.stderr).toBe('');
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/SearchCode\s+search .*→ IdentifyCode/);
    expect(out.stdout).toMatch(/PlanToCode\s+finish/);
    expect(out.stdout).toContain('diff --git a/unitkit/units.py b/unitkit/units.py');
    // sim-base solves this task at temperature 0 (skill >= 0.5).
    expect(out.stdout).toMatch(/verdict: resolved/);
  });
});
