import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulatedPolicy } from '../../src/cli/sim.js';
import { driveRun } from '../../src/loop/drive.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import { imageExists, pushImage, removeImage, tagImage } from '../../src/sandbox/images.js';
import { PULLED_IMAGES_FILE, PulledImageEventSchema } from '../../src/sandbox/pulled-images.js';
import { readRecords } from '../../src/store/ledger.js';
import { MINIGYM_TASKS } from '../helpers/minigym.js';
import { startLocalRegistry, type LocalRegistry } from '../helpers/registry.js';
import { simTrainerFinetune } from '../helpers/sim-trainer.js';

/*
 * The loop under `sandbox.image_policy: remove_after_use`: the train task's image comes from a
 * docker-registry on 127.0.0.1 (pulled by the run, so removed after use); the eval task's image
 * is the bundled one built locally (there before the run: it survives every eval).
 */

const TRAIN = 'minigym__unitkit-101';
const EVAL = 'minigym__iniform-201';
const LOCAL = (id: string) => `sweb.eval.x86_64.${id}`;

let docker: Docker;
let registry: LocalRegistry;
let pulledName: string;

beforeAll(async () => {
  docker = await connectEngine();
  registry = await startLocalRegistry();
  pulledName = `${registry.host}/rft-image-policy/${LOCAL(TRAIN)}:v1`;
  await tagImage(docker, LOCAL(TRAIN), pulledName);
  await pushImage(docker, pulledName);
  await removeImage(docker, pulledName);
});

afterAll(async () => {
  await docker?.getImage(pulledName).remove().catch(() => {});
  await registry?.stop();
});

describe('remove_after_use in the loop', () => {
  it('removes the image the run pulled and keeps the locally built one', async () => {
    const recipeDir = mkdtempSync(path.join(tmpdir(), 'rft-image-policy-recipe-'));
    writeFileSync(path.join(recipeDir, 'train.txt'), `${TRAIN}\n`);
    writeFileSync(path.join(recipeDir, 'eval.txt'), `${EVAL}\n`);
    const recipeFile = path.join(recipeDir, 'recipe.yaml');
    writeFileSync(
      recipeFile,
      `name: image-policy
seed: 3
iterations: 1
tasks:
  train: {path: ${MINIGYM_TASKS}, ids_file: train.txt, image: '${registry.host}/rft-image-policy/sweb.eval.x86_64.{id_lower}:v1'}
  eval: {path: ${MINIGYM_TASKS}, ids_file: eval.txt}
sandbox: {memory: 512m, pids: 256, test_timeout_s: 60, concurrency: 2, image_policy: remove_after_use}
policy: {kind: simulated, model: sim-base, concurrency: 4}
sampling: {samples_per_task: 2, instances_in_flight: 1}
select: {cap: 2}
${simTrainerFinetune({ onEmpty: 'carry_forward' })}`,
    );
    expect(await imageExists(docker, pulledName)).toBe(false);
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-image-policy-runs-'));
    const lines: string[] = [];
    const result = await driveRun({ recipeFile, runsDir: runs, startSimulated: startSimulatedPolicy, log: (m) => lines.push(m), warn: (m) => lines.push(`warning: ${m}`) });
    expect(result.status, lines.join('\n')).toBe('complete');

    // Pulled by the run: recorded before and after the pull, removed once its samples were verified.
    const events = [...readRecords(path.join(result.runDir, PULLED_IMAGES_FILE), PulledImageEventSchema)].map((e) => `${e.event} ${e.image}`);
    expect(events).toEqual([`pulling ${pulledName}`, `pulled ${pulledName}`, `removed ${pulledName}`]);
    expect(await imageExists(docker, pulledName)).toBe(false);
    // Built locally before the run: used by every eval, still there.
    expect(await imageExists(docker, LOCAL(EVAL))).toBe(true);
    expect(await imageExists(docker, LOCAL(TRAIN))).toBe(true);
  });
});
