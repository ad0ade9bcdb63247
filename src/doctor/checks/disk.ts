import { statfsSync } from 'node:fs';
import path from 'node:path';
import { imageExists } from '../../sandbox/images.js';
import { imageNameFor } from '../../tasks/image-name.js';
import type { DoctorContext } from '../context.js';
import { fail, ok, warn, type CheckResult } from '../record.js';
import { nearestExisting } from './output.js';

/** Design §8: 0.5–1 MB per trajectory with every message stored whole; the upper end is planned for. */
export const TRAJECTORY_BYTES = 1 << 20;
/** SWE-Gym and SWE-bench instance images are 2–3 GB each (design §8, recipes/moatless-7b.yaml). */
export const IMAGE_BYTES = 3 * 2 ** 30;

const GB = (bytes: number) => `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 2 : 1)} GB`;

function freeBytes(dir: string): number {
  const stats = statfsSync(nearestExisting(dir));
  return stats.bavail * stats.bsize;
}

/**
 * Free disk against one iteration: the runs folder holds samples_per_task trajectories per train
 * instance (and eval.samples per eval instance); Docker's data root the images not yet present
 * (all of them under image_policy keep, instances_in_flight at a time under remove_after_use).
 */
export async function checkDisk(ctx: DoctorContext): Promise<CheckResult[]> {
  const { recipe } = ctx;
  const [sets, engines] = await Promise.all([ctx.taskSets(), ctx.engines()]);
  const results: CheckResult[] = [];
  const runsDir = path.resolve(ctx.options.runsDir);
  const train = sets.find((s) => s.set === 'train')?.instances ?? null;
  const evalSet = sets.find((s) => s.set === 'eval');
  const evalCount = evalSet ? (evalSet.instances?.length ?? null) : 0;

  const runsWhat = `free disk for ${runsDir}`;
  let runsFree: number;
  try {
    runsFree = freeBytes(runsDir);
  } catch (err) {
    return [warn('disk', runsWhat, `cannot read free space: ${(err as Error).message}`)];
  }
  if (train === null || evalCount === null) {
    results.push(warn('disk', runsWhat, `${GB(runsFree)} free; no estimate (a task file is not readable)`, null));
  } else {
    const trajectories = recipe.sampling.samples_per_task * train.length + recipe.eval.samples * evalCount;
    const need = trajectories * TRAJECTORY_BYTES;
    const detail = `${GB(runsFree)} free, an iteration needs ≈ ${GB(need)} (${trajectories} trajectories × ≤ 1 MB)`;
    results.push(runsFree < need ? fail('disk', runsWhat, detail, 'free space there, or choose another --runs-dir') : ok('disk', runsWhat, detail));
  }

  const engine = engines[0]!;
  if (engine.docker === null || engine.rootDir === null) return results;
  const dockerWhat = `free disk for Docker's data root ${engine.rootDir}`;
  if (!engine.url.startsWith('unix://')) {
    results.push(warn('disk', dockerWhat, `on ${engine.url}: not measured from here`, null));
    return results;
  }
  let dockerFree: number;
  try {
    dockerFree = freeBytes(engine.rootDir);
  } catch (err) {
    results.push(warn('disk', dockerWhat, `cannot read free space: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, null));
    return results;
  }
  if (sets.some((s) => s.instances === null)) {
    results.push(warn('disk', dockerWhat, `${GB(dockerFree)} free; no estimate (a task file is not readable)`, null));
    return results;
  }
  const names = new Set<string>();
  for (const set of sets) {
    const template = recipe.tasks[set.set]?.image ?? recipe.sandbox.image;
    for (const instance of set.instances ?? []) {
      try {
        names.add(imageNameFor(instance.instance_id, template));
      } catch {
        // the images line says so
      }
    }
  }
  let absent = 0;
  for (const name of names) if (!(await imageExists(engine.docker, name).catch(() => false))) absent++;
  const held = recipe.sandbox.image_policy === 'remove_after_use' ? Math.min(absent, recipe.sampling.instances_in_flight) : absent;
  const need = held * IMAGE_BYTES;
  const how = recipe.sandbox.image_policy === 'remove_after_use' ? `${held} image(s) at a time (remove_after_use)` : `${absent} image(s) to pull, kept`;
  const detail = `${GB(dockerFree)} free, ≈ ${GB(need)} needed: ${how} × ≤ 3 GB`;
  results.push(dockerFree < need ? fail('disk', dockerWhat, detail, 'free space (docker image prune), or set sandbox.image_policy: remove_after_use') : ok('disk', dockerWhat, detail));
  return results;
}
