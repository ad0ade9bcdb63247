import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { readJob } from '../finetune/job.js';
import { createTrainer } from '../finetune/create-trainer.js';
import type { LoadedRecipe } from '../recipe/load.js';
import type { Recipe } from '../recipe/schema.js';
import { LABEL, reapContainers } from '../sandbox/container.js';
import { connectEngine } from '../sandbox/engine.js';
import { EnginePool } from '../sandbox/engine-pool.js';
import { PULLED_IMAGES_FILE, PulledImages } from '../sandbox/pulled-images.js';
import { createModelServer } from '../serve/create-server.js';
import type { ModelServer } from '../serve/server.js';
import type { DatasetManifest } from '../sft/manifest.js';
import { assertDatasetReadable } from '../sft/check-dataset.js';
import { exampleOptionsOf } from '../sft/options.js';
import { emitDatasetFromLedgers } from '../sft/stream.js';
import { samplingEncoding } from '../sft/tokenizer.js';
import { DATASET_FILE } from '../sft/write.js';
import { CRASH_POINTS, crashPoint } from '../store/crash-points.js';
import { countLines, readRecords } from '../store/ledger.js';
import { readTrajectoryHeads, type TrajectoryHead } from '../store/trajectories.js';
import type { RunDir } from '../store/run-dir.js';
import type { Instance } from '../tasks/instance.js';
import { fixMembership, writeJoining } from './membership.js';
import { selectTaskSet } from '../tasks/select.js';
import { EXCLUDED_FILE, preflight, readExclusions, writeExclusions } from '../verify/preflight.js';
import { specHash, type EvalSpec } from '../verify/spec.js';
import { VerdictSchema, verdictKey } from '../verify/verdict.js';
import { emitVerifierData, scoreEvalPhase } from '../orm/phase.js';
import { RUN_DIR_LABEL, sweepAtomicTemps } from './gc.js';
import { runLayout } from './layout.js';
import { phaseCounts } from './phase-summary.js';
import { instancesWithWork } from './image-checks.js';
import { readCarriedForward, recordCarriedForward } from './carry-forward.js';
import type { StartSimulatedPolicy } from '../policy/simulated.js';
import { apiKeyFrom, PolicyEndpoint } from './policy-endpoint.js';
import { finetuneMetrics, MetricsLog, rolloutMetrics, selectMetrics } from './metrics.js';
import { recordStop } from './stops.js';
import { PhaseProgress } from './progress.js';
import { rollout, type RolloutEvent, type RolloutSummary } from './rollout.js';
import { rolloutContext, rolloutSettings } from './rollout-context.js';
import { runShardedPhase } from '../cluster/coordinator.js';
import { SlurmCommands, type SlurmFarEnd } from '../cluster/far-end.js';
import { formatTable, summarizeRun, type IterationRow } from './summary.js';

export interface LoopOptions {
  run: RunDir;
  loaded: LoadedRecipe;
  log: (message: string) => void;
  warn: (message: string) => void;
  /** True once the user asked to stop (Ctrl-C): no new work starts, what is recorded stays. */
  stopping: () => boolean;
  /** Aborts waits that may be long (a fine-tune): the job keeps running and is re-attached to. */
  signal: AbortSignal;
  /** A fine-tune recorded as failed is tried again (its record is kept aside) instead of stopping the run. */
  retryFailed?: boolean;
  /** Stop once this iteration is sampled and verified (rft sweep's shared base run). */
  stopAfterSampling?: number;
  /** Starts the SIMULATED policy for `policy.kind: simulated` (the CLI wires it; a real policy never needs it). */
  startSimulated?: StartSimulatedPolicy;
  /** The Slurm commands, for `cluster.kind: slurm` (tests play the far end; default: sbatch/squeue/sacct on PATH). */
  slurm?: SlurmFarEnd;
}

/**
 * `sampled`: stopped as asked after sampling an iteration (stopAfterSampling); `nothing_to_train`:
 * stopped because an iteration had no instance to sample or selection kept nothing (the reason
 * says why and what to change; resuming as it is would stop there again).
 */
export type LoopStatus = 'complete' | 'sampled' | 'stopped' | 'incomplete' | 'nothing_to_train';

export interface LoopResult {
  status: LoopStatus;
  rows: IterationRow[];
  table: string;
  /** Completion requests the SIMULATED policy answered in this process (0 for a real endpoint). */
  simRequests: number;
  /** Why the run is incomplete (infrastructure errors left to retry). */
  reason: string | null;
}

/** A phase name in state.json, e.g. `iter-0/sample` or `eval/m1`. */
type PhaseKey = string;

/**
 * The iteration loop of design §1: zero-shot eval of M_0, then per iteration sample (+ verify) →
 * select → emit → fine-tune → serve → eval. Each phase reads what the previous one recorded and
 * records its own result once, so running this again on the same run directory redoes only what
 * is missing: that is how `rft resume` works.
 */
export async function runLoop(options: LoopOptions): Promise<LoopResult> {
  const { run, loaded, log } = options;
  const recipe = run.recipe;
  const baseDir = run.meta.base_dir;
  const train = await selectTaskSet(recipe.tasks.train, baseDir);
  const evalSet = recipe.tasks.eval ? await selectTaskSet(recipe.tasks.eval, baseDir) : null;
  const docker = await connectEngine(recipe.sandbox.docker[0]!.url);
  // Containers a killed earlier process left behind carry this run's label.
  const reaped = await reapContainers(docker, { [LABEL.run]: recipe.name, [RUN_DIR_LABEL]: run.dir });
  if (reaped > 0) options.warn(`removed ${reaped} container(s) left by an earlier process of this run`);
  // …and so may temp files of atomic replacements it was killed in the middle of (crash-anywhere test).
  const temps = sweepAtomicTemps(run.dir);
  if (temps.length > 0) options.warn(`removed ${temps.length} temp file(s) of writes an earlier process of this run was killed in`);

  // Several engines: containers are spread over them by free capacity (the first also takes snapshots).
  const engines = recipe.sandbox.docker.length > 1 ? EnginePool.fromRecipe(recipe.sandbox.docker, recipe.sandbox.concurrency, options.warn) : undefined;
  const allTasks = uniqueTasks([...train, ...(evalSet ?? [])]);
  const endpoint = await PolicyEndpoint.open(recipe, runLayout.simModels(run.dir), allTasks, options.startSimulated);
  // Commands run from the recipe's folder, the base of every relative path in the recipe (README, Recipes).
  const server: ModelServer = createModelServer(recipe.serve, { runDir: run.dir, log, warn: options.warn, cwd: baseDir });
  const trainer = createTrainer(recipe.finetune, {
    apiKey: recipe.finetune.backend === 'openai' ? apiKeyFrom(recipe.finetune.api_key_env, 'finetune') : null,
    log,
    warn: options.warn,
    cwd: baseDir,
  });
  const { specFor, imageFor, verifyContext } = rolloutContext(recipe, run.dir, docker, train);

  // Instances that cannot be verified are left out before the first LLM call (one line each) and
  // recorded for `rft status` and the report; checked again on every start of the run. An
  // instance the run has already worked on is never left out later (a resumed run must equal an
  // uninterrupted one): if its image went missing since, its verifications stop the run as
  // incomplete, naming the image and how to rebuild it.
  const exclusionsFile = path.join(run.dir, EXCLUDED_FILE);
  const leftOutBefore = run.created ? null : new Set(readExclusions(exclusionsFile).map((e) => e.instance_id));
  // Only instances that still have work are checked (none on a resume of a fully sampled run).
  const doneNow = run.created ? new Set<string>() : new Set(Object.entries(run.readState().phases).filter(([, p]) => p.status === 'done').map(([name]) => name));
  const evalModels = Array.from({ length: recipe.iterations + 1 }, (_, m) => m).filter((m) => m > 0 || recipe.eval.zero_shot);
  const toCheck = instancesWithWork(train, evalSet, { done: doneNow, iterations: recipe.iterations, evalModels });
  const checkedIds = new Set(toCheck.map((i) => i.instance_id));
  const checked = await preflight(toCheck, {
    specFor,
    imageFor,
    dockers: engines ? engines.healthy().map((e) => e.docker) : [docker],
    pull: true,
  });
  // An instance not checked now keeps what the last start found (a begun phase keeps its members).
  const unchecked = leftOutBefore === null ? [] : readExclusions(exclusionsFile).filter((e) => !checkedIds.has(e.instance_id));
  const excluded = leftOutBefore === null ? checked.excluded : [...checked.excluded.filter((e) => leftOutBefore.has(e.instance_id)), ...unchecked];
  for (const e of excluded) options.warn(`left out ${e.instance_id}: ${e.reason}`);
  // Written when it says something new: a resume that changes nothing leaves the file as it was.
  const excludedNow = new Set(excluded.map((e) => e.instance_id));
  if (leftOutBefore === null || excludedNow.size !== leftOutBefore.size || !existsSync(exclusionsFile)) writeExclusions(exclusionsFile, excluded);
  const excludedIds = excludedNow;
  const sampleTrain = train.filter((i) => !excludedIds.has(i.instance_id));
  const sampleEval = evalSet ? evalSet.filter((i) => !excludedIds.has(i.instance_id)) : null;
  // What a phase begun before membership records existed sampled: what its first start kept.
  const leftOutAtFirst = leftOutBefore ?? excludedIds;
  const legacyTrain = train.filter((i) => !leftOutAtFirst.has(i.instance_id));
  const legacyEval = evalSet ? evalSet.filter((i) => !leftOutAtFirst.has(i.instance_id)) : null;
  const joining = writeJoining(run.dir, recipe.iterations, (k) => runLayout.iterationDir(run.dir, k), sampleTrain);
  if (joining) log(`iteration ${joining.iteration} will add ${joining.instance_ids.join(', ')} (left out when iteration ${joining.after} began; a begun iteration keeps its instances)`);

  const models: (string | null)[] = [recipe.policy.model];
  const metrics = MetricsLog.open(run.dir, options.warn);
  // Images this run pulls are recorded before each pull, so remove_after_use (even after a crash
  // and resume) removes those and never an image that was there before (preflight pulls nothing).
  const pulledImages = PulledImages.open(path.join(run.dir, PULLED_IMAGES_FILE), options.warn);
  const common = (iteration: number, model: string | null, startedMs: number, resumed: boolean) => ({
    run: recipe.name,
    iteration,
    model,
    duration_s: (Date.now() - startedMs) / 1000,
    resumed,
  });
  // M_0 answers at policy.base_url (the user's endpoint, or the SIMULATED policy): rft serves nothing for it.
  let served = { baseUrl: endpoint.baseUrls(), model: recipe.policy.model };
  // A fine-tuned model is served when a phase first has work for it, not on every resume: a
  // resumed run whose iteration k is sampled and evaluated starts no server (a vLLM cold start) for M_k.
  let toServe: { model: string; m: number } | null = null;
  const serveModel = (model: string, m: number): void => {
    toServe = { model, m };
    served = { baseUrl: endpoint.baseUrls(), model };
  };
  const ensureServed = async (): Promise<void> => {
    if (toServe === null) return;
    const { model, m } = toServe;
    served = withBaseUrl(await server.serve(model, m), { baseUrl: endpoint.baseUrls(), model });
    toServe = null;
  };

  const doRollout = async (phase: PhaseKey, seedPhase: string, iteration: number, instances: readonly Instance[], samples: number, sampling: { temperature: number; top_p: number }, files: { trajectories: string; verdicts: string }): Promise<RolloutSummary> => {
    crashPoint(CRASH_POINTS.loopPhase, phase);
    if (run.readState().phases[phase]?.status !== 'done') await ensureServed();
    markPhase(run, phase, 'running');
    const startedMs = Date.now();
    let resumed = false;
    // On a cluster, the iteration's shards sample and verify there first; the rollout below then
    // finds everything recorded (it reads the shards' ledgers) and only takes the phase's measures.
    if (recipe.cluster?.kind === 'slurm' && seedPhase.startsWith('iter-') && run.readState().phases[phase]?.status !== 'done') {
      const sharded = await runShardedPhase({
        phaseDir: path.dirname(files.trajectories),
        phase,
        jobName: `rft-${recipe.name}-${seedPhase}`,
        cluster: recipe.cluster,
        ...workerCommand(run.dir, iteration, Math.max(1, Math.min(recipe.cluster.shards, instances.length)), served),
        farEnd: options.slurm ?? new SlurmCommands(),
        log,
        warn: options.warn,
        stopping: options.stopping,
        sleep: (ms) => abortableSleep(ms, options.signal),
      });
      if (!sharded.complete) {
        if (sharded.reason && !options.stopping()) options.warn(sharded.reason);
        return { recorded: 0, infraErrors: 0, verifyErrors: 0, complete: false, abandoned: { trajectories: 0, llm_calls: 0, tokens: { prompt: 0, completion: 0 } } };
      }
    }
    const progress = new PhaseProgress(phase, instances.length * samples, process.stderr);
    const summary = await rollout(
      {
        phase: seedPhase,
        runName: recipe.name,
        runSeed: recipe.seed,
        iteration,
        instances,
        samplesPerInstance: samples,
        sampling,
        agent: recipe.agent,
        encoding: samplingEncoding(recipe.sft.tokenizer),
        trajectoriesFile: files.trajectories,
        verdictsFile: files.verdicts,
      },
      {
        docker,
        engineUrl: recipe.sandbox.docker[0]!.url,
        pulledImages,
        policy: endpoint.client(served.model, served.baseUrl, options.warn),
        imageFor,
        specFor,
        verifyContext,
        ...rolloutSettings(recipe),
        ...(engines ? { engines } : {}),
        stopping: options.stopping,
        warn: options.warn,
        log,
        progress: (event: RolloutEvent) => {
          if (event.kind === 'recorded') {
            resumed = progress.recorded(event.trajectories, event.verdicts, event.gauges) > 0;
          }
          if (event.kind === 'trajectory') progress.trajectory(event.trajectory);
          if (event.kind === 'verdict') progress.verdict(event.verdict);
          if (event.kind === 'infra_error') progress.error();
        },
      },
    );
    progress.finish();
    if (summary.abandoned.trajectories > 0) recordStop(run.dir, { phase: seedPhase, stopped_at: new Date().toISOString(), ...summary.abandoned }, options.warn);
    if (summary.complete) {
      const kind = seedPhase.startsWith('eval') ? 'eval' : 'sample';
      const heads = (function* () {
        for (const { head } of readTrajectoryHeads(files.trajectories)) yield head;
      })();
      metrics.append(rolloutMetrics(kind, common(iteration, served.model, startedMs, resumed), heads, readRecords(files.verdicts, VerdictSchema)));
      // Kept for `rft status`, which otherwise counts the phase's ledgers (GBs at SWE-Gym size) on every call.
      phaseCounts(files.trajectories, files.verdicts);
    }
    markPhase(run, phase, summary.complete ? 'done' : 'running');
    return summary;
  };

  const evalModel = async (m: number): Promise<boolean> => {
    if (!sampleEval) return true;
    const dir = runLayout.evalDir(run.dir, m);
    const members = fixMembership(dir, path.join(dir, 'trajectories.jsonl'), evalSet!, sampleEval, legacyEval!);
    log(`eval of M${m} (${served.model}) on ${members.length} instances at temperature ${recipe.eval.temperature}`);
    const summary = await doRollout(`eval/m${m}`, `eval-m${m}`, m, members, recipe.eval.samples, { temperature: recipe.eval.temperature, top_p: 1 }, {
      trajectories: path.join(dir, 'trajectories.jsonl'),
      verdicts: path.join(dir, 'verdicts.jsonl'),
    });
    if (!summary.complete || !recipe.eval.verifier) return summary.complete;
    // Best-of-n: every candidate scored by the learned verifier (src/orm/).
    markPhase(run, `eval/m${m}/score`, 'running');
    const scored = await scoreEvalPhase({ recipe, evalDir: dir, instances: members, simBaseUrl: endpoint.simulated ? endpoint.baseUrls()[0]! : null, stopping: options.stopping, log, warn: options.warn });
    markPhase(run, `eval/m${m}/score`, scored?.complete ? 'done' : 'running');
    return scored?.complete ?? true;
  };

  const finish = (status: LoopStatus, reason: string | null = null): LoopResult => {
    const rows = summarizeRun(run.dir, recipe.iterations, recipe.select.cap, models);
    return { status, rows, table: formatTable(rows, recipe.select.cap), simRequests: endpoint.simRequests(), reason };
  };

  // A fork shares iterations before this one whole (their datasets, fine-tunes and evals).
  const inherited = run.meta.forked_from?.from_iteration ?? 0;
  try {
    // Nothing to sample: stop before anything is served or evaluated (no iteration could train).
    if (sampleTrain.length === 0 && inherited < recipe.iterations) return finish('nothing_to_train', nothingToSample(train.length, excluded, exclusionsFile, run.dir));
    if (evalSet && recipe.eval.zero_shot && !(await evalModel(0))) return finish(options.stopping() ? 'stopped' : 'incomplete', 'the zero-shot eval has samples or verdicts left to retry');

    for (let k = 0; k < recipe.iterations; k++) {
      if (options.stopping()) return finish('stopped');
      const carriedBefore = readCarriedForward(run.dir, k);
      if (k < inherited && carriedBefore) {
        models[k + 1] = carriedBefore.model;
        continue;
      }
      if (k < inherited) {
        const job = readJob(runLayout.finetuneDir(run.dir, k));
        if (job?.status !== 'succeeded' || !job.output_model) throw new Error(`iteration ${k} was shared from ${run.meta.forked_from!.run_dir} without a finished fine-tune`);
        models[k + 1] = job.output_model;
        serveModel(job.output_model, k + 1);
        continue;
      }
      // Fixed when the iteration begins: an instance that passes preflight only on a later start joins the next iteration.
      const members = fixMembership(runLayout.iterationDir(run.dir, k), runLayout.trajectories(run.dir, k), train, sampleTrain, legacyTrain);
      log(`iteration ${k}: sampling ${recipe.sampling.samples_per_task} trajectories per task from M${k} (${served.model}) on ${members.length} instances`);
      const sampled = await doRollout(`iter-${k}/sample`, `iter-${k}`, k, members, recipe.sampling.samples_per_task, { temperature: recipe.sampling.temperature, top_p: recipe.sampling.top_p }, {
        trajectories: runLayout.trajectories(run.dir, k),
        verdicts: runLayout.verdicts(run.dir, k),
      });
      if (!sampled.complete) {
        if (options.stopping()) return finish('stopped', 'stopped by the user; everything recorded is kept');
        return finish('incomplete', `iteration ${k}: ${sampled.infraErrors} samples and ${sampled.verifyErrors} verifications hit infrastructure errors`);
      }
      if (options.stopAfterSampling === k) return finish('sampled', `stopped after sampling iteration ${k}, as asked`);

      crashPoint(CRASH_POINTS.loopPhase, `iter-${k}/select`);
      const selectStarted = Date.now();
      const manifest = emitDataset(run, loaded, k, specFor, train);
      metrics.append(selectMetrics(common(k, served.model, selectStarted, false), manifest));
      log(`iteration ${k}: dataset (cap ${recipe.select.cap ?? 'none'}): ${manifest.counts.kept_after_cap} trajectories kept, ${manifest.counts.examples} examples`);
      const verifierData = emitVerifierData(run, loaded, k, train);
      if (verifierData) log(`iteration ${k}: verifier data: ${verifierData.labels.yes} YES, ${verifierData.labels.no} NO examples from iterations ${verifierData.sources.map((s) => s.iteration).join(', ')}`);
      markPhase(run, `iter-${k}/select`, 'done');

      // Never a trainer on an empty file. An iteration carried forward stays so on resume (the next
      // iteration sampled from M_k), even if a changed recipe would now keep something.
      if (carriedBefore || manifest.counts.examples === 0) {
        const why = carriedBefore?.reason ?? nothingKept(k, manifest);
        if (!carriedBefore && recipe.finetune.on_empty === 'stop') {
          return finish('nothing_to_train', `iteration ${k}: nothing to train on, the trainer was not started: ${why}. To go on, sample more (raise sampling.samples_per_task, then rft run <recipe> --allow-recipe-change) or set finetune.on_empty: carry_forward to keep M${k} as M${k + 1}`);
        }
        const carried = recordCarriedForward(run.dir, { iteration: k, model: models[k]!, reason: why });
        markPhase(run, `iter-${k}/finetune`, 'done');
        models[k + 1] = carried.model;
        // M_{k+1} has M_k's weights: still served, and not evaluated again (eval/m<k> is its eval).
        log(`iteration ${k}: nothing to train on (${why}); M${k + 1} is M${k} carried forward (${carried.model}), not evaluated again`);
        continue;
      }

      if (options.stopping()) return finish('stopped');
      crashPoint(CRASH_POINTS.loopPhase, `iter-${k}/finetune`);
      markPhase(run, `iter-${k}/finetune`, 'running');
      const finetuneStarted = Date.now();
      const job = await trainer.run(
        {
          iteration: k,
          dataset: path.join(runLayout.datasetDir(run.dir, k, recipe.select.cap), DATASET_FILE),
          datasetSha256: manifest.file.sha256,
          baseModel: trainingStart(recipe, models[k]!),
          outputDir: runLayout.finetuneDir(run.dir, k),
          runDir: run.dir,
          recipeHash: loaded.hash,
          runName: recipe.name,
          signal: options.signal,
          retryFailed: options.retryFailed ?? false,
        },
        // No state lines here: the trainer tells each of its steps once, in order (started / re-attaching /
        // the API job's statuses / succeeded); printing the record's states too said `running` twice, before the start line.
      );
      markPhase(run, `iter-${k}/finetune`, 'done');
      metrics.append(finetuneMetrics(common(k, job.base_model, finetuneStarted, Date.parse(job.started_at) < finetuneStarted - 1000), job));
      const next = job.output_model!;
      models[k + 1] = next;
      log(`iteration ${k}: fine-tuned M${k + 1} = ${next}`);

      crashPoint(CRASH_POINTS.loopPhase, `serve/m${k + 1}`);
      serveModel(next, k + 1);
      if (!(await evalModel(k + 1))) return finish(options.stopping() ? 'stopped' : 'incomplete', `the eval of M${k + 1} has samples or verdicts left to retry`);
    }
    return finish('complete');
  } finally {
    metrics.close();
    pulledImages.close();
    await server.stop().catch((err: unknown) => options.warn(`stopping the model server: ${(err as Error).message}`));
    await endpoint.close();
    await reapContainers(docker, { [LABEL.run]: recipe.name, [RUN_DIR_LABEL]: run.dir }).catch(() => 0);
  }
}

/**
 * Selects iteration k's successes (and earlier iterations' when accumulating) and writes the SFT
 * dataset, streaming from the ledgers: record heads are scanned, only the kept trajectories are
 * read back whole, one at a time (memory never grows with the ledgers).
 */
function emitDataset(run: RunDir, loaded: LoadedRecipe, k: number, specFor: (instance: Instance) => EvalSpec, train: readonly Instance[]): DatasetManifest {
  const recipe = run.recipe;
  const byId = new Map(train.map((i) => [i.instance_id, i]));
  const keyOf = (t: TrajectoryHead, hash: string) => verdictKey(t.instance_id, hash, specHash(specFor(byId.get(t.instance_id)!)));
  const included = recipe.sft.accumulate ? range(k + 1) : [k];
  const options = exampleOptionsOf(loaded);
  const dir = runLayout.datasetDir(run.dir, k, recipe.select.cap);
  const manifest = emitDatasetFromLedgers({
    dir,
    recipe_hash: loaded.hash,
    iteration: k,
    iterations: included.map((i) => ({ iteration: i, trajectoriesFile: runLayout.trajectories(run.dir, i), verdictsFile: runLayout.verdicts(run.dir, i) })),
    select: { ...recipe.select, seed: recipe.seed },
    examples: options,
    verdictKeyOf: keyOf,
  });
  // rft sft check after each emit: the data as the recipe's trainer reads it; a problem stops the run here.
  assertDatasetReadable(path.join(dir, DATASET_FILE), options);
  return manifest;
}

/** The `rft worker` command of an iteration's shards (the array task adds --shard), with this process's node and rft. */
function workerCommand(runDir: string, iteration: number, shards: number, served: { baseUrl: string[]; model: string }): { shards: number; worker: string[] } {
  const main = path.resolve(import.meta.dirname, '..', 'cli', 'main.js');
  const urls = served.baseUrl.flatMap((url) => ['--base-url', url]);
  return { shards, worker: [process.execPath, main, 'worker', '--run', path.resolve(runDir), '--iteration', String(iteration), '--shards', String(shards), '--model', served.model, ...urls] };
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/** Why no iteration can sample: every train instance was left out by preflight (or none was selected). */
function nothingToSample(trainCount: number, excluded: readonly { instance_id: string; reason: string }[], exclusionsFile: string, runDir: string): string {
  if (trainCount === 0) return 'the train task set selects no instance: check tasks.train (path, ids_file, repos, limit)';
  const shown = excluded.slice(0, 5).map((e) => `${e.instance_id} (${e.reason})`).join('; ');
  return (
    `no train instance to sample: all ${trainCount} were left out before sampling (listed in ${exclusionsFile} and by rft status): ${shown}${excluded.length > 5 ? '; …' : ''}. ` +
    `Make their images available (rft tasks build-images <tasks file>, or a registry the engine can pull from), then rft resume ${runDir}`
  );
}

/** Why selection kept nothing to train on, from the dataset's manifest. */
function nothingKept(k: number, manifest: DatasetManifest): string {
  const c = manifest.counts;
  if (c.resolved === 0) return `no trajectory of iteration ${k} resolved its task (${c.trajectories_in} trajectories on ${manifest.instances.in_pool} instances)`;
  if (c.successes === 0) return `none of the ${c.resolved} trajectories of iteration ${k} that resolved their task finished (select.require_finished)`;
  return `the ${c.kept_after_cap} trajectories kept gave no example (${c.over_max_tokens} over sft.max_tokens, ${c.invalid_call} invalid calls)`;
}

/** What iteration k's fine-tune starts from: the recipe's base weights, or M_k. */
function trainingStart(recipe: Recipe, current: string): string {
  return recipe.finetune.start_from === 'previous' && current !== recipe.policy.model ? current : recipe.finetune.base_model;
}

function withBaseUrl(servedModel: { baseUrl: string[] | null; model: string }, fallback: { baseUrl: string[]; model: string }): { baseUrl: string[]; model: string } {
  return { baseUrl: servedModel.baseUrl ?? fallback.baseUrl, model: servedModel.model };
}

function markPhase(run: RunDir, phase: PhaseKey, status: 'running' | 'done'): void {
  const state = run.readState();
  if (state.phases[phase]?.status === status) return;
  run.writeState({ ...state, phases: { ...state.phases, [phase]: { status, updated_at: new Date().toISOString(), note: null } } });
}

function uniqueTasks(instances: readonly Instance[]): Instance[] {
  return [...new Map(instances.map((i) => [i.instance_id, i])).values()];
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
