import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Trajectory } from '../agent/trajectory.js';
import { runLayout } from '../loop/layout.js';
import type { Recipe } from '../recipe/schema.js';
import { writeFileAtomic, writeFileAtomicWith } from '../store/atomic.js';
import type { Instance } from '../tasks/instance.js';
import { countTokens } from '../util/tokens.js';
import { isFinal } from '../verify/verdict.js';
import { issueOf, readCandidate, scanCandidates, type Candidate as PoolCandidate } from './pool.js';
import { DEFAULT_LIMITS, NO, verifierMessages, YES } from './render.js';

/**
 * The verifier's training data (design §11), read from recorded pools only — no sampling, no
 * container: every trajectory with a final verdict becomes one chat example whose input is
 * verifierMessages (issue, compact trajectory, final diff) and whose target is YES (verdict
 * `resolved`) or NO (any other final verdict: unresolved, an empty patch, a patch that does not
 * apply, a test run that timed out). Trajectories without a final verdict, those of a task whose
 * verdict is `invalid_task` (its test patch does not apply: nothing to learn about the patch) and
 * infrastructure records are left out and counted.
 *
 * Steps, each counted in the manifest:
 *   1. candidates: final verdict, instance known to the run's task set;
 *   2. at most one trajectory per distinct (instance, normalised patch) over every pool drawn on
 *      (the one with the smallest seeded hash): a verifier learns nothing from the same diff twice;
 *   3. examples longer than max_tokens dropped (js-tiktoken, as the SFT manifest counts);
 *   4. balanced (default): as many NO as YES, or the reverse, by seeded hash (the paper: half each);
 *   5. written in seeded-hash order (labels interleaved), with a manifest.
 * Deterministic for a given seed and pool; the manifest holds no wall-clock time, so a re-run
 * writes the same bytes.
 */

export const VERIFIER_DATASET_FILE = 'train.jsonl';
export const VERIFIER_MANIFEST_FILE = 'manifest.json';

/** One iteration's pool of one run. */
export interface VerifierPool {
  runDir: string;
  runName: string;
  recipeHash: string;
  iteration: number;
  trajectoriesFile: string;
  verdictsFile: string;
  /** The run's training instances by id (the issue text comes from here; else from the trajectory's own <issue>). */
  instances: ReadonlyMap<string, Instance>;
}

export interface VerifierDataOptions {
  balance: boolean;
  max_tokens: number;
  tokenizer: 'cl100k_base' | 'o200k_base';
  seed: number;
}

const count = () => z.number().int().nonnegative();

const CountsSchema = z.object({
  trajectory_records: count().describe('Lines of the trajectory ledgers drawn on'),
  infrastructure_records: count().describe('Records of infrastructure errors: not data'),
  unverified: count().describe('Samples without a final verdict (none yet, or only `error`): left out'),
  invalid_task: count().default(0).describe('Samples whose verdict is `invalid_task` (the task, not the patch, is broken): left out'),
  unknown_instance: count().describe("Samples whose issue text is found neither in the run's task set nor in the trajectory: left out"),
  candidates: count().describe('Samples with a final verdict'),
  duplicate_patch: count().describe('Dropped: another trajectory of the same instance has the same normalised patch'),
  over_max_tokens: count().describe('Dropped: the rendered example is longer than max_tokens'),
  over_balance: count().describe('Dropped to balance YES and NO'),
  examples: count(),
});

export const VerifierManifestSchema = z.object({
  format: z.literal('rft-verifier-dataset/1'),
  seed: count(),
  balance: z.boolean(),
  max_tokens: count(),
  tokenizer: z.string(),
  render: z.object({ action_chars: count(), observation_chars: count(), diff_chars: count() }),
  file: z.object({ name: z.string(), sha256: z.string(), bytes: count(), lines: count() }),
  /** The pools drawn on: on-policy and off-policy samples may be mixed by naming several runs. */
  sources: z.array(
    z.object({
      run_dir: z.string(),
      run_name: z.string(),
      recipe_hash: z.string(),
      iteration: count(),
      /** Policy models that sampled the examples taken from this pool. */
      models: z.array(z.string()),
      counts: CountsSchema,
      yes: count(),
      no: count(),
    }),
  ),
  counts: CountsSchema,
  labels: z.object({ yes: count(), no: count() }),
  /** Verdicts of the examples written (every NO that is not `unresolved` says why). */
  verdicts: z.object({ resolved: count(), unresolved: count(), empty_patch: count(), apply_failed: count(), timeout: count() }),
  instances: z.object({ candidates: count(), with_yes: count(), with_no: count(), in_examples: count() }),
  tokens: z.object({ total: count(), mean: z.number().nullable(), max: count().nullable() }),
});
export type VerifierManifest = z.infer<typeof VerifierManifestSchema>;
type Counts = z.infer<typeof CountsSchema>;

type FinalVerdict = keyof VerifierManifest['verdicts'];

interface Candidate {
  source: number;
  entry: PoolCandidate;
  verdict: FinalVerdict;
  rank: string;
  tokens: number;
  issue: string;
}

/** The example line of one trajectory: [system, user, assistant YES|NO]. */
export function verifierExample(problemStatement: string, trajectory: Pick<Trajectory, 'calls' | 'outcome' | 'patch'>, resolved: boolean): { messages: Array<{ role: string; content: string }> } {
  return { messages: [...(verifierMessages({ problem_statement: problemStatement, trajectory }) as Array<{ role: string; content: string }>), { role: 'assistant', content: resolved ? YES : NO }] };
}

/** Tokens of an example as the manifest counts them: its texts plus 3 per message (the chat template's frame, roughly). */
function exampleTokens(line: { messages: Array<{ content: string }> }, tokenizer: VerifierDataOptions['tokenizer']): number {
  return line.messages.reduce((t, m) => t + 3 + countTokens(m.content, tokenizer), 0);
}

function seededRank(seed: number, pool: VerifierPool, entry: PoolCandidate): string {
  return createHash('sha256').update(`${seed}\u0000${pool.runDir}\u0000${JSON.stringify([entry.iteration, entry.instance_id, entry.sample_index])}`).digest('hex');
}

function emptyCounts(): Counts {
  return { trajectory_records: 0, infrastructure_records: 0, unverified: 0, invalid_task: 0, unknown_instance: 0, candidates: 0, duplicate_patch: 0, over_max_tokens: 0, over_balance: 0, examples: 0 };
}

/** Builds the dataset from the pools and writes train.jsonl + manifest.json into outDir (each replaced atomically). */
export function writeVerifierDataset(pools: readonly VerifierPool[], outDir: string, options: VerifierDataOptions): VerifierManifest {
  if (pools.length === 0) throw new Error('no pool to draw verifier data from: name a run directory with a sampled iteration');
  const perSource = pools.map(() => emptyCounts());
  const candidates: Candidate[] = [];

  // 1. Candidates, from each pool's ledgers streamed (records stay on disk; only a few fields are held).
  pools.forEach((pool, source) => {
    const counts = perSource[source]!;
    const scanned = scanCandidates(pool.trajectoriesFile, pool.verdictsFile);
    counts.trajectory_records += scanned.lines;
    counts.infrastructure_records += scanned.infrastructure_records;
    for (const entry of scanned.candidates) {
      // repeated_error: the harness never graded the patch, so it is as unverified as an `error`.
      if (entry.verdict === null || !isFinal(entry.verdict) || entry.verdict === 'repeated_error') {
        counts.unverified += 1;
        continue;
      }
      if (entry.verdict === 'invalid_task') {
        counts.invalid_task += 1;
        continue;
      }
      counts.candidates += 1;
      candidates.push({ source, entry, verdict: entry.verdict as FinalVerdict, rank: seededRank(options.seed, pool, entry), tokens: 0, issue: '' });
    }
  });

  // 2. One trajectory per distinct (instance, patch): the smallest seeded rank.
  const byPatch = new Map<string, Candidate>();
  for (const c of candidates) {
    const key = `${c.entry.instance_id}\u0000${c.entry.patch_hash}`;
    const seen = byPatch.get(key);
    if (seen === undefined || c.rank < seen.rank) {
      if (seen) perSource[seen.source]!.duplicate_patch += 1;
      byPatch.set(key, c);
    } else perSource[c.source]!.duplicate_patch += 1;
  }
  const distinct = [...byPatch.values()].sort((a, b) => (a.rank < b.rank ? -1 : a.rank > b.rank ? 1 : 0));

  // 3. Render each once to count its tokens (one record in memory at a time).
  const within: Candidate[] = [];
  for (const c of distinct) {
    const pool = pools[c.source]!;
    const trajectory = readCandidate(pool.trajectoriesFile, c.entry);
    const issue = pool.instances.get(c.entry.instance_id)?.problem_statement ?? issueOf(trajectory);
    if (issue === null) {
      perSource[c.source]!.unknown_instance += 1;
      continue;
    }
    c.issue = issue;
    c.tokens = exampleTokens(verifierExample(issue, trajectory, c.verdict === 'resolved'), options.tokenizer);
    if (c.tokens > options.max_tokens) perSource[c.source]!.over_max_tokens += 1;
    else within.push(c);
  }

  // 4. Balance: the first min(YES, NO) of each label in seeded order.
  const yes = within.filter((c) => c.verdict === 'resolved');
  const no = within.filter((c) => c.verdict !== 'resolved');
  const keep = options.balance ? Math.min(yes.length, no.length) : Infinity;
  const kept = new Set([...yes.slice(0, keep), ...no.slice(0, keep)]);
  for (const c of within) if (!kept.has(c)) perSource[c.source]!.over_balance += 1;
  const examples = within.filter((c) => kept.has(c));

  // 5. Write, streamed into a temp file renamed over the old one.
  mkdirSync(outDir, { recursive: true });
  const hash = createHash('sha256');
  let bytes = 0;
  writeFileAtomicWith(path.join(outDir, VERIFIER_DATASET_FILE), (put) => {
    for (const c of examples) {
      const pool = pools[c.source]!;
      const line = verifierExample(c.issue, readCandidate(pool.trajectoriesFile, c.entry), c.verdict === 'resolved');
      const data = Buffer.from(`${JSON.stringify(line)}\n`, 'utf8');
      hash.update(data);
      bytes += data.length;
      put(data);
      perSource[c.source]!.examples += 1;
    }
  });

  const sum = (pick: (c: Counts) => number) => perSource.reduce((t, c) => t + pick(c), 0);
  const totals = Object.fromEntries(Object.keys(emptyCounts()).map((k) => [k, sum((c) => c[k as keyof Counts])])) as Counts;
  const verdicts = { resolved: 0, unresolved: 0, empty_patch: 0, apply_failed: 0, timeout: 0 };
  for (const c of examples) verdicts[c.verdict] += 1;
  const ids = (list: Candidate[]) => new Set(list.map((c) => c.entry.instance_id)).size;
  const tokens = examples.map((c) => c.tokens);
  const manifest = VerifierManifestSchema.parse({
    format: 'rft-verifier-dataset/1',
    seed: options.seed,
    balance: options.balance,
    max_tokens: options.max_tokens,
    tokenizer: options.tokenizer,
    render: { action_chars: DEFAULT_LIMITS.actionChars, observation_chars: DEFAULT_LIMITS.observationChars, diff_chars: DEFAULT_LIMITS.diffChars },
    file: { name: VERIFIER_DATASET_FILE, sha256: hash.digest('hex'), bytes, lines: examples.length },
    sources: pools.map((pool, i) => {
      const mine = examples.filter((c) => c.source === i);
      return {
        run_dir: pool.runDir,
        run_name: pool.runName,
        recipe_hash: pool.recipeHash,
        iteration: pool.iteration,
        models: [...new Set(mine.map((c) => c.entry.model))].sort(),
        counts: perSource[i]!,
        yes: mine.filter((c) => c.verdict === 'resolved').length,
        no: mine.filter((c) => c.verdict !== 'resolved').length,
      };
    }),
    counts: totals,
    labels: { yes: verdicts.resolved, no: examples.length - verdicts.resolved },
    verdicts,
    instances: {
      candidates: ids(candidates),
      with_yes: ids(examples.filter((c) => c.verdict === 'resolved')),
      with_no: ids(examples.filter((c) => c.verdict !== 'resolved')),
      in_examples: ids(examples),
    },
    tokens: {
      total: tokens.reduce((t, x) => t + x, 0),
      mean: tokens.length === 0 ? null : tokens.reduce((t, x) => t + x, 0) / tokens.length,
      max: tokens.length === 0 ? null : Math.max(...tokens),
    },
  });
  writeFileAtomic(path.join(outDir, VERIFIER_MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/** The pools of a run's iterations, as the loop recorded them: its task set and eval spec give the issue text and verdict keys. */
export function poolsOfRun(run: { dir: string; recipe: Recipe; recipeHash: string; instances: readonly Instance[] }, iterations: readonly number[]): VerifierPool[] {
  const instances = new Map(run.instances.map((i) => [i.instance_id, i]));
  return iterations.map((k) => ({
    runDir: run.dir,
    runName: run.recipe.name,
    recipeHash: run.recipeHash,
    iteration: k,
    trajectoriesFile: runLayout.trajectories(run.dir, k),
    verdictsFile: runLayout.verdicts(run.dir, k),
    instances,
  }));
}

/** The iterations of a run directory with a trajectory ledger, in order. */
export function sampledIterations(runDir: string): number[] {
  if (!existsSync(runDir)) return [];
  return readdirSync(runDir)
    .map((name) => /^iter-(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null && statSync(path.join(runDir, m[0])).isDirectory() && existsSync(runLayout.trajectories(runDir, Number(m[1]))))
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}
