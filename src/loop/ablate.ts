import { existsSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Recipe } from '../recipe/schema.js';
import { capComparisonRow, CapComparisonRowSchema, easiestInstances, EASIEST_FRACTION } from '../select/compare.js';
import { compareRefs, isInfrastructureError, successTest, trajectoryKey, type PoolEntry, type VerdictKeyOf } from '../select/pool.js';
import { readVerdictsStreaming, scanPool } from '../select/scan.js';
import { SelectOptionsSchema, selectTrajectories, type SelectionResult, type SelectOptions } from '../select/select.js';
import { keptPerTokenizer, type ExampleCounts, type ExampleOptions } from '../sft/examples.js';
import { exampleOptionsOf } from '../sft/options.js';
import { writeSelectedDatasets, type ScannedIteration } from '../sft/stream.js';
import { isTiktokenEncoding } from '../sft/tokenizer.js';
import { readTrajectoryHeads, type TrajectoryHead } from '../store/trajectories.js';
import { RUN_FILES } from '../store/run-dir.js';
import type { Instance } from '../tasks/instance.js';
import { selectTaskSet } from '../tasks/select.js';
import { normalizePatch, patchHash } from '../verify/patch.js';
import { buildEvalSpec, specHash } from '../verify/spec.js';
import { isFinal, verdictKey, verdictKeyOf } from '../verify/verdict.js';
import { isNoneWord } from '../util/none-word.js';
import { loadRunRecipe } from './drive.js';
import { runLayout } from './layout.js';

/**
 * `rft select`: the cap ablation of design §6 on a pool that is already sampled and verified.
 * The datasets of other caps (and of dedup / random order) are rebuilt from iteration K's
 * ledgers with the very functions the loop's emit step uses (scanPool → selectTrajectories →
 * writeSelectedDatasets, streaming, every cap in one pass), so no LLM and no container is needed, and the
 * folder of the recipe's own settings comes out byte-identical to the one the loop wrote.
 *
 * Only recorded files are read (run.json, recipe.yaml, the ledgers' whole lines), never the run's
 * lock: this works while another process drives the run. What it writes are dataset folders,
 * each replaced atomically; the loop's own folder is only ever rewritten with the same bytes.
 */

/** A user error of `rft select` (bad option, iteration not ready): printed plainly. */
export class AblateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AblateError';
  }
}

export type Cap = number | null;
export type SelectOrder = SelectOptions['order'];

const ORDERS = SelectOptionsSchema.shape.order.unwrap().options;

/**
 * Parses `--cap 1,2,3,none` (a repeated `--cap` adds to the list): whole numbers ≥ 1 or `none` (or `null`),
 * in the order given, each once. Throws an AblateError naming the bad value.
 */
export function parseCapList(input: string | number | readonly (string | number)[]): Cap[] {
  const parts = (Array.isArray(input) ? input : [input]).flatMap((item) => String(item).split(','));
  const caps: Cap[] = [];
  for (const part of parts) {
    const text = part.trim();
    let cap: Cap;
    if (isNoneWord(text)) cap = null;
    else if (/^\d+$/.test(text) && Number(text) >= 1 && Number.isSafeInteger(Number(text))) cap = Number(text);
    else {
      throw new AblateError(
        `--cap: ${JSON.stringify(text)} is not a cap; give whole numbers of trajectories per instance (1, 2, …) or none, comma-separated, e.g. --cap 1,2,none`,
      );
    }
    if (caps.includes(cap)) throw new AblateError(`--cap: ${cap ?? 'none'} is given twice`);
    caps.push(cap);
  }
  if (caps.length === 0) throw new AblateError('--cap: name at least one cap, e.g. --cap 1,2,none');
  return caps;
}

/** What makes one dataset of the ablation. */
export interface AblateSetting {
  cap: Cap;
  dedup: boolean;
  order: SelectOrder;
}

/**
 * The folder of a setting: `iter-K/datasets/cap-<c>` (runLayout.datasetDir) when dedup and order
 * are the recipe's — the folder the loop writes and fine-tunes on for the recipe's cap — plus a
 * suffix for each that differs from the recipe's: `-dedup` / `-nodedup`, `-random` /
 * `-fewest_calls`. Suffixes are relative to the recipe (not to the schema's defaults), so
 * `cap-<c>` always holds the recipe's settings and a rebuild never overwrites the loop's dataset
 * with a different one.
 */
export function ablateDatasetDir(runDir: string, iteration: number, setting: AblateSetting, recipeSelect: Pick<Recipe['select'], 'dedup' | 'order'>): string {
  let dir = runLayout.datasetDir(runDir, iteration, setting.cap);
  if (setting.dedup !== recipeSelect.dedup) dir += setting.dedup ? '-dedup' : '-nodedup';
  if (setting.order !== recipeSelect.order) dir += `-${setting.order}`;
  return dir;
}

/** One row of the comparison: capComparisonRow plus the setting, per-example tokens and the folder. */
export const AblateRowSchema = CapComparisonRowSchema.extend({
  order: SelectOptionsSchema.shape.order.unwrap(),
  dedup: z.boolean(),
  example_tokens_mean: z.number().nonnegative().nullable().describe('Mean tokens per SFT example (as recorded with the trajectory)'),
  example_tokens_max: z.number().int().nonnegative().nullable().describe('Most tokens of one SFT example'),
  dataset_dir: z.string().describe('The folder written (train.jsonl + manifest.json), absolute'),
  folder: z.string().describe('The same, relative to the run directory'),
  recipe_dataset: z.boolean().describe("The recipe's own settings: the folder the loop writes and fine-tunes on"),
  kept: z
    .array(z.object({ iteration: z.number().int().nonnegative(), instance_id: z.string(), sample_index: z.number().int().nonnegative() }))
    .describe('The kept trajectories, in (instance_id, iteration, sample_index) order'),
});
export type AblateRow = z.infer<typeof AblateRowSchema>;

export interface AblateOptions {
  runDir: string;
  iteration: number;
  caps: readonly Cap[];
  /** Default: the recipe's select.dedup. */
  dedup?: boolean;
  /** Default: the recipe's select.order. */
  order?: SelectOrder;
  /** Tokenizers (encodings or folders) whose kept-example counts are printed beside the recipe's. */
  tokenizers?: readonly string[];
}

export interface AblateResult {
  runDir: string;
  run: string;
  iteration: number;
  /** [iteration], or 0..iteration when the recipe accumulates (as the loop's datasets do). */
  iterationsIncluded: number[];
  settings: { order: SelectOrder; dedup: boolean; seed: number } & ExampleOptions;
  pool: { trajectories: number; successes: number; instances: number; instancesWithSuccess: number };
  /** The easiest instances of the pool (most successes; see easiestInstances). */
  easiest: string[];
  /** One per cap, in the order of `caps`. */
  rows: AblateRow[];
  /** The folders written, in the same order. */
  folders: string[];
  /** Per cap (same order): how many examples each tokenizer keeps under max_tokens. */
  tokenizers: Array<ReturnType<typeof keptPerTokenizer>>;
}

/**
 * Rebuilds iteration K's datasets for each cap (with the given or the recipe's dedup and order)
 * and returns the comparison rows. Throws an AblateError when the iteration is not sampled yet or
 * its sampling is incomplete (samples not recorded, patches without a final verdict): nothing is
 * written then.
 */
export async function rebuildDatasets(options: AblateOptions): Promise<AblateResult> {
  const runDir = path.resolve(options.runDir);
  if (!existsSync(path.join(runDir, RUN_FILES.meta))) throw new AblateError(`${options.runDir} is not a run directory (no ${RUN_FILES.meta})`);
  const loaded = loadRunRecipe(runDir, []);
  const recipe = loaded.recipe;
  const k = options.iteration;
  if (!Number.isInteger(k) || k < 0) throw new AblateError(`--iteration: ${String(k)} is not an iteration number (0, 1, …)`);
  if (k >= recipe.iterations) {
    throw new AblateError(`--iteration: run ${recipe.name} has ${recipe.iterations} iteration(s), numbered 0 to ${recipe.iterations - 1}; there is no iteration ${k}`);
  }
  const caps = parseCapList(options.caps.map((c) => (c === null ? 'none' : String(c))));
  const dedup = options.dedup ?? recipe.select.dedup;
  const order = options.order ?? recipe.select.order;
  if (!ORDERS.includes(order)) throw new AblateError(`--order: ${JSON.stringify(order)} is not one of ${ORDERS.join(', ')}`);

  // The verdict key exactly as the loop computes it (run-loop.ts: specFor / keyOf).
  const train = await selectTaskSet(recipe.tasks.train, loaded.baseDir);
  const byId = new Map(train.map((i) => [i.instance_id, i]));
  const specHashes = new Map<string, string>();
  const specHashOf = (instance: Instance): string => {
    let hash = specHashes.get(instance.instance_id);
    if (hash === undefined) {
      hash = specHash(buildEvalSpec(instance, { timeout_s: recipe.sandbox.test_timeout_s, pythonEnv: recipe.tasks.train.python_env ?? recipe.sandbox.python_env }));
      specHashes.set(instance.instance_id, hash);
    }
    return hash;
  };
  const keyOf: VerdictKeyOf<TrajectoryHead> = (t, hash) => verdictKey(t.instance_id, hash, specHashOf(byId.get(t.instance_id)!));

  const success = successTest(recipe.select.require_finished, recipe.select.allow_tampering);
  const included = recipe.sft.accumulate ? Array.from({ length: k + 1 }, (_, i) => i) : [k];
  // Streamed: the ledgers' record heads are scanned, the kept trajectories read back one at a time.
  const pools: ScannedIteration[] = included.map((i) => readCompleteIteration(runDir, recipe, i, train, keyOf));
  const fullPool: PoolEntry[] = pools.flatMap((p) => p.pool.entries);
  const exampleOptions: ExampleOptions = exampleOptionsOf(loaded);
  const tokenizerSpecs = [...new Set(['cl100k_base', 'o200k_base', exampleOptions.tokenizer, ...(options.tokenizers ?? []).map((t) => (isTiktokenEncoding(t) ? t : path.resolve(t)))])];

  // Every pool is checked and every selection made before anything is written; each dataset
  // folder is then replaced atomically (train.jsonl streamed to a temp file, then renamed).
  const built = caps.map((cap) => {
    const setting: AblateSetting = { cap, dedup, order };
    const parts = pools.map((p) => ({ ...p, selection: selectTrajectories(p.pool.entries, { cap, order, dedup, seed: recipe.seed, require_finished: recipe.select.require_finished }) }));
    return { setting, parts, dir: ablateDatasetDir(runDir, k, setting, recipe.select) };
  });

  // One pass for every cap: a trajectory kept by several is read, built and counted once.
  const perTrajectory = built.map(() => new Map<string, number>());
  // Examples each tokenizer would keep, summed over each cap's kept trajectories as they stream past.
  const tokenizers = built.map(() => tokenizerSpecs.map((tokenizer) => ({ tokenizer, candidates: 0, examples: 0, over_max_tokens: 0 })));
  const manifests = writeSelectedDatasets(
    built.map(({ parts, dir }) => ({ dir, parts })),
    {
      recipe_hash: loaded.hash,
      iteration: k,
      examples: exampleOptions,
      onTrajectory: (t, n, keptBy) => {
        const kept = keptPerTokenizer([t], exampleOptions, tokenizerSpecs);
        for (const o of keptBy) {
          perTrajectory[o]!.set(trajectoryKey(t), n);
          kept.forEach((c, i) => {
            const into = tokenizers[o]![i]!;
            into.candidates += c.candidates;
            into.examples += c.examples;
            into.over_max_tokens += c.over_max_tokens;
          });
        }
      },
    },
  );
  const written = built.map(({ setting, parts, dir }, o) => ({
    row: rowOf(setting, fullPool, parts.map((s) => s.selection), perTrajectory[o]!, manifests[o]!.example_counts, dir, runDir, recipe),
    tokenizers: tokenizers[o]!,
  }));
  const rows = written.map((w) => w.row);

  return {
    runDir,
    run: recipe.name,
    iteration: k,
    iterationsIncluded: included,
    settings: { order, dedup, seed: recipe.seed, ...exampleOptions },
    pool: {
      trajectories: fullPool.length,
      successes: fullPool.filter(success).length,
      instances: new Set(fullPool.map((e) => e.instance_id)).size,
      instancesWithSuccess: new Set(fullPool.filter(success).map((e) => e.instance_id)).size,
    },
    easiest: easiestInstances(fullPool, EASIEST_FRACTION, success),
    rows,
    folders: rows.map((r) => r.dataset_dir),
    tokenizers: written.map((w) => w.tokenizers),
  };
}

function rowOf(
  setting: AblateSetting,
  pool: readonly PoolEntry[],
  selections: readonly SelectionResult[],
  perTrajectory: ReadonlyMap<string, number>,
  counts: Pick<ExampleCounts, 'tokens_mean' | 'tokens_max'>,
  dir: string,
  runDir: string,
  recipe: Recipe,
): AblateRow {
  const kept = selections.flatMap((s) => s.kept);
  const base = capComparisonRow(setting.cap, pool, kept, (entry) => perTrajectory.get(trajectoryKey(entry)) ?? 0, successTest(recipe.select.require_finished, recipe.select.allow_tampering));
  return AblateRowSchema.parse({
    ...base,
    order: setting.order,
    dedup: setting.dedup,
    example_tokens_mean: counts.tokens_mean,
    example_tokens_max: counts.tokens_max,
    dataset_dir: dir,
    folder: path.relative(runDir, dir),
    recipe_dataset: setting.cap === recipe.select.cap && setting.dedup === recipe.select.dedup && setting.order === recipe.select.order,
    kept: [...kept].sort(compareRefs).map((e) => ({ iteration: e.iteration, instance_id: e.instance_id, sample_index: e.sample_index })),
  });
}

const SHOWN = 5;

/**
 * An iteration's ledgers, read without the lock (whole lines only: a line being appended by the
 * driving process is not read) and record by record, checked to be what the loop's rollout calls
 * complete: every (train instance, sample index < samples_per_task) recorded, and every recorded
 * patch with a final verdict under the key the loop uses. Returns its scanned pool.
 */
function readCompleteIteration(runDir: string, recipe: Recipe, k: number, train: readonly Instance[], keyOf: VerdictKeyOf<TrajectoryHead>): ScannedIteration {
  const trajectoriesFile = runLayout.trajectories(runDir, k);
  const shown = path.relative(process.cwd(), trajectoriesFile) || trajectoriesFile;
  const outcomes = new Map<string, { final: boolean }>();
  readVerdictsStreaming(runLayout.verdicts(runDir, k), (v) => {
    const key = verdictKeyOf(v);
    outcomes.set(key, { final: (outcomes.get(key)?.final ?? false) || isFinal(v.outcome) });
  });

  const known = new Set(train.map((i) => i.instance_id));
  const strangers = new Set<string>();
  const recorded = new Set<string>();
  const noVerdict: string[] = [];
  const onlyError: string[] = [];
  let records = 0;
  for (const { head: t } of readTrajectoryHeads(trajectoriesFile)) {
    records += 1;
    if (!known.has(t.instance_id)) {
      strangers.add(t.instance_id);
      continue;
    }
    if (isInfrastructureError(t)) continue;
    recorded.add(sampleName(t.instance_id, t.sample_index));
    const seen = outcomes.get(keyOf(t, patchHash(normalizePatch(t.patch))));
    if (seen === undefined) noVerdict.push(sampleName(t.instance_id, t.sample_index));
    else if (!seen.final) onlyError.push(sampleName(t.instance_id, t.sample_index));
  }
  if (records === 0) {
    throw new AblateError(
      `iteration ${k} of run ${recipe.name} has not been sampled yet (${shown} ${existsSync(trajectoriesFile) ? 'has no whole record' : 'does not exist'}); ` +
        `run or resume the run until iteration ${k} is sampled and verified`,
    );
  }
  if (strangers.size > 0) {
    throw new AblateError(
      `iteration ${k} of run ${recipe.name} has trajectories of ${strangers.size} instance(s) that the recipe's train set does not hold (${list([...strangers])}); ` +
        'their eval spec, and so their verdicts, cannot be looked up',
    );
  }
  const missingSamples = train.flatMap((i) =>
    Array.from({ length: recipe.sampling.samples_per_task }, (_, s) => sampleName(i.instance_id, s)).filter((name) => !recorded.has(name)),
  );
  if (missingSamples.length + noVerdict.length + onlyError.length > 0) {
    const total = train.length * recipe.sampling.samples_per_task;
    const parts = [
      ...(missingSamples.length > 0 ? [`${missingSamples.length} of ${total} samples are not recorded (${list(missingSamples)})`] : []),
      ...(noVerdict.length > 0 ? [`${noVerdict.length} recorded patch(es) have no verdict (${list(noVerdict)})`] : []),
      ...(onlyError.length > 0 ? [`${onlyError.length} recorded patch(es) have only an \`error\` verdict, to be retried (${list(onlyError)})`] : []),
    ];
    throw new AblateError(
      `iteration ${k} of run ${recipe.name} is not completely sampled and verified, so its pool is not final: ${parts.join('; ')}. ` +
        `Finish it first (rft resume ${path.relative(process.cwd(), runDir) || runDir})`,
    );
  }
  return { iteration: k, trajectoriesFile, pool: scanPool(trajectoriesFile, runLayout.verdicts(runDir, k), keyOf) };
}

function sampleName(instanceId: string, sampleIndex: number): string {
  return `${instanceId} #${sampleIndex}`;
}

function list(items: readonly string[]): string {
  return items.length <= SHOWN ? items.join(', ') : `${items.slice(0, SHOWN).join(', ')}, … ${items.length - SHOWN} more`;
}

// ---------------------------------------------------------------------------------------------
// The printed report

const fixed = (value: number | null, digits: number) => (value === null ? '-' : value.toFixed(digits));
const percent = (value: number | null) => (value === null ? '-' : `${(100 * value).toFixed(1)}%`);

/** The comparison table, one row per cap in the order asked; `*` marks the loop's own dataset. */
export function formatAblateTable(rows: readonly AblateRow[]): string {
  const header = ['cap', 'kept', 'examples', 'instances', 'mean calls', 'mean tokens/ex', 'max tokens/ex', `from easiest ${Math.round(EASIEST_FRACTION * 100)}%`, 'dataset'];
  const body = rows.map((r) => [
    String(r.cap ?? 'none'),
    String(r.trajectories),
    String(r.examples),
    `${r.instances_covered}/${r.instances_with_success}`,
    fixed(r.mean_llm_calls, 2),
    fixed(r.example_tokens_mean, 1),
    r.example_tokens_max === null ? '-' : String(r.example_tokens_max),
    percent(r.easiest_share),
    `${r.folder}${r.recipe_dataset ? ' *' : ''}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

/** What `rft select` prints: the pool and settings, the table, and what the marks mean. */
export function formatAblateReport(result: AblateResult): string {
  const s = result.settings;
  const iterations = result.iterationsIncluded.length > 1 ? `iterations ${result.iterationsIncluded.join(', ')} (accumulated)` : `iteration ${result.iteration}`;
  const lines = [
    `run ${result.run}, ${iterations}: ${result.pool.trajectories} trajectories, ${result.pool.successes} successes on ` +
      `${result.pool.instancesWithSuccess} of ${result.pool.instances} instances`,
    `order ${s.order}, dedup ${s.dedup ? 'on' : 'off'}, seed ${s.seed}; unit ${s.unit}, max_tokens ${s.max_tokens} (${s.tokenizer})`,
    '',
    formatAblateTable(result.rows),
    '',
    `easiest ${Math.round(EASIEST_FRACTION * 100)}%: ${result.easiest.length} of ${result.pool.instancesWithSuccess} instance(s) with a success` +
      `${result.easiest.length > 0 ? ` (${list(result.easiest)})` : ''}; instances = covered/with a success`,
  ];
  if (result.rows.some((r) => r.recipe_dataset)) lines.push("* the recipe's own settings: the dataset the loop writes and fine-tunes on");
  lines.push('', `examples kept under max_tokens ${s.max_tokens} by each tokenizer (kept/candidates):`);
  result.rows.forEach((row, i) => {
    const per = result.tokenizers[i] ?? [];
    lines.push(`  cap ${row.cap ?? 'none'}: ${per.map((t) => `${t.tokenizer.split(path.sep).slice(-2).join(path.sep)} ${t.examples}/${t.candidates}`).join(', ')}`);
  });
  return `${lines.join('\n')}\n`;
}

/** The machine-readable form (`rft select --json`). */
export function ablateJson(result: AblateResult): unknown {
  return {
    run: result.run,
    run_dir: result.runDir,
    iteration: result.iteration,
    iterations_included: result.iterationsIncluded,
    settings: result.settings,
    pool: {
      trajectories: result.pool.trajectories,
      successes: result.pool.successes,
      instances: result.pool.instances,
      instances_with_success: result.pool.instancesWithSuccess,
    },
    easiest_instances: result.easiest,
    rows: result.rows,
    folders: result.folders,
    examples_kept_per_tokenizer: result.tokenizers,
  };
}
