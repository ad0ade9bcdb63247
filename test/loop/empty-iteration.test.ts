import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCarriedForward } from '../../src/loop/carry-forward.js';
import { driveRun } from '../../src/loop/drive.js';
import { runLayout } from '../../src/loop/layout.js';
import { runStatus } from '../../src/loop/status.js';
import { startSimServer, type SimServer } from '../../src/doubles/server.js';
import { countLines } from '../../src/store/ledger.js';
import { MINIGYM_TASKS, minigymInstances } from '../helpers/minigym.js';
import { simTrainerFinetune } from '../helpers/sim-trainer.js';

/*
 * Nothing trained on nothing: a SIMULATED model with skill 0 never resolves a task, so selection
 * keeps nothing; and a train set whose images cannot be had leaves nothing to sample. Two bundled
 * tasks, two samples each: small on purpose.
 */

const TASKS = ['minigym__iniform-201', 'minigym__unitkit-101'];
let sim: SimServer;

beforeAll(async () => {
  sim = await startSimServer({
    models: [{ name: 'sim-zero', simulated: true, parent: null, skill: { default: 0, tasks: {} }, notes: 'never resolves (test)' }],
    tasks: minigymInstances(),
  });
});

afterAll(async () => {
  await sim?.close();
});

function recipe(name: string, options: { onEmpty?: 'stop' | 'carry_forward'; trainImage?: string } = {}): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-empty-recipe-'));
  writeFileSync(path.join(dir, 'ids.txt'), `${TASKS.join('\n')}\n`);
  const image = options.trainImage ? `, image: '${options.trainImage}'` : '';
  const file = path.join(dir, 'recipe.yaml');
  writeFileSync(
    file,
    `name: ${name}
seed: 3
iterations: 2
tasks:
  train: {path: ${MINIGYM_TASKS}, ids_file: ids.txt${image}}
  eval: {path: ${MINIGYM_TASKS}, ids_file: ids.txt}
sandbox: {memory: 512m, pids: 256, test_timeout_s: 60, concurrency: 2}
policy: {kind: openai, base_url: ${sim.url}, model: sim-zero, concurrency: 8, retries: 0}
sampling: {samples_per_task: 2, instances_in_flight: 2}
select: {cap: 2}
${simTrainerFinetune({ before: 'touch {run_dir}/TRAINER-STARTED-{iteration} && ', onEmpty: options.onEmpty })}`,
  );
  return file;
}

async function drive(recipeFile: string, runsDir: string, runDir?: string) {
  const lines: string[] = [];
  const result = await driveRun({
    ...(runDir ? { runDir } : { recipeFile }),
    runsDir,
    log: (m) => lines.push(m),
    warn: (m) => lines.push(`warning: ${m}`),
  });
  return { result, lines };
}

const trainerStarted = (runDir: string) => [0, 1].some((k) => existsSync(path.join(runDir, `TRAINER-STARTED-${k}`)));

describe('an iteration with nothing to train on', () => {
  it('stops by default when selection kept no trajectory, saying why, and never starts the trainer', async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-empty-runs-'));
    const { result } = await drive(recipe('empty-stop'), runs);
    expect(result.status).toBe('nothing_to_train');
    expect(result.reason).toMatch(/^iteration 0: nothing to train on, the trainer was not started: no trajectory of iteration 0 resolved its task \(4 trajectories on 2 instances\)/);
    expect(result.reason).toMatch(/finetune\.on_empty: carry_forward/);
    expect(countLines(runLayout.trajectories(result.runDir, 0))).toBe(4);
    const manifest = JSON.parse(readFileSync(path.join(runLayout.datasetDir(result.runDir, 0, 2), 'manifest.json'), 'utf8')) as { counts: { examples: number } };
    expect(manifest.counts.examples).toBe(0);
    expect(trainerStarted(result.runDir)).toBe(false);
    expect(existsSync(path.join(runLayout.finetuneDir(result.runDir, 0), 'finetune.json'))).toBe(false);
    expect(readCarriedForward(result.runDir, 0)).toBeNull();
    const status = runStatus(result.runDir);
    expect(status.complete).toBe(false);
    expect(status.phases.find((p) => p.phase === 'iter-0/finetune')?.status).toBe('pending');
  });

  it('carry_forward: M_k+1 is M_k, recorded, not evaluated again; the next iteration samples from it; resume changes nothing', async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-empty-runs-'));
    const { result, lines } = await drive(recipe('empty-carry', { onEmpty: 'carry_forward' }), runs);
    expect(result.status).toBe('complete');
    expect(trainerStarted(result.runDir)).toBe(false);
    for (const k of [0, 1]) {
      expect(readCarriedForward(result.runDir, k)).toMatchObject({ iteration: k, model: 'sim-zero', reason: `no trajectory of iteration ${k} resolved its task (4 trajectories on 2 instances)` });
      expect(existsSync(path.join(runLayout.finetuneDir(result.runDir, k), 'finetune.json'))).toBe(false);
      expect(existsSync(runLayout.evalDir(result.runDir, k + 1))).toBe(false);
    }
    expect(lines).toContain('iteration 0: nothing to train on (no trajectory of iteration 0 resolved its task (4 trajectories on 2 instances)); M1 is M0 carried forward (sim-zero), not evaluated again');
    // Iteration 1 sampled from the carried model.
    expect(countLines(runLayout.trajectories(result.runDir, 1))).toBe(4);
    expect(sim.requests.some((r) => r.model !== 'sim-zero')).toBe(false);

    const status = runStatus(result.runDir);
    expect(status.complete).toBe(true);
    expect(status.phases.find((p) => p.phase === 'iter-0/finetune')).toMatchObject({ status: 'done', detail: expect.stringMatching(/^nothing trained: M1 is M0 carried forward \(sim-zero\)/) });
    expect(status.phases.find((p) => p.phase === 'eval/m1')).toMatchObject({ status: 'skipped', detail: 'M1 is M0: see eval/m0' });
    expect(status.phases.find((p) => p.phase === 'eval/m2')).toMatchObject({ status: 'skipped', detail: 'M2 is M0: see eval/m0' });
    expect(status.rows.map((r) => r.model)).toEqual(['sim-zero', 'sim-zero', 'sim-zero']);

    const before = sim.requests.length;
    const again = await drive('', runs, result.runDir);
    expect(again.result.status).toBe('complete');
    expect(sim.requests.length).toBe(before);
    expect(trainerStarted(result.runDir)).toBe(false);
  });

  it('stops before anything is served or evaluated when every train instance was left out, naming them and where that is recorded', async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-empty-runs-'));
    const before = sim.requests.length;
    // A registry nobody listens on: the images are neither present nor pullable.
    const { result } = await drive(recipe('empty-left-out', { trainImage: '127.0.0.1:9/rft-none/{id_lower}:v1' }), runs);
    expect(result.status).toBe('nothing_to_train');
    expect(result.reason).toContain(`no train instance to sample: all 2 were left out before sampling (listed in ${path.join(result.runDir, 'excluded.json')} and by rft status)`);
    for (const id of TASKS) expect(result.reason).toContain(`${id} (image 127.0.0.1:9/rft-none/${id}:v1 is missing and cannot be pulled`);
    expect(sim.requests.length).toBe(before);
    expect(existsSync(runLayout.trajectories(result.runDir, 0))).toBe(false);
    expect(existsSync(runLayout.evalDir(result.runDir, 0))).toBe(false);
    expect(trainerStarted(result.runDir)).toBe(false);
    expect(runStatus(result.runDir).excluded.map((e) => e.instance_id).sort()).toEqual([...TASKS].sort());
  });
});
