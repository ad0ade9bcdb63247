import path from 'node:path';
import { samplingEncoding } from '../sft/tokenizer.js';
import { loadRunRecipe } from '../loop/drive.js';
import { selectTaskSet } from '../tasks/select.js';
import { poolsOfRun, sampledIterations, writeVerifierDataset, type VerifierManifest, type VerifierPool } from './dataset.js';

/** A user error of `rft verifier data` (bad option, nothing sampled yet): printed plainly. */
export class VerifierDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VerifierDataError';
  }
}

export interface VerifierDataFromRunsOptions {
  runDirs: readonly string[];
  /** One iteration of every run, or all of their sampled iterations. */
  iteration: number | 'all';
  /** Default: <first run>/verifier. */
  outDir?: string;
  balance: boolean;
  /** Default: the first run's recipe's verifier.max_tokens, else 16384. */
  maxTokens?: number;
  /** Default: the first run's recipe seed. */
  seed?: number;
}

export const DEFAULT_VERIFIER_MAX_TOKENS = 16384;

/** `rft verifier data`: the pools of the named runs (only their records and task files are read) → dataset. */
export async function verifierDataFromRuns(options: VerifierDataFromRunsOptions): Promise<{ manifest: VerifierManifest; outDir: string }> {
  if (options.runDirs.length === 0) throw new VerifierDataError('name at least one run directory');
  const pools: VerifierPool[] = [];
  let first: ReturnType<typeof loadRunRecipe> | null = null;
  for (const given of options.runDirs) {
    const dir = path.resolve(given);
    const loaded = loadRunRecipe(dir, []);
    first ??= loaded;
    const sampled = sampledIterations(dir);
    let iterations: number[];
    if (options.iteration === 'all') iterations = sampled;
    else if (sampled.includes(options.iteration)) iterations = [options.iteration];
    else throw new VerifierDataError(`${given}: iteration ${options.iteration} has no trajectories (sampled: ${sampled.join(', ') || 'none'})`);
    if (iterations.length === 0) throw new VerifierDataError(`${given}: no iteration is sampled yet`);
    const instances = await selectTaskSet(loaded.recipe.tasks.train, loaded.baseDir);
    pools.push(...poolsOfRun({ dir, recipe: loaded.recipe, recipeHash: loaded.hash, instances }, iterations));
  }
  const recipe = first!.recipe;
  const outDir = path.resolve(options.outDir ?? path.join(path.resolve(options.runDirs[0]!), 'verifier'));
  const manifest = writeVerifierDataset(pools, outDir, {
    balance: options.balance,
    max_tokens: options.maxTokens ?? recipe.verifier?.max_tokens ?? DEFAULT_VERIFIER_MAX_TOKENS,
    tokenizer: samplingEncoding(recipe.sft.tokenizer),
    seed: options.seed ?? recipe.seed,
  });
  return { manifest, outDir };
}

/** The lines `rft verifier data` prints. */
export function formatVerifierManifest(manifest: VerifierManifest, outDir: string): string {
  const c = manifest.counts;
  const lines = [
    `wrote ${path.join(outDir, manifest.file.name)}: ${manifest.file.lines} examples (${manifest.labels.yes} YES, ${manifest.labels.no} NO${manifest.balance ? ', balanced' : ''}) from ${manifest.sources.length} pool(s)`,
    `  in: ${c.trajectory_records} trajectory records; left out: ${c.infrastructure_records} infrastructure, ${c.unverified} unverified, ${c.invalid_task} invalid task, ${c.unknown_instance} unknown instance`,
    `  dropped: ${c.duplicate_patch} duplicate patch, ${c.over_max_tokens} over ${manifest.max_tokens} tokens (${manifest.tokenizer}), ${c.over_balance} to balance`,
    `  NO by verdict: ${manifest.verdicts.unresolved} unresolved, ${manifest.verdicts.empty_patch} empty patch, ${manifest.verdicts.apply_failed} apply failed, ${manifest.verdicts.timeout} timeout`,
    `  tokens: ${manifest.tokens.total} total, mean ${manifest.tokens.mean === null ? '–' : manifest.tokens.mean.toFixed(0)}, max ${manifest.tokens.max ?? '–'}`,
  ];
  for (const s of manifest.sources) lines.push(`  ${s.run_name} iter-${s.iteration} (${s.models.join(', ') || 'no examples'}): ${s.yes} YES, ${s.no} NO`);
  return `${lines.join('\n')}\n`;
}
