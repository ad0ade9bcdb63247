import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PolicyEndpoint } from '../loop/policy-endpoint.js';
import { readMembership } from '../loop/membership.js';
import { runLayout } from '../loop/layout.js';
import { rollout } from '../loop/rollout.js';
import { rolloutContext, rolloutSettings } from '../loop/rollout-context.js';
import { loadRunRecipe } from '../loop/run-recipe.js';
import { samplingEncoding } from '../sft/tokenizer.js';
import { acquireLock } from '../store/lock.js';
import { shardLedgerFile } from '../store/ledger.js';
import { reapContainers } from '../sandbox/container.js';
import { connectEngine } from '../sandbox/engine.js';
import { PulledImages, PULLED_IMAGES_FILE } from '../sandbox/pulled-images.js';
import { selectTaskSet } from '../tasks/select.js';
import { shardLayout, shardMembers, writeShardDone } from './shards.js';

/** Marks a shard's containers, so its next attempt removes what a killed one left (and no other shard's). */
export const SHARD_LABEL = 'rft.shard';

export interface WorkerOptions {
  runDir: string;
  iteration: number;
  shard: number;
  shards: number;
  /** The model to sample and where it answers (the coordinator's served model and endpoint). */
  model: string;
  baseUrls: string[];
  log: (message: string) => void;
  warn: (message: string) => void;
  stopping: () => boolean;
}

export interface WorkerResult {
  instances: number;
  recorded: number;
  complete: boolean;
}

/**
 * One shard of an iteration's sampling + verification (`rft worker`): the instances j with
 * j mod shards = shard of iter-<k>/instances.json, sampled from the given endpoint and verified on
 * this node's Docker engine (the recipe's sandbox.docker[0]), recorded in the shard's own ledgers
 * (iter-<k>/shards/<shard>/). Anything recorded anywhere in the iteration's ledgers is skipped,
 * so a resubmitted (or hand-run) worker does only what is missing; done.json is written when every
 * sample and final verdict of the shard is recorded. The coordinator holds the run's lock; a shard
 * has a lock of its own, so two attempts of one shard never write at once.
 */
export async function runWorker(o: WorkerOptions): Promise<WorkerResult> {
  const loaded = loadRunRecipe(o.runDir, []);
  const recipe = loaded.recipe;
  const iterDir = runLayout.iterationDir(o.runDir, o.iteration);
  const membership = readMembership(iterDir);
  if (membership === null) throw new Error(`${path.join(iterDir, 'instances.json')} does not exist: the coordinator (rft run) fixes an iteration's instances before its shards run`);
  const train = await selectTaskSet(recipe.tasks.train, loaded.baseDir);
  const byId = new Map(train.map((i) => [i.instance_id, i]));
  const missing = membership.instance_ids.filter((id) => !byId.has(id));
  if (missing.length > 0) throw new Error(`iteration ${o.iteration} samples ${missing.slice(0, 3).join(', ')}, which tasks.train no longer selects`);
  const members = shardMembers(membership.instance_ids.map((id) => byId.get(id)!), o.shard, o.shards);

  mkdirSync(shardLayout.shardDir(iterDir, o.shard), { recursive: true });
  const lock = acquireLock(shardLayout.lock(iterDir, o.shard), o.warn);
  const docker = await connectEngine(recipe.sandbox.docker[0]!.url);
  const shardLabel = { [SHARD_LABEL]: `${o.runDir}#iter-${o.iteration}/${o.shard}` };
  const reaped = await reapContainers(docker, shardLabel);
  if (reaped > 0) o.warn(`removed ${reaped} container(s) an earlier attempt of this shard left`);
  const context = rolloutContext(recipe, o.runDir, docker, train, shardLabel);
  const pulledImages = PulledImages.open(path.join(shardLayout.shardDir(iterDir, o.shard), PULLED_IMAGES_FILE), o.warn);
  try {
    o.log(`shard ${o.shard} of ${o.shards}: iteration ${o.iteration}, ${members.length} instance(s), ${recipe.sampling.samples_per_task} samples each, from ${o.model} at ${o.baseUrls.join(', ')}`);
    const trajectoriesFile = runLayout.trajectories(o.runDir, o.iteration);
    const verdictsFile = runLayout.verdicts(o.runDir, o.iteration);
    const summary = await rollout(
      {
        phase: `iter-${o.iteration}`,
        runName: recipe.name,
        runSeed: recipe.seed,
        iteration: o.iteration,
        instances: members,
        samplesPerInstance: recipe.sampling.samples_per_task,
        sampling: { temperature: recipe.sampling.temperature, top_p: recipe.sampling.top_p },
        agent: recipe.agent,
        encoding: samplingEncoding(recipe.sft.tokenizer),
        trajectoriesFile,
        verdictsFile,
        appendTo: { trajectories: shardLedgerFile(trajectoriesFile, o.shard), verdicts: shardLedgerFile(verdictsFile, o.shard) },
      },
      {
        docker,
        engineUrl: recipe.sandbox.docker[0]!.url,
        pulledImages,
        policy: PolicyEndpoint.remote(recipe).client(o.model, o.baseUrls, o.warn),
        ...context,
        ...rolloutSettings(recipe),
        stopping: o.stopping,
        warn: o.warn,
        log: o.log,
      },
    );
    if (summary.complete) writeShardDone(iterDir, { shard: o.shard, shards: o.shards, instances: members.length, finished_at: new Date().toISOString() });
    o.log(`shard ${o.shard}: ${summary.recorded} trajectories recorded${summary.complete ? ', every patch verified: done' : `; ${summary.infraErrors} samples and ${summary.verifyErrors} verifications hit infrastructure errors (a resubmission retries them)`}`);
    return { instances: members.length, recorded: summary.recorded, complete: summary.complete };
  } finally {
    pulledImages.close();
    await reapContainers(docker, shardLabel).catch(() => 0);
    lock.release();
  }
}
