import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TrajectorySchema, type Trajectory } from '../../src/agent/trajectory.js';
import { FinetuneJobSchema } from '../../src/finetune/job.js';
import { runLayout } from '../../src/loop/layout.js';
import { METRICS_FILE, MetricsLineSchema } from '../../src/loop/metrics.js';
import { deriveSeed } from '../../src/policy/seed.js';
import { startSimServer, type SimServer } from '../../src/doubles/server.js';
import { LABEL } from '../../src/sandbox/container.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import { readRecords } from '../../src/store/ledger.js';
import { readTrajectories } from '../../src/store/trajectories.js';
import { minigymInstances } from '../helpers/minigym.js';
import { startRft, waitFor, writeLoopRecipe } from './helpers.js';

const NAME = 'loop-test';
const servers: SimServer[] = [];

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function simFor(runsDir: string, port = 0): Promise<SimServer> {
  const server = await startSimServer({ port, models: [], tasks: minigymInstances(), modelsDir: path.join(runsDir, NAME, 'sim-models') });
  servers.push(server);
  return server;
}

function recorded(runDir: string): Trajectory[] {
  const files = [0, 1].map((k) => runLayout.trajectories(runDir, k)).concat([0, 1, 2].map((m) => path.join(runLayout.evalDir(runDir, m), 'trajectories.jsonl')));
  return files.filter(existsSync).flatMap((f) => [...readTrajectories(f)]);
}

/** metrics.jsonl: one line per finished phase, in the order the phases finished. */
function metricsPhases(runDir: string): string[] {
  return [...readRecords(path.join(runDir, METRICS_FILE), MetricsLineSchema)].map((l) => `${l.phase}/${l.iteration}`);
}

const PHASES = ['eval/0', 'sample/0', 'select/0', 'finetune/0', 'eval/1', 'sample/1', 'select/1', 'finetune/1', 'eval/2'];

function datasetFiles(runDir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const k of [0, 1]) {
    const dir = runLayout.datasetDir(runDir, k, 2);
    for (const name of readdirSync(dir).sort()) files.set(`iter-${k}/${name}`, readFileSync(path.join(dir, name), 'utf8'));
  }
  return files;
}

async function containersOf(name: string): Promise<number> {
  const docker = await connectEngine();
  return (await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL.run}=${name}`] }) })).length;
}

describe('rft run: the whole loop, killed anywhere and resumed', () => {
  let uninterrupted: Map<string, string>;
  let uninterruptedTable = '';
  /** Both runs' recipes name the policy by URL: the second server takes the first one's port. */
  let simPort = 0;

  it('a two-iteration run completes: datasets, fine-tunes, evals, a table, no container left', async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-loop-a-'));
    const sim = await simFor(runs);
    simPort = sim.port;
    // The trainer is slowed down (in both runs: it is part of the recipe) so the next test can kill it.
    const run = startRft(['run', writeLoopRecipe(sim.url, { trainerDelayS: 2 }), '--runs-dir', runs]);
    const result = await run.done;
    expect(result.stderr).not.toMatch(/rft: |Error/);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/run complete/);
    const runDir = path.join(runs, NAME);
    for (const k of [0, 1]) {
      const job = FinetuneJobSchema.parse(JSON.parse(readFileSync(path.join(runLayout.finetuneDir(runDir, k), 'finetune.json'), 'utf8')));
      expect(job).toMatchObject({ status: 'succeeded', output_model: `sim-ft-it${k + 1}` });
      expect([...readTrajectories(runLayout.trajectories(runDir, k))]).toHaveLength(12);
    }
    uninterruptedTable = result.stdout.slice(result.stdout.indexOf('model  '));
    expect(uninterruptedTable).toMatch(/M0\s+sim-base\s+\d+\/12/);
    expect(uninterruptedTable).toMatch(/M2\s+sim-ft-it2\s+-.*\d\/3/);
    uninterrupted = datasetFiles(runDir);
    expect(metricsPhases(runDir)).toEqual(PHASES);
    const sample0 = [...readRecords(path.join(runDir, METRICS_FILE), MetricsLineSchema)][1]!;
    expect(sample0).toMatchObject({ run: NAME, phase: 'sample', iteration: 0, trajectories: 12, resumed: false });
    expect(uninterruptedTable).toContain(`${sample0.resolved}/12`);
    // Fine-tune states are told once, by the trainer, in order.
    expect(result.stderr).not.toMatch(/fine-tune running/);
    expect(result.stderr.indexOf('started the trainer of iteration 0')).toBeLessThan(result.stderr.indexOf('fine-tune of iteration 0 succeeded'));
    expect(JSON.parse(uninterrupted.get('iter-0/manifest.json')!).counts.examples).toBeGreaterThan(0);
    expect(await containersOf(NAME)).toBe(0);
    await sim.close();
  });

  it('SIGKILL during sampling, verification and a command fine-tune, then resume: same datasets byte for byte, nothing recorded sampled twice', async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-loop-b-'));
    const sim = await simFor(runs, simPort);
    const runDir = path.join(runs, NAME);
    const recipe = writeLoopRecipe(sim.url, { trainerDelayS: 2 });
    const docker = await connectEngine();
    /** At each kill: what the ledgers held, and how many requests the policy had answered. */
    const atKill: { recorded: Trajectory[]; requests: number }[] = [];
    const snapshot = () => atKill.push({ recorded: recorded(runDir), requests: sim.requests.length });

    // 1. during sampling of iteration 0
    let run = startRft(['run', recipe, '--runs-dir', runs]);
    await waitFor(() => existsSync(runLayout.trajectories(runDir, 0)) && [...readTrajectories(runLayout.trajectories(runDir, 0))].length >= 3, run, 'iteration 0 sampling');
    run.child.kill('SIGKILL');
    await run.done;
    snapshot();

    // 2. while a verification container runs
    run = startRft(['resume', runDir]);
    await waitFor(
      async () => (await docker.listContainers({ filters: JSON.stringify({ label: [`${LABEL.run}=${NAME}`, `${LABEL.purpose}=verify`] }) })).length > 0,
      run,
      'a verification container',
    );
    run.child.kill('SIGKILL');
    await run.done;
    snapshot();

    // 3. while the command fine-tune of iteration 0 runs
    run = startRft(['resume', runDir]);
    const jobFile = path.join(runLayout.finetuneDir(runDir, 0), 'finetune.json');
    await waitFor(() => existsSync(jobFile) && JSON.parse(readFileSync(jobFile, 'utf8')).status === 'running', run, 'the fine-tune');
    run.child.kill('SIGKILL');
    await run.done;
    snapshot();

    // 4. to the end
    run = startRft(['resume', runDir]);
    const final = await run.done;
    expect(final.stderr).not.toMatch(/rft: /);
    expect(final.code).toBe(0);
    expect(final.stdout).toMatch(/run complete/);

    // The trainer ran once per iteration: the killed rft's trainer was re-attached to, not restarted.
    const log = readFileSync(path.join(runLayout.finetuneDir(runDir, 0), 'trainer.log'), 'utf8');
    expect(log.match(/SIMULATED training:/g)).toHaveLength(1);

    // Byte for byte the datasets and manifests of the uninterrupted run.
    const resumed = datasetFiles(runDir);
    expect([...resumed.keys()]).toEqual([...uninterrupted.keys()]);
    for (const [file, text] of resumed) expect({ file, text }).toEqual({ file, text: uninterrupted.get(file) });

    // Nothing recorded before a kill was asked for again after it (a trajectory in flight at a
    // kill was not recorded, so it is sampled again: that is the only repeat allowed).
    let checked = 0;
    for (const kill of atKill) {
      const later = new Set(sim.requests.slice(kill.requests).map((r) => r.seed));
      for (const t of kill.recorded) {
        for (let call = 0; call < t.llm_calls; call++) {
          expect({ trajectory: `${t.iteration}/${t.instance_id}/${t.sample_index}`, call, askedAgain: later.has(deriveSeed(t.seed, call)) }).toMatchObject({ askedAgain: false });
          checked += 1;
        }
      }
    }
    expect(checked).toBeGreaterThan(10);

    // Ledgers: no torn or duplicate lines.
    for (const k of [0, 1]) {
      const lines = readFileSync(runLayout.trajectories(runDir, k), 'utf8').split('\n');
      expect(lines.pop()).toBe('');
      const keys = lines.map((l) => JSON.parse(l)).map((t: Trajectory) => `${t.instance_id}#${t.sample_index}`);
      expect(new Set(keys).size).toBe(keys.length);
      expect(keys).toHaveLength(12);
    }
    // Killed and resumed anywhere, each finished phase has one metrics line.
    expect(metricsPhases(runDir)).toEqual(PHASES);
    expect(await containersOf(NAME)).toBe(0);
  });
});
