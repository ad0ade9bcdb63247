import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { EXCLUDED_FILE, readExclusions } from '../verify/preflight.js';
import { TrajectorySchema, type Trajectory } from '../agent/trajectory.js';
import { FINETUNE_FILE, FinetuneJobSchema, type FinetuneJob } from '../finetune/job.js';
import { readCarriedForward } from '../loop/carry-forward.js';
import { loadRunRecipe } from '../loop/run-recipe.js';
import { runLayout } from '../loop/layout.js';
import type { Recipe } from '../recipe/schema.js';
import { capComparisonRow, CapComparisonRowSchema, type CapComparisonRow, type SuccessTest } from '../select/compare.js';
import { addVerdict, compareRefs, duplicateRecord, poolEntryOf, successTest, trajectoryKey, type PoolEntry } from '../select/pool.js';
import { selectTrajectories } from '../select/select.js';
import { buildExamples } from '../sft/examples.js';
import { DatasetManifestSchema, manifestSelectOptions, type DatasetManifest } from '../sft/manifest.js';
import { MANIFEST_FILE } from '../sft/files.js';
import type { LedgerLocation } from '../store/ledger.js';
import { readTrajectoriesAt, readTrajectoryHeads, type TrajectoryHead } from '../store/trajectories.js';
import { readVerdictsStreaming, type VerdictOutcome } from '../select/scan.js';
import { RUN_FILES, RunMetaSchema } from '../store/run-dir.js';
import { normalizePatch, patchHash } from '../verify/patch.js';
import { EMPTY_PATCH_HASH, isFinal, VerdictSchema, verdictKey, type Verdict } from '../verify/verdict.js';
import { gatherScaling, ScalingCurveSchema } from './scaling-data.js';
import { distribution, DistributionSchema, histogram, HistogramSchema, ratio } from './stats.js';

/**
 * Everything the report shows, read from the ledgers of one or more run directories (design §8)
 * and nothing else: no number is typed in. Gathering only reads (no lock is taken), so it also
 * works on a run in progress; what is not there yet is null or absent.
 */

const Count = z.number().int().nonnegative();
const Rate = z.number().min(0).max(1).nullable();

/** One rollout: the train sampling of iteration k (model M_k) or the eval of model M_m. */
export const RolloutStatsSchema = z.object({
  kind: z.enum(['train', 'eval']),
  /** k of M_k: the sampled iteration for `train`, the evaluated model for `eval`. */
  model_index: Count,
  /** Folder of the ledgers, relative to the run directory. */
  folder: z.string(),
  /** Model names the trajectories record (normally one). */
  models: z.array(z.string()),
  /** Sampling temperatures the trajectories record (normally one). */
  temperatures: z.array(z.number()),
  trajectory_records: Count.describe('Lines of trajectories.jsonl'),
  infrastructure_records: Count.describe('Records of infrastructure errors: not data, retried on resume'),
  samples: Count.describe('Trajectories that are data: trajectory_records - infrastructure_records'),
  instances: Count,
  resolved: Count.describe('Samples whose patch has verdict `resolved`'),
  successes: Count.describe('Resolved and finished (the training data before the cap)'),
  resolve_rate: Rate.describe('resolved / samples'),
  empty_patch: Count.describe('Samples whose normalised patch is empty'),
  empty_patch_rate: Rate,
  model_errors: Count.describe('Samples that ended in an error blamed on the model (limits, retries exhausted)'),
  model_error_rate: Rate,
  unverified: Count.describe('Samples without a final verdict yet (none, or only `error` ones)'),
  verdict_records: Count.describe('Lines of verdicts.jsonl'),
  verdict_errors: Count.describe('Verdict records with outcome `error` (the harness failed; retried on resume)'),
  verdict_error_rate: Rate.describe('verdict_errors / verdict_records'),
  repeated_errors: Count.default(0).describe(
    'Samples whose patch has verdict `repeated_error` (the harness failed on it sandbox.max_error_attempts times): final, counted as unresolved, not the model\'s failure',
  ),
});
export type RolloutStats = z.infer<typeof RolloutStatsSchema>;

/** How many of the N samples of each instance succeeded, in one train iteration. */
export const SuccessCountsSchema = z.object({
  iteration: Count,
  samples_per_instance: Count.describe('N: the recipe\'s samples_per_task (or more, if a ledger holds more)'),
  instances: Count,
  bins: z.array(z.object({ successes: Count, instances: Count })),
});
export type SuccessCounts = z.infer<typeof SuccessCountsSchema>;

/** LLM calls per trajectory in one train iteration, successes vs failures (samples with a final verdict). */
export const CallsByOutcomeSchema = z.object({
  iteration: Count,
  success: DistributionSchema,
  failure: DistributionSchema,
});
export type CallsByOutcome = z.infer<typeof CallsByOutcomeSchema>;

/** One dataset folder iter-<k>/datasets/<name>/ and what its manifest and a recomputation say. */
export const DatasetReportSchema = z.object({
  folder: z.string(),
  iteration: Count,
  iterations_included: z.array(Count),
  cap: z.number().int().positive().nullable(),
  order: z.string(),
  dedup: z.boolean(),
  unit: z.string(),
  max_tokens: Count,
  /** The dataset the run itself trained on (its recipe's cap). */
  trained_on: z.boolean(),
  manifest: z.object({
    trajectories_in: Count,
    successes: Count,
    /** Resolved runs whose verdict carries tampering, and those dropped for it (0 in manifests older than the check). */
    tampered: Count,
    tampering_dropped: Count,
    over_cap: Count,
    kept: Count,
    examples: Count,
    invalid_call: Count,
    over_max_tokens: Count,
    instances_in_pool: Count,
    instances_with_success: Count,
    instances_covered: Count,
    mean_llm_calls: z.number().nullable(),
    tokens_total: Count,
    mean_tokens_per_example: z.number().nullable(),
    max_tokens_per_example: Count.nullable(),
  }),
  /** capComparisonRow over the pool, re-selected with the manifest's options; null when it could not be recomputed. */
  comparison: CapComparisonRowSchema.nullable(),
  /** Tokens of each SFT example (tokens.per_call of the kept trajectories' valid calls, as buildExamples counts them). */
  example_tokens: HistogramSchema.nullable(),
  problems: z.array(z.string()),
});
export type DatasetReport = z.infer<typeof DatasetReportSchema>;

export const FinetuneReportSchema = z.object({
  iteration: Count,
  attempt: z.number().int().positive(),
  file: z.string(),
  backend: z.string(),
  status: z.string(),
  base_model: z.string(),
  output_model: z.string().nullable(),
  error: z.string().nullable(),
  started_at: z.string(),
  finished_at: z.string().nullable(),
  duration_s: z.number().nonnegative().nullable(),
  /** The API job id (openai backend). */
  job_id: z.string().nullable(),
});
export type FinetuneReport = z.infer<typeof FinetuneReportSchema>;

export const RunReportSchema = z.object({
  dir: z.string(),
  name: z.string(),
  /** Unique among the runs of the report: the name, or name (folder) when names repeat. */
  label: z.string(),
  recipe_hash: z.string(),
  created_at: z.string().nullable(),
  /** The policy is the project's SIMULATED policy (a test double, not a model). */
  simulated_policy: z.boolean(),
  /** The run holds models of the SIMULATED trainer (sim-models/). */
  simulated_trainer: z.boolean(),
  settings: z.object({
    iterations: z.number().int().positive(),
    samples_per_task: z.number().int().positive(),
    temperature: z.number(),
    eval_samples: z.number().int().positive().nullable(),
    eval_temperature: z.number().nullable(),
    cap: z.number().int().positive().nullable(),
    order: z.string(),
    dedup: z.boolean(),
    unit: z.string(),
    max_tokens: Count,
    accumulate: z.boolean(),
    finetune_backend: z.string(),
    start_from: z.string(),
  }),
  /** M_0 .. M_iterations: the base policy, then each succeeded fine-tune's output (null when not there yet). */
  models: z.array(z.string().nullable()),
  train: z.array(RolloutStatsSchema),
  eval: z.array(RolloutStatsSchema),
  success_counts: z.array(SuccessCountsSchema),
  llm_calls: z.array(CallsByOutcomeSchema),
  datasets: z.array(DatasetReportSchema),
  finetunes: z.array(FinetuneReportSchema),
  /** Instances left out before sampling (their image cannot be had, they cannot be verified; excluded.json). */
  excluded_instances: Count.default(0),
  /** Inference-time scaling per eval pool with several candidates per instance (best-of-n). */
  scaling: z.array(ScalingCurveSchema).default([]),
  warnings: z.array(z.string()),
});
export type RunReport = z.infer<typeof RunReportSchema>;

export const ReportDataSchema = z.object({
  format: z.literal('rft-report/1'),
  generated_at: z.string(),
  runs: z.array(RunReportSchema).min(1),
});
export type ReportData = z.infer<typeof ReportDataSchema>;

export interface GatherOptions {
  /** The clock for `generated_at` (tests pin it). */
  now?: () => Date;
}

/** Reads the ledgers of every run directory into one validated ReportData record. */
export function gatherReport(runDirs: readonly string[], options: GatherOptions = {}): ReportData {
  if (runDirs.length === 0) throw new Error('name at least one run directory');
  const runs = runDirs.map((dir) => gatherRun(path.resolve(dir)));
  const names = new Map<string, number>();
  for (const r of runs) names.set(r.name, (names.get(r.name) ?? 0) + 1);
  for (const r of runs) if (names.get(r.name)! > 1) r.label = `${r.name} (${r.dir})`;
  return ReportDataSchema.parse({ format: 'rft-report/1', generated_at: (options.now ?? (() => new Date()))().toISOString(), runs });
}

/**
 * One rollout's ledgers as the report needs them, read record by record (a ledger may be
 * gigabytes): the pool, where each entry's record is (to read kept ones back), and counts.
 */
export interface Ledgers {
  trajectoriesFile: string;
  pool: PoolEntry[];
  locations: Map<string, LedgerLocation>;
  records: number;
  infrastructure: number;
  modelErrors: number;
  models: Set<string>;
  temperatures: Set<number>;
  verdictRecords: number;
  verdictErrors: number;
}

/**
 * The verdict cache key of a trajectory. The key holds the eval spec's hash, which only the task
 * set knows; the report reads ledgers only, so it takes the spec hash the run's own verdicts
 * recorded for this (instance, patch) — a final one when there is one, as the pool does.
 */
export function readLedgers(trajectoriesFile: string, verdictsFile: string): Ledgers {
  const spec = new Map<string, VerdictOutcome>();
  const byKey = new Map<string, Pick<Verdict, 'outcome'>>();
  let verdictRecords = 0;
  let verdictErrors = 0;
  readVerdictsStreaming(verdictsFile, (v) => {
    verdictRecords += 1;
    if (v.outcome === 'error') verdictErrors += 1;
    const key = `${v.instance_id}@${v.patch_hash}`;
    const seen = spec.get(key);
    if (seen === undefined || (!isFinal(seen.outcome) && isFinal(v.outcome))) spec.set(key, v);
    addVerdict(byKey, v, (kept) => ({ outcome: kept.outcome }));
  });
  const keyOf = (t: TrajectoryHead, hash: string) => verdictKey(t.instance_id, hash, spec.get(`${t.instance_id}@${hash}`)?.spec_hash ?? 'no-verdict');

  const entries = new Map<string, PoolEntry>();
  const locations = new Map<string, LedgerLocation>();
  const out = { records: 0, infrastructure: 0, modelErrors: 0, models: new Set<string>(), temperatures: new Set<number>() };
  for (const { head, at } of readTrajectoryHeads(trajectoriesFile)) {
    out.records += 1;
    out.models.add(head.model);
    out.temperatures.add(head.temperature);
    const entry = poolEntryOf(head, byKey, keyOf);
    if (entry === null) {
      out.infrastructure += 1;
      continue;
    }
    if (head.outcome.status === 'error' && head.outcome.fault === 'model') out.modelErrors += 1;
    const key = trajectoryKey(entry);
    if (entries.has(key)) throw duplicateRecord(entry);
    entries.set(key, entry);
    locations.set(key, at);
  }
  return { trajectoriesFile, pool: [...entries.values()].sort(compareRefs), locations, ...out, verdictRecords, verdictErrors };
}

function rolloutStats(kind: 'train' | 'eval', modelIndex: number, folder: string, ledgers: Ledgers, pool: readonly PoolEntry[], success: SuccessTest): RolloutStats {
  const samples = pool.length;
  const resolved = pool.filter((e) => e.verdict === 'resolved').length;
  const emptyPatch = pool.filter((e) => e.patch_hash === EMPTY_PATCH_HASH).length;
  const modelErrors = ledgers.modelErrors;
  const verdictErrors = ledgers.verdictErrors;
  return {
    kind,
    model_index: modelIndex,
    folder,
    models: [...ledgers.models].sort(),
    temperatures: [...ledgers.temperatures].sort((a, b) => a - b),
    trajectory_records: ledgers.records,
    infrastructure_records: ledgers.infrastructure,
    samples,
    instances: new Set(pool.map((e) => e.instance_id)).size,
    resolved,
    successes: pool.filter(success).length,
    resolve_rate: ratio(resolved, samples),
    empty_patch: emptyPatch,
    empty_patch_rate: ratio(emptyPatch, samples),
    model_errors: modelErrors,
    model_error_rate: ratio(modelErrors, samples),
    unverified: pool.filter((e) => e.verdict === null || !isFinal(e.verdict)).length,
    verdict_records: ledgers.verdictRecords,
    verdict_errors: verdictErrors,
    verdict_error_rate: ratio(verdictErrors, ledgers.verdictRecords),
    repeated_errors: pool.filter((e) => e.verdict === 'repeated_error').length,
  };
}

function successCounts(iteration: number, pool: readonly PoolEntry[], samplesPerTask: number, success: SuccessTest): SuccessCounts {
  const perInstance = new Map<string, { samples: number; successes: number }>();
  for (const e of pool) {
    const s = perInstance.get(e.instance_id) ?? { samples: 0, successes: 0 };
    s.samples += 1;
    if (success(e)) s.successes += 1;
    perInstance.set(e.instance_id, s);
  }
  const n = Math.max(samplesPerTask, ...[...perInstance.values()].map((s) => s.samples));
  const bins = Array.from({ length: n + 1 }, (_, successes) => ({ successes, instances: 0 }));
  for (const s of perInstance.values()) bins[s.successes]!.instances += 1;
  return { iteration, samples_per_instance: n, instances: perInstance.size, bins };
}

function callsByOutcome(iteration: number, pool: readonly PoolEntry[], success: SuccessTest): CallsByOutcome {
  const verified = pool.filter((e) => e.verdict !== null && isFinal(e.verdict));
  return {
    iteration,
    success: distribution(verified.filter(success).map((e) => e.llm_calls)),
    failure: distribution(verified.filter((e) => !success(e)).map((e) => e.llm_calls)),
  };
}

export function iterationFolders(runDir: string): number[] {
  return readdirSync(runDir)
    .map((name) => /^iter-(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null && statSync(path.join(runDir, m[0])).isDirectory())
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

function gatherRun(runDir: string): RunReport {
  const metaFile = path.join(runDir, RUN_FILES.meta);
  const meta = existsSync(metaFile) ? RunMetaSchema.parse(JSON.parse(readFileSync(metaFile, 'utf8'))) : null;
  const { recipe, hash } = loadRunRecipe(runDir, []);
  // Successes as the run's own selection counts them (select.require_finished).
  const success = successTest(recipe.select.require_finished, recipe.select.allow_tampering);
  const warnings: string[] = [];
  const rel = (file: string) => path.relative(runDir, file) || '.';

  const trainLedgers = new Map<number, Ledgers>();
  const ledgersOf = (k: number): Ledgers => {
    let l = trainLedgers.get(k);
    if (!l) {
      l = readLedgers(runLayout.trajectories(runDir, k), runLayout.verdicts(runDir, k));
      trainLedgers.set(k, l);
    }
    return l;
  };
  const trainPools = new Map<number, PoolEntry[]>();
  const poolAt = (k: number): PoolEntry[] => {
    let p = trainPools.get(k);
    if (!p) {
      p = ledgersOf(k).pool;
      trainPools.set(k, p);
    }
    return p;
  };

  const folders = iterationFolders(runDir);
  const lastIteration = Math.max(recipe.iterations - 1, ...folders);

  // Fine-tune records: the current one of each iteration and the failed attempts set aside.
  const finetunes: FinetuneReport[] = [];
  const succeeded = new Map<number, string>();
  for (const k of folders) {
    const dir = runLayout.finetuneDir(runDir, k);
    if (!existsSync(dir)) continue;
    const files = readdirSync(dir)
      .filter((name) => name === FINETUNE_FILE || /^finetune\.failed-\d+\.json$/.test(name))
      .map((name) => path.join(dir, name));
    for (const file of files) {
      const parsed = FinetuneJobSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
      if (!parsed.success) {
        warnings.push(`${rel(file)} is not a fine-tune record: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
        continue;
      }
      const job = parsed.data;
      finetunes.push(finetuneReport(job, rel(file)));
      if (path.basename(file) === FINETUNE_FILE && job.status === 'succeeded' && job.output_model) succeeded.set(k, job.output_model);
    }
  }
  finetunes.sort((a, b) => a.iteration - b.iteration || a.attempt - b.attempt);
  // Iterations that trained nothing (finetune.on_empty: carry_forward): M_k+1 is M_k.
  for (const k of folders) {
    const carried = readCarriedForward(runDir, k);
    if (!carried) continue;
    succeeded.set(k, carried.model);
    warnings.push(`iter-${k}: nothing was trained (${carried.reason}); M${k + 1} is M${k} carried forward (${carried.model}), not evaluated again`);
  }

  // Train rollouts (M_k sampling at temperature T).
  const train: RolloutStats[] = [];
  const success_counts: SuccessCounts[] = [];
  const llm_calls: CallsByOutcome[] = [];
  for (const k of folders) {
    if (!existsSync(runLayout.trajectories(runDir, k))) continue;
    const pool = poolAt(k);
    const stats = rolloutStats('train', k, rel(runLayout.iterationDir(runDir, k)), ledgersOf(k), pool, success);
    train.push(stats);
    if (stats.unverified > 0) warnings.push(`iter-${k}: ${plural(stats.unverified, 'sample has', 'samples have')} no final verdict yet`);
    if (stats.infrastructure_records > 0) {
      warnings.push(`iter-${k}: ${plural(stats.infrastructure_records, 'trajectory record is an infrastructure error', 'trajectory records are infrastructure errors')} (not data; retried on resume)`);
    }
    success_counts.push(successCounts(k, pool, recipe.sampling.samples_per_task, success));
    llm_calls.push(callsByOutcome(k, pool, success));
  }

  // Eval rollouts (M_m at the eval temperature), m = 0 the zero-shot base model.
  const evalStats: RolloutStats[] = [];
  const evalRoot = path.join(runDir, 'eval');
  const evalIndices = existsSync(evalRoot)
    ? readdirSync(evalRoot)
        .map((name) => /^m(\d+)$/.exec(name))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => Number(m[1]))
        .sort((a, b) => a - b)
    : [];
  for (const m of evalIndices) {
    const dir = runLayout.evalDir(runDir, m);
    if (!existsSync(path.join(dir, 'trajectories.jsonl'))) continue;
    const ledgers = readLedgers(path.join(dir, 'trajectories.jsonl'), path.join(dir, 'verdicts.jsonl'));
    const stats = rolloutStats('eval', m, rel(dir), ledgers, ledgers.pool, success);
    evalStats.push(stats);
    if (stats.unverified > 0) warnings.push(`eval/m${m}: ${plural(stats.unverified, 'sample has', 'samples have')} no final verdict yet`);
    if (stats.infrastructure_records > 0) {
      warnings.push(`eval/m${m}: ${plural(stats.infrastructure_records, 'trajectory record is an infrastructure error', 'trajectory records are infrastructure errors')} (not data; retried on resume)`);
    }
  }

  const excluded = readExclusions(path.join(runDir, EXCLUDED_FILE));
  if (excluded.length > 0) {
    warnings.push(`${plural(excluded.length, 'instance was', 'instances were')} left out before sampling: ${excluded.map((e) => `${e.instance_id} (${e.reason})`).join('; ')}`);
  }

  const modelCount = Math.max(recipe.iterations, lastIteration + 1, ...evalIndices) + 1;
  const models: (string | null)[] = Array.from({ length: modelCount }, (_, m) => {
    if (m === 0) return recipe.policy.model;
    const trained = succeeded.get(m - 1);
    if (trained) return trained;
    const seen = evalStats.find((e) => e.model_index === m)?.models ?? train.find((t) => t.model_index === m)?.models ?? [];
    return seen.length === 1 ? seen[0]! : null;
  });

  // Every dataset folder under iter-*/datasets/.
  const datasets: DatasetReport[] = [];
  for (const k of folders) {
    const root = path.join(runLayout.iterationDir(runDir, k), 'datasets');
    if (!existsSync(root)) continue;
    for (const name of readdirSync(root).sort()) {
      const dir = path.join(root, name);
      if (!statSync(dir).isDirectory()) continue;
      const manifestFile = path.join(dir, MANIFEST_FILE);
      if (!existsSync(manifestFile)) {
        warnings.push(`${rel(dir)} has no ${MANIFEST_FILE} (being written, or not a dataset): left out`);
        continue;
      }
      const parsed = DatasetManifestSchema.safeParse(JSON.parse(readFileSync(manifestFile, 'utf8')));
      if (!parsed.success) {
        warnings.push(`${rel(manifestFile)} is not a dataset manifest: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
        continue;
      }
      datasets.push(datasetReport(parsed.data, rel(dir), runDir, recipe, hash, ledgersOf, poolAt));
    }
  }
  datasets.sort((a, b) => a.iteration - b.iteration || capOrder(a.cap) - capOrder(b.cap) || a.folder.localeCompare(b.folder));

  return {
    dir: runDir,
    name: recipe.name,
    label: recipe.name,
    recipe_hash: hash,
    created_at: meta?.created_at ?? null,
    simulated_policy: recipe.policy.kind === 'simulated',
    simulated_trainer: existsSync(runLayout.simModels(runDir)) && readdirSync(runLayout.simModels(runDir)).length > 0,
    settings: {
      iterations: recipe.iterations,
      samples_per_task: recipe.sampling.samples_per_task,
      temperature: recipe.sampling.temperature,
      eval_samples: recipe.tasks.eval ? recipe.eval.samples : null,
      eval_temperature: recipe.tasks.eval ? recipe.eval.temperature : null,
      cap: recipe.select.cap,
      order: recipe.select.order,
      dedup: recipe.select.dedup,
      unit: recipe.sft.unit,
      max_tokens: recipe.sft.max_tokens,
      accumulate: recipe.sft.accumulate,
      finetune_backend: recipe.finetune.backend,
      start_from: recipe.finetune.start_from,
    },
    models,
    train,
    eval: evalStats,
    success_counts,
    llm_calls,
    datasets,
    finetunes,
    excluded_instances: excluded.length,
    scaling: gatherScaling(runDir, recipe),
    warnings,
  };
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function capOrder(cap: number | null): number {
  return cap ?? Number.MAX_SAFE_INTEGER;
}

function finetuneReport(job: FinetuneJob, file: string): FinetuneReport {
  const started = Date.parse(job.started_at);
  const finished = job.finished_at ? Date.parse(job.finished_at) : Number.NaN;
  return {
    iteration: job.iteration,
    attempt: job.attempt,
    file,
    backend: job.backend,
    status: job.status,
    base_model: job.base_model,
    output_model: job.output_model,
    error: job.error,
    started_at: job.started_at,
    finished_at: job.finished_at,
    duration_s: Number.isFinite(started) && Number.isFinite(finished) && finished >= started ? (finished - started) / 1000 : null,
    job_id: job.openai?.job_id ?? null,
  };
}

/**
 * A dataset folder: its manifest's counts, plus the cap comparison row and the per-example tokens,
 * recomputed by selecting the pool again with the manifest's options (selection and example
 * building are deterministic, so this gives the dataset's own kept trajectories; a mismatch with
 * the manifest is reported as a problem).
 */
function datasetReport(
  manifest: DatasetManifest,
  folder: string,
  runDir: string,
  recipe: Recipe,
  runHash: string,
  ledgersOf: (k: number) => Ledgers,
  poolAt: (k: number) => PoolEntry[],
): DatasetReport {
  const problems: string[] = [];
  if (manifest.recipe_hash !== runHash) problems.push(`made under recipe ${manifest.recipe_hash.slice(0, 12)}…, the run's recipe is now ${runHash.slice(0, 12)}…`);
  let comparison: CapComparisonRow | null = null;
  let exampleTokens: DatasetReport['example_tokens'] = null;
  try {
    const options = manifestSelectOptions(manifest);
    const parts = manifest.iterations_included.map((i) => ({ iteration: i, pool: poolAt(i), selection: selectTrajectories(poolAt(i), options) }));
    // The kept trajectories read back one at a time; their examples counted, never held.
    const exampleOptions = { unit: manifest.unit, max_tokens: manifest.max_tokens, tokenizer: manifest.tokenizer, train_on: manifest.train_on, backend: manifest.backend, tool_arguments: manifest.tool_arguments };
    const perTrajectory = new Map<string, number>();
    const tokens: number[] = [];
    for (const p of parts) {
      const ledgers = ledgersOf(p.iteration);
      const kept = [...p.selection.kept].sort(compareRefs);
      for (const trajectory of readTrajectoriesAt(ledgers.trajectoriesFile, kept.map((e) => ledgers.locations.get(trajectoryKey(e))!))) {
        const examples = buildExamples([trajectory], exampleOptions);
        perTrajectory.set(trajectoryKey(trajectory), examples.examples.length);
        for (const e of examples.examples) tokens.push(e.tokens);
      }
    }
    comparison = capComparisonRow(
      manifest.cap,
      parts.flatMap((p) => p.pool),
      parts.flatMap((p) => p.selection.kept),
      (e) => perTrajectory.get(trajectoryKey(e)) ?? 0,
      successTest(manifest.require_finished, manifest.allow_tampering ?? true),
    );
    exampleTokens = histogram(tokens);
    if (comparison.trajectories !== manifest.counts.kept_after_cap || comparison.examples !== manifest.counts.examples) {
      problems.push(
        `re-selecting the ledgers gives ${comparison.trajectories} trajectories / ${comparison.examples} examples, the manifest says ` +
          `${manifest.counts.kept_after_cap} / ${manifest.counts.examples} (the ledgers changed since?); the easiest share and token histogram come from the re-selection`,
      );
    }
  } catch (err) {
    problems.push(`could not recompute the selection: ${(err as Error).message}`);
  }
  return {
    folder,
    iteration: manifest.iteration,
    iterations_included: manifest.iterations_included,
    cap: manifest.cap,
    order: manifest.order,
    dedup: manifest.dedup,
    unit: manifest.unit,
    max_tokens: manifest.max_tokens,
    trained_on: folder === path.relative(runDir, runLayout.datasetDir(runDir, manifest.iteration, recipe.select.cap)),
    manifest: {
      trajectories_in: manifest.counts.trajectories_in,
      successes: manifest.counts.successes,
      tampered: manifest.counts.tampered ?? 0,
      tampering_dropped: manifest.counts.tampering ?? 0,
      over_cap: manifest.counts.over_cap,
      kept: manifest.counts.kept_after_cap,
      examples: manifest.counts.examples,
      invalid_call: manifest.counts.invalid_call,
      over_max_tokens: manifest.counts.over_max_tokens,
      instances_in_pool: manifest.instances.in_pool,
      instances_with_success: manifest.instances.with_success,
      instances_covered: manifest.instances.kept,
      mean_llm_calls: manifest.llm_calls.mean_per_kept_trajectory,
      tokens_total: manifest.tokens.total,
      mean_tokens_per_example: manifest.tokens.mean_per_example,
      max_tokens_per_example: manifest.tokens.max_per_example,
    },
    comparison,
    example_tokens: exampleTokens,
    problems,
  };
}

