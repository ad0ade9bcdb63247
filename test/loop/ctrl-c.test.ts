import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runLayout } from '../../src/loop/layout.js';
import { readStops } from '../../src/loop/stops.js';
import { startSimServer, type SimServer } from '../../src/doubles/server.js';
import { readTrajectories } from '../../src/store/trajectories.js';
import { minigymInstances } from '../helpers/minigym.js';
import { startRft, waitFor, writeLoopRecipe } from './helpers.js';

/**
 * Ctrl-C mid-sampling (issue 21, item 4): a real rft child gets SIGINT while its trajectories wait
 * on a slow SIMULATED policy. Only iteration 0 samples with sim-base (no zero-shot eval), so the
 * completions sim-base answered are the sampling's cost; the run is compared with an
 * uninterrupted one.
 */

/** Its own run name: containers are labelled by it, and other loop tests count theirs by name. */
const NAME = 'ctrl-c-test';
/** Each completion takes this long: trajectories are mid-way when the signal comes. */
const LATENCY_MS = 250;
/** The loop recipe's policy.concurrency: at most this many calls are in flight when the signal comes. */
const LLM_CONCURRENCY = 8;
/** The loop recipe's instances_in_flight × samples_per_task: trajectories that can be in flight. */
const TRAJECTORIES_IN_FLIGHT = 2 * 4;
const SETS = ['--set', 'iterations=1', '--set', 'eval.zero_shot=false', '--set', 'tasks.eval=null'];
const servers: SimServer[] = [];

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function sim(runsDir: string): Promise<SimServer> {
  const server = await startSimServer({ models: [], tasks: minigymInstances(), modelsDir: path.join(runsDir, NAME, 'sim-models'), latencyMs: LATENCY_MS });
  servers.push(server);
  return server;
}

const baseCalls = (server: SimServer) => server.requests.filter((r) => r.model === 'sim-base').length;

function sampled(runDir: string): string[] {
  return [...readTrajectories(runLayout.trajectories(runDir, 0))].map((t) => `${t.instance_id}#${t.sample_index}`).sort();
}

describe('Ctrl-C: in-flight trajectories stop at their next call, resume pays once', () => {
  let uninterruptedCalls = 0;
  let uninterruptedSamples: string[] = [];

  it('an uninterrupted run: the calls sampling iteration 0 costs', async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-ctrlc-a-'));
    const server = await sim(runs);
    const run = startRft(['run', writeLoopRecipe(server.url, { name: NAME }), '--runs-dir', runs, ...SETS]);
    const result = await run.done;
    expect(result.code, result.stderr).toBe(0);
    uninterruptedCalls = baseCalls(server);
    uninterruptedSamples = sampled(path.join(runs, NAME));
    expect(uninterruptedSamples).toHaveLength(12);
    expect(uninterruptedCalls).toBeGreaterThan(12 * 2);
  });

  it('SIGINT mid-sampling: at most one call per trajectory after it, nothing recorded from them, resume asks only for the rest', async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-ctrlc-b-'));
    const server = await sim(runs);
    const runDir = path.join(runs, NAME);
    const recipe = writeLoopRecipe(server.url, { name: NAME });
    const run = startRft(['run', recipe, '--runs-dir', runs, ...SETS]);
    // Mid-iteration: some calls answered, every trajectory of the first instances still running.
    await waitFor(() => baseCalls(server) >= 12, run, 'a dozen completions');
    const atSignal = baseCalls(server);
    const signalled = Date.now();
    run.child.kill('SIGINT');
    const stopped = await run.done;
    const stopSeconds = (Date.now() - signalled) / 1000;
    const afterSignal = baseCalls(server) - atSignal;
    expect(stopped.code, stopped.stderr).toBe(130);
    expect(stopped.stderr).toMatch(/SIGINT: stopping/);
    // Calls already in flight end; no new one starts (before the fix: every started trajectory ran to its end).
    expect(afterSignal).toBeLessThanOrEqual(Math.min(LLM_CONCURRENCY, TRAJECTORIES_IN_FLIGHT));
    const recordedAtStop = sampled(runDir);
    expect(recordedAtStop.length).toBeLessThan(12);
    const paidAtStop = baseCalls(server);

    // The abandoned trajectories' calls are kept as a cost figure, and rft status shows it.
    const stops = readStops(runDir);
    expect(stops).toHaveLength(1);
    expect(stops[0]!.trajectories).toBeGreaterThan(0);
    expect(stops[0]!.trajectories).toBeLessThanOrEqual(TRAJECTORIES_IN_FLIGHT);
    const status = await startRft(['status', runDir]).done;
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`${stops[0]!.llm_calls} LLM calls`);

    const resumed = await startRft(['resume', runDir]).done;
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(sampled(runDir)).toEqual(uninterruptedSamples);
    const total = baseCalls(server);
    const paidTwice = total - uninterruptedCalls;
    // The calls paid twice are exactly the abandoned trajectories' calls (resume redoes them whole).
    expect(paidTwice).toBe(stops[0]!.llm_calls);
    // Every abandoned call was made before the signal or in flight when it came.
    expect(paidTwice).toBeLessThanOrEqual(atSignal + afterSignal);
    console.log(
      `ctrl-c: ${atSignal} calls at SIGINT, ${afterSignal} after it, exit after ${stopSeconds.toFixed(1)} s; ${recordedAtStop.length}/12 samples recorded; ` +
        `${stops[0]!.trajectories} trajectories abandoned; paid twice: ${paidTwice} of ${uninterruptedCalls} calls (${paidAtStop} before resume, ${total} in all)`,
    );
  });
});
