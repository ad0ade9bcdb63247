import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startSimulatedPolicy } from '../../src/cli/sim.js';
import { driveRun } from '../../src/loop/drive.js';
import { runLayout } from '../../src/loop/layout.js';
import { runStatus } from '../../src/loop/status.js';
import { MINIGYM_TASKS } from '../helpers/minigym.js';
import { simTrainerFinetune } from '../helpers/sim-trainer.js';

/*
 * Iteration membership is fixed when the iteration begins. One of three train instances has no
 * image at the first start (left out by preflight); the run stops after sampling iteration 0; the
 * image appears; the run is resumed. Iteration 0 must be what an uninterrupted run (image missing
 * throughout) samples and trains on; the instance joins iteration 1.
 */

const PRESENT = ['minigym__iniform-201', 'minigym__ledgerlite-303'];
const LATE = 'minigym__unitkit-101';
// A registry nobody listens on: a tag there exists only if the test makes it locally.
const template = '127.0.0.1:9/rft-members/{id_lower}:v1';
const tagFor = (id: string) => `127.0.0.1:9/rft-members/${id.toLowerCase()}:v1`;
const realImage = (id: string) => `rft-conda/sweb.eval.x86_64.${id.toLowerCase()}:latest`;

function tag(id: string): void {
  execFileSync('docker', ['tag', realImage(id), tagFor(id)]);
}
function untag(id: string): void {
  try {
    execFileSync('docker', ['rmi', tagFor(id)], { stdio: 'ignore' });
  } catch {
    // not there
  }
}

afterAll(() => {
  for (const id of [...PRESENT, LATE]) untag(id);
});

function recipe(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-members-recipe-'));
  writeFileSync(path.join(dir, 'ids.txt'), `${[...PRESENT, LATE].join('\n')}\n`);
  const file = path.join(dir, 'recipe.yaml');
  writeFileSync(
    file,
    `name: members
seed: 3
iterations: 2
tasks:
  train: {path: ${MINIGYM_TASKS}, ids_file: ids.txt, image: '${template}'}
sandbox: {memory: 512m, pids: 256, test_timeout_s: 60, concurrency: 2}
policy: {kind: simulated, model: sim-base, concurrency: 8}
sampling: {samples_per_task: 2, instances_in_flight: 2}
select: {cap: 2}
${simTrainerFinetune()}`,
  );
  return file;
}

async function drive(options: { recipeFile?: string; runDir?: string; runsDir: string; stopAfterSampling?: number }) {
  const lines: string[] = [];
  const result = await driveRun({ ...options, startSimulated: startSimulatedPolicy, log: (m) => lines.push(m), warn: (m) => lines.push(`warning: ${m}`) });
  return { result, lines };
}

const sampledIds = (file: string) => new Set(readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { instance_id: string }).instance_id));
const dataset = (runDir: string, k: number) => readFileSync(path.join(runLayout.datasetDir(runDir, k, 2), 'train.jsonl'), 'utf8');

describe('iteration membership', () => {
  it('an instance left out at the first start and available on resume joins the next iteration, never the begun one', async () => {
    const file = recipe();
    untag(LATE);
    for (const id of PRESENT) tag(id);

    // Uninterrupted, the late image missing throughout.
    const straight = await drive({ recipeFile: file, runsDir: mkdtempSync(path.join(tmpdir(), 'rft-members-a-')) });
    expect(straight.result.status).toBe('complete');

    // Interrupted after iteration 0 is sampled; the image appears; resumed.
    const first = await drive({ recipeFile: file, runsDir: mkdtempSync(path.join(tmpdir(), 'rft-members-b-')), stopAfterSampling: 0 });
    expect(first.result.status).toBe('sampled');
    expect(first.lines.some((l) => l.includes(`left out ${LATE}`))).toBe(true);
    const runDir = first.result.runDir;
    tag(LATE);
    // A resume that stops before iteration 1 begins: status says who joins it.
    const again = await drive({ runDir, runsDir: path.dirname(runDir), stopAfterSampling: 0 });
    expect(again.result.status).toBe('sampled');
    expect(runStatus(runDir).joining).toEqual({ iteration: 1, after: 0, instance_ids: [LATE] });
    const resumed = await drive({ runDir, runsDir: path.dirname(runDir) });
    expect(runStatus(runDir).joining).toBeNull();
    expect(resumed.result.status).toBe('complete');

    // Iteration 0: the same instances, dataset and model as the uninterrupted run's.
    expect([...sampledIds(runLayout.trajectories(runDir, 0))].sort()).toEqual([...PRESENT].sort());
    expect(dataset(runDir, 0)).toBe(dataset(straight.result.runDir, 0));
    expect(readFileSync(path.join(runLayout.finetuneDir(runDir, 0), 'MODEL'), 'utf8')).toBe(readFileSync(path.join(runLayout.finetuneDir(straight.result.runDir, 0), 'MODEL'), 'utf8'));
    // Iteration 1 adds it (the uninterrupted run never had it).
    expect(sampledIds(runLayout.trajectories(runDir, 1)).has(LATE)).toBe(true);
    expect(sampledIds(runLayout.trajectories(straight.result.runDir, 1)).has(LATE)).toBe(false);
    expect(JSON.parse(readFileSync(path.join(runLayout.iterationDir(runDir, 0), 'instances.json'), 'utf8'))).toEqual({ instance_ids: PRESENT });
    expect(JSON.parse(readFileSync(path.join(runLayout.iterationDir(runDir, 1), 'instances.json'), 'utf8'))).toEqual({ instance_ids: [...PRESENT, LATE] });
    expect(existsSync(path.join(runDir, 'excluded.json'))).toBe(true);
  });
});
