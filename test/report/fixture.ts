import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { StateName } from '../../src/agent/actions.js';
import { TrajectorySchema, type Trajectory, type TrajectoryStatus } from '../../src/agent/trajectory.js';
import { FINETUNE_FILE, FinetuneJobSchema, type FinetuneJob } from '../../src/finetune/job.js';
import { runLayout } from '../../src/loop/layout.js';
import { loadRecipe } from '../../src/recipe/load.js';
import { poolFromRecords } from '../../src/select/pool.js';
import { selectTrajectories } from '../../src/select/select.js';
import { accumulate, buildExamples } from '../../src/sft/examples.js';
import { writeDataset } from '../../src/sft/write.js';
import { Ledger } from '../../src/store/ledger.js';
import { normalizePatch, patchHash } from '../../src/verify/patch.js';
import { VerdictSchema, verdictKey, type Outcome, type Verdict } from '../../src/verify/verdict.js';
import { makeTrajectory, makeVerdict, SPEC_HASH, type CallSpec } from '../sft/records.js';

/**
 * A small run directory written by hand through the project's own writers (Ledger, writeDataset,
 * the fine-tune record schema), with numbers chosen so every figure of the report can be worked
 * out on paper (see report-data.test.ts).
 *
 * Recipe: iterations 2, 3 samples per task at T=1, cap 1, call unit, max_tokens 1000; eval at T=0.
 *
 * iter-0 (model base-model):
 *   a#0 finished, resolved, 3 calls, tokens 100/200/300
 *   a#1 finished, resolved, 5 calls, tokens 110/120(invalid)/130/140/150
 *   a#2 finished, unresolved, 4 calls
 *   b#0 finished, resolved, 6 calls, tokens 400..800 + 1500 (over max_tokens)
 *   b#1 rejected, resolved (not a success), 4 calls
 *   b#2 model-fault error, empty patch (verdict empty_patch), 2 calls
 *   c#0 finished, unresolved, 2 calls
 *   c#1 finished, verdict `error` first, then unresolved on retry, 3 calls
 *   c#2 an infrastructure-error record, then its real record: finished, apply_failed, 3 calls
 * iter-1 (model tiny-m1): a 3/3 resolved, b 1/3, c 1/3 (all finished, 2 calls each)
 * eval/m0: a resolved, b and c unresolved; eval/m1: a and b resolved, c unresolved
 * datasets: iter-0/datasets/cap-1 (the recipe's) and iter-0/datasets/cap-none
 * fine-tunes: iter-0 succeeded → tiny-m1; iter-1 attempt 1 failed (error text holds <script>),
 *   attempt 2 running.
 */

export const FIXTURE_RUN_NAME = 'tiny';
export const SCRIPT_ERROR = '<script>alert("pwned")</script> CUDA out of memory';

function calls(n: number, tokens?: number[], invalidAt?: number): CallSpec[] {
  const states: StateName[] = ['SearchCode', 'IdentifyCode', 'DecideRelevance', 'PlanToCode', 'EditCode', 'PlanToCode'];
  return Array.from({ length: n }, (_, i) => ({
    state: states[i % states.length]!,
    ...(tokens ? { tokens: tokens[i]! } : {}),
    ...(invalidAt === i ? { invalid: 'unparsable JSON' } : {}),
  }));
}

interface Sample {
  id: string;
  sample: number;
  calls: CallSpec[];
  outcome?: TrajectoryStatus;
  patch?: string;
  verdicts: Outcome[];
}

function trajectory(iteration: number, model: string, temperature: number, s: Sample): Trajectory {
  const base = makeTrajectory({
    instance_id: s.id,
    sample_index: s.sample,
    iteration,
    calls: s.calls,
    ...(s.outcome ? { outcome: s.outcome } : {}),
    ...(s.patch !== undefined ? { patch: s.patch } : {}),
  });
  return TrajectorySchema.parse({ ...base, run: FIXTURE_RUN_NAME, model, temperature });
}

function verdictsOf(s: Sample, patch: string): Verdict[] {
  return s.verdicts.map((outcome) => makeVerdict(s.id, patch, outcome));
}

function writeLedgers(trajectoriesFile: string, verdictsFile: string, records: Trajectory[], verdicts: Verdict[]): void {
  const t = Ledger.open(trajectoriesFile, TrajectorySchema).ledger;
  for (const r of records) t.append(r);
  t.close();
  const v = Ledger.open(verdictsFile, VerdictSchema).ledger;
  for (const r of verdicts) v.append(r);
  v.close();
}

function rollout(iteration: number, model: string, temperature: number, samples: Sample[], infra: Trajectory[] = []): { trajectories: Trajectory[]; verdicts: Verdict[] } {
  const trajectories: Trajectory[] = [...infra];
  const verdicts: Verdict[] = [];
  for (const s of samples) {
    const t = trajectory(iteration, model, temperature, s);
    trajectories.push(t);
    verdicts.push(...verdictsOf(s, t.patch));
  }
  return { trajectories, verdicts };
}

const RECIPE = `name: ${FIXTURE_RUN_NAME}
seed: 7
iterations: 2
tasks:
  train: {path: tasks.jsonl}
  eval: {path: tasks.jsonl}
policy: {kind: openai, base_url: "http://127.0.0.1:9/v1", model: base-model}
sampling: {samples_per_task: 3, temperature: 1}
select: {cap: 1, require_finished: true}
sft: {unit: call, max_tokens: 1000}
finetune:
  backend: command
  command: "true"
  base_model: base-model
eval: {samples: 1, temperature: 0}
`;

export const ITER0: Sample[] = [
  { id: 'a', sample: 0, calls: calls(3, [100, 200, 300]), verdicts: ['resolved'] },
  { id: 'a', sample: 1, calls: calls(5, [110, 120, 130, 140, 150], 1), verdicts: ['resolved'] },
  { id: 'a', sample: 2, calls: calls(4), verdicts: ['unresolved'] },
  { id: 'b', sample: 0, calls: calls(6, [400, 500, 600, 700, 800, 1500]), verdicts: ['resolved'] },
  { id: 'b', sample: 1, calls: calls(4), outcome: { status: 'rejected', reason: 'gave up' }, verdicts: ['resolved'] },
  { id: 'b', sample: 2, calls: calls(2), outcome: { status: 'error', reason: 'retries exhausted', fault: 'model' }, patch: '', verdicts: ['empty_patch'] },
  { id: 'c', sample: 0, calls: calls(2), verdicts: ['unresolved'] },
  { id: 'c', sample: 1, calls: calls(3), verdicts: ['error', 'unresolved'] },
  { id: 'c', sample: 2, calls: calls(3), verdicts: ['apply_failed'] },
];

const ITER1: Sample[] = [
  ...[0, 1, 2].map((i) => ({ id: 'a', sample: i, calls: calls(2), verdicts: ['resolved' as Outcome] })),
  ...[0, 1, 2].map((i) => ({ id: 'b', sample: i, calls: calls(2), verdicts: [(i === 0 ? 'resolved' : 'unresolved') as Outcome] })),
  ...[0, 1, 2].map((i) => ({ id: 'c', sample: i, calls: calls(2), verdicts: [(i === 2 ? 'resolved' : 'unresolved') as Outcome] })),
];

function evalSamples(resolved: string[]): Sample[] {
  return ['a', 'b', 'c'].map((id) => ({ id, sample: 0, calls: calls(3), verdicts: [(resolved.includes(id) ? 'resolved' : 'unresolved') as Outcome] }));
}

function job(overrides: Partial<FinetuneJob> & Pick<FinetuneJob, 'iteration' | 'status'>): FinetuneJob {
  return FinetuneJobSchema.parse({
    attempt: 1,
    backend: 'command',
    dataset: 'train.jsonl',
    dataset_sha256: 'f'.repeat(64),
    base_model: 'base-model',
    output_model: null,
    started_at: '2025-01-01T00:00:00.000Z',
    finished_at: null,
    error: null,
    ...overrides,
  });
}

/** Writes the fixture run into a new temp folder and returns its path (the run directory). */
export function writeFixtureRun(): string {
  const runDir = path.join(mkdtempSync(path.join(tmpdir(), 'rft-report-')), FIXTURE_RUN_NAME);
  mkdirSync(runDir, { recursive: true });
  writeFileSync(path.join(runDir, 'recipe.yaml'), RECIPE);
  const recipeHash = loadRecipe(path.join(runDir, 'recipe.yaml')).hash;
  writeFileSync(
    path.join(runDir, 'run.json'),
    `${JSON.stringify({ name: FIXTURE_RUN_NAME, recipe_hash: recipeHash, base_dir: runDir, created_at: '2025-01-01T00:00:00.000Z', recipe_history: [] }, null, 2)}\n`,
  );
  writeFileSync(path.join(runDir, 'state.json'), `${JSON.stringify({ version: 1, updated_at: '2025-01-01T00:00:00.000Z', phases: {} })}\n`);

  // iter-0, with an infrastructure-error record of c#2 before its real one.
  const infra = TrajectorySchema.parse({
    ...trajectory(0, 'base-model', 1, { id: 'c', sample: 2, calls: calls(1), verdicts: [] }),
    outcome: { status: 'error', reason: 'endpoint down', fault: 'infrastructure' },
    patch: '',
  });
  const it0 = rollout(0, 'base-model', 1, ITER0, [infra]);
  writeLedgers(runLayout.trajectories(runDir, 0), runLayout.verdicts(runDir, 0), it0.trajectories, it0.verdicts);
  const it1 = rollout(1, 'tiny-m1', 1, ITER1);
  writeLedgers(runLayout.trajectories(runDir, 1), runLayout.verdicts(runDir, 1), it1.trajectories, it1.verdicts);
  for (const [m, model, resolved] of [
    [0, 'base-model', ['a']],
    [1, 'tiny-m1', ['a', 'b']],
  ] as const) {
    const ev = rollout(m, model, 0, evalSamples([...resolved]));
    const dir = runLayout.evalDir(runDir, m);
    writeLedgers(path.join(dir, 'trajectories.jsonl'), path.join(dir, 'verdicts.jsonl'), ev.trajectories, ev.verdicts);
  }

  // iter-0's datasets, made the way the loop makes them.
  const keyOf = (t: Trajectory) => verdictKey(t.instance_id, patchHash(normalizePatch(t.patch)), SPEC_HASH);
  for (const cap of [1, null]) {
    const selection = selectTrajectories(poolFromRecords(it0.trajectories, it0.verdicts, keyOf), { cap, order: 'fewest_calls', dedup: false, seed: 7, require_finished: true });
    const kept = accumulate([{ iteration: 0, kept: selection.kept, trajectories: it0.trajectories }]);
    const examples = buildExamples(kept, { unit: 'call', max_tokens: 1000, tokenizer: 'cl100k_base' });
    writeDataset(runLayout.datasetDir(runDir, 0, cap), { recipe_hash: recipeHash, iteration: 0, selections: [{ iteration: 0, selection }], examples });
  }

  const ft0 = runLayout.finetuneDir(runDir, 0);
  mkdirSync(ft0, { recursive: true });
  writeFileSync(
    path.join(ft0, FINETUNE_FILE),
    JSON.stringify(job({ iteration: 0, status: 'succeeded', output_model: 'tiny-m1', finished_at: '2025-01-01T00:01:30.000Z' })),
  );
  const ft1 = runLayout.finetuneDir(runDir, 1);
  mkdirSync(ft1, { recursive: true });
  writeFileSync(
    path.join(ft1, 'finetune.failed-1.json'),
    JSON.stringify(job({ iteration: 1, status: 'failed', base_model: 'tiny-m1', error: SCRIPT_ERROR, finished_at: '2025-01-01T00:00:10.000Z' })),
  );
  writeFileSync(path.join(ft1, FINETUNE_FILE), JSON.stringify(job({ iteration: 1, attempt: 2, status: 'running', base_model: 'tiny-m1' })));
  return runDir;
}

/** Appends one more iter-<k> sample (and its verdicts) to the run's ledgers, as a later writer would. */
export function appendSample(runDir: string, iteration: number, sample: { id: string; sample: number; calls: number; verdicts: Outcome[] }): void {
  const s: Sample = { id: sample.id, sample: sample.sample, calls: calls(sample.calls), verdicts: sample.verdicts };
  const t = trajectory(iteration, 'base-model', 1, s);
  writeLedgers(runLayout.trajectories(runDir, iteration), runLayout.verdicts(runDir, iteration), [t], verdictsOf(s, t.patch));
}
