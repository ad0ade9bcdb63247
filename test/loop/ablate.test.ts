import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrajectorySchema, type Trajectory, type TrajectoryStatus } from '../../src/agent/trajectory.js';
import { messagesTokens } from '../../src/agent/run.js';
import { ablateDatasetDir, AblateError, formatAblateReport, formatAblateTable, parseCapList, rebuildDatasets, type AblateResult } from '../../src/loop/ablate.js';
import { runLayout } from '../../src/loop/layout.js';
import type { ChatMessage } from '../../src/policy/types.js';
import { loadRecipe, type LoadedRecipe } from '../../src/recipe/load.js';
import { poolFromRecords } from '../../src/select/pool.js';
import { selectTrajectories, tieHash } from '../../src/select/select.js';
import { accumulate, buildExamples } from '../../src/sft/examples.js';
import { DATASET_FILE, MANIFEST_FILE, writeDataset } from '../../src/sft/write.js';
import { RunDir } from '../../src/store/run-dir.js';
import type { Instance } from '../../src/tasks/instance.js';
import { selectTaskSetSync } from '../../src/tasks/select.js';
import { normalizePatch, patchHash } from '../../src/verify/patch.js';
import { buildEvalSpec, specHash } from '../../src/verify/spec.js';
import { EMPTY_PATCH_HASH, VerdictSchema, verdictKey, type Outcome, type Verdict } from '../../src/verify/verdict.js';
import { rft } from '../cli/helpers.js';
import { MINIGYM_TASKS, minigymInstance } from '../helpers/minigym.js';
import { exampleOptionsOf } from '../../src/sft/options.js';
import { jsonlRecords, parquetOf } from '../helpers/parquet.js';

/**
 * A run directory built by hand: the real RunDir and Ledger, hand-made trajectories (real-looking
 * calls, tokens counted as the agent counts them) and verdicts under the keys the loop computes.
 *
 * Iteration 0, 6 samples per task, max_tokens 500:
 *   EASY  minigym__iniform-201    6 successes: #3 (5 calls), #1 (6 calls, one invalid), #2 (7),
 *                                 #0 (8), #4 (9), #5 (10, one call above max_tokens).
 *                                 #1 has #3's patch (CRLF + trailing blank lines), #4 has #2's.
 *   H1    minigym__ledgerlite-303 1 success: #1 (6 calls). #5 resolves but was rejected.
 *   H2    minigym__unitkit-101    1 success: #2 (5 calls). #0's verdict was `error`, then `timeout`.
 */
const EASY = 'minigym__iniform-201';
const H1 = 'minigym__ledgerlite-303';
const H2 = 'minigym__unitkit-101';
const TASKS = [EASY, H1, H2];
const SEED = 3;
const TIMEOUT_S = 60;
const MAX_TOKENS = 500;

const FLOW = ['SearchCode', 'IdentifyCode', 'DecideRelevance', 'PlanToCode', 'EditCode', 'PlanToCode', 'EditCode', 'PlanToCode', 'EditCode', 'PlanToCode'] as const;

function patchOf(instance: string, variant: string): string {
  const file = instance.includes('iniform') ? 'iniform/parser.py' : instance.includes('ledgerlite') ? 'ledgerlite/ledger.py' : 'unitkit/convert.py';
  return [
    `diff --git a/${file} b/${file}`,
    'index 3f2a1c4..8b9d0e7 100644',
    `--- a/${file}`,
    `+++ b/${file}`,
    '@@ -41,7 +41,7 @@ def _split(value):',
    '     """Split a raw option value into items."""',
    '     parts = value.replace("\\n", ",").split(",")',
    '-    return [p.strip() for p in parts]',
    `+    return [p.strip() for p in parts if p.strip()]  # ${variant}`,
    ' ',
    ' ',
    ' def getlist(self, section, option):',
    '',
  ].join('\n');
}

interface SampleSpec {
  instance: string;
  sample: number;
  calls: number;
  outcome: TrajectoryStatus;
  patch: string;
  /** Call indexes whose answer was invalid (the next call is its retry). */
  invalid?: number[];
  /** A call whose prompt holds a large file excerpt (above MAX_TOKENS). */
  big?: number;
}

function completionFor(state: (typeof FLOW)[number], i: number, last: boolean, instance: Instance): string {
  switch (state) {
    case 'SearchCode':
      return JSON.stringify({ scratch_pad: `Look for the code behind: ${instance.problem_statement.split('\n')[0]}`, search_requests: [{ query: instance.problem_statement.slice(0, 60), file_pattern: '**/*.py' }], complete: false });
    case 'IdentifyCode':
      return JSON.stringify({ scratch_pad: 'The split helper is where the items come from.', identified_spans: [{ file_path: 'src/module.py', span_ids: ['_split'] }] });
    case 'DecideRelevance':
      return JSON.stringify({ scratch_pad: 'The context holds the function to change.', relevant: true, complete: true });
    case 'PlanToCode':
      return last
        ? JSON.stringify({ scratch_pad: 'The change is made and covers the issue.', action: 'finish', instructions: 'The fix is complete.', file_path: null, span_id: null })
        : JSON.stringify({ scratch_pad: `Step ${i}: filter out empty items.`, action: 'modify', instructions: 'Drop empty items after stripping.', file_path: 'src/module.py', span_id: '_split' });
    default:
      return `<replace>\n    return [p.strip() for p in parts if p.strip()]\n</replace>`;
  }
}

function makeTrajectory(spec: SampleSpec): Trajectory {
  const instance = minigymInstance(spec.instance);
  const invalid = new Set(spec.invalid ?? []);
  const states: (typeof FLOW)[number][] = [];
  for (let i = 0, f = 0; i < spec.calls; i++) {
    // a retry stays in the state of the invalid call; the rest follows the workflow
    const state = invalid.has(i - 1) ? states[i - 1]! : FLOW[Math.min(f++, FLOW.length - 1)]!;
    states.push(i === spec.calls - 1 ? 'PlanToCode' : state);
  }
  const calls = states.map((state, i) => {
    const excerpt = spec.big === i ? `\n\nFile context:\n${Array.from({ length: 80 }, (_, n) => `    value_${n} = config.get("section_${n}", "option_${n}", fallback=None)`).join('\n')}` : '';
    const messages: ChatMessage[] = [
      { role: 'system', content: `You are an autonomous AI assistant in the ${state} step of fixing a GitHub issue. Answer with one JSON object.` },
      { role: 'user', content: `<issue>\n${instance.problem_statement.slice(0, 300)}\n</issue>${excerpt}` },
    ];
    if (invalid.has(i - 1)) {
      messages.push({ role: 'assistant', content: '{"scratch_pad": "…"' }, { role: 'user', content: 'Your last reply was not a valid action: unparsable JSON.' });
    }
    const completion: ChatMessage = invalid.has(i) ? { role: 'assistant', content: '{"scratch_pad": "…"' } : { role: 'assistant', content: completionFor(state, i, i === spec.calls - 1, instance) };
    const prompt = messagesTokens(messages, 'cl100k_base');
    const out = messagesTokens([completion], 'cl100k_base');
    return { call: { state, messages, completion, usage: { prompt_tokens: prompt + 3, completion_tokens: out }, invalid: invalid.has(i) ? 'unparsable JSON' : null, retry: invalid.has(i - 1), latency_ms: 800 + 10 * i }, prompt, out };
  });
  const perCall = calls.map((c) => c.prompt + c.out);
  return TrajectorySchema.parse({
    run: 'ablate-test',
    iteration: 0,
    instance_id: spec.instance,
    sample_index: spec.sample,
    seed: 1000 + spec.sample,
    model: 'm0',
    protocol: 'json',
    temperature: 1,
    calls: calls.map((c) => c.call),
    transitions: states.slice(1).map((to, i) => ({ from: states[i]!, to, trigger: invalid.has(i) ? 'retry' : 'next' })),
    outcome: spec.outcome,
    patch: spec.patch,
    llm_calls: calls.length,
    tokens: {
      encoding: 'cl100k_base',
      prompt: calls.reduce((a, c) => a + c.prompt, 0),
      completion: calls.reduce((a, c) => a + c.out, 0),
      max_example: Math.max(0, ...perCall),
      per_call: perCall,
    },
    usage: { prompt_tokens: calls.reduce((a, c) => a + c.call.usage.prompt_tokens, 0), completion_tokens: calls.reduce((a, c) => a + c.out, 0) },
    started_at: '2025-03-01T10:00:00.000Z',
    duration_ms: 30_000,
  });
}

const finished: TrajectoryStatus = { status: 'finished', reason: 'The fix is complete.' };
const rejected: TrajectoryStatus = { status: 'rejected', reason: 'The issue cannot be fixed with the code found.' };
const limit: TrajectoryStatus = { status: 'error', reason: 'PlanToCode visited 8 times', fault: 'model' };

const pA = patchOf(EASY, 'a');
const SAMPLES: SampleSpec[] = [
  { instance: EASY, sample: 0, calls: 8, outcome: finished, patch: patchOf(EASY, 'c') },
  { instance: EASY, sample: 1, calls: 6, outcome: finished, patch: `${pA.replace(/\n/g, '\r\n')}\r\n\r\n`, invalid: [1] },
  { instance: EASY, sample: 2, calls: 7, outcome: finished, patch: patchOf(EASY, 'b') },
  { instance: EASY, sample: 3, calls: 5, outcome: finished, patch: pA },
  { instance: EASY, sample: 4, calls: 9, outcome: finished, patch: patchOf(EASY, 'b') },
  { instance: EASY, sample: 5, calls: 10, outcome: finished, patch: patchOf(EASY, 'd'), big: 1 },
  { instance: H1, sample: 0, calls: 7, outcome: finished, patch: patchOf(H1, 'wrong') },
  { instance: H1, sample: 1, calls: 6, outcome: finished, patch: patchOf(H1, 'right') },
  { instance: H1, sample: 2, calls: 4, outcome: rejected, patch: '' },
  { instance: H1, sample: 3, calls: 8, outcome: finished, patch: 'I changed the ledger so it balances.\n' },
  { instance: H1, sample: 4, calls: 10, outcome: limit, patch: patchOf(H1, 'half') },
  { instance: H1, sample: 5, calls: 5, outcome: rejected, patch: patchOf(H1, 'right-but-rejected') },
  { instance: H2, sample: 0, calls: 9, outcome: finished, patch: patchOf(H2, 'loops') },
  { instance: H2, sample: 1, calls: 7, outcome: finished, patch: patchOf(H2, 'wrong') },
  { instance: H2, sample: 2, calls: 5, outcome: finished, patch: patchOf(H2, 'right') },
  { instance: H2, sample: 3, calls: 6, outcome: finished, patch: patchOf(H2, 'wrong') },
  { instance: H2, sample: 4, calls: 4, outcome: rejected, patch: '' },
  { instance: H2, sample: 5, calls: 8, outcome: finished, patch: patchOf(H2, 'other') },
];

/** The verdict outcomes, per (instance, sample) whose patch is verified first; the rest share them. */
const OUTCOMES: Record<string, Outcome[]> = {
  [`${EASY}#0`]: ['resolved'],
  [`${EASY}#1`]: ['resolved'],
  [`${EASY}#2`]: ['resolved'],
  [`${EASY}#5`]: ['resolved'],
  [`${H1}#0`]: ['unresolved'],
  [`${H1}#1`]: ['resolved'],
  [`${H1}#2`]: ['empty_patch'],
  [`${H1}#3`]: ['apply_failed'],
  [`${H1}#4`]: ['unresolved'],
  [`${H1}#5`]: ['resolved'],
  [`${H2}#0`]: ['error', 'timeout'],
  [`${H2}#1`]: ['unresolved'],
  [`${H2}#2`]: ['resolved'],
  [`${H2}#4`]: ['empty_patch'],
  [`${H2}#5`]: ['unresolved'],
};

/** The spec hash exactly as the loop computes it. */
function specHashOf(instanceId: string): string {
  return specHash(buildEvalSpec(minigymInstance(instanceId), { timeout_s: TIMEOUT_S }));
}

function makeVerdict(t: Trajectory, outcome: Outcome): Verdict {
  const ran = outcome === 'resolved' || outcome === 'unresolved';
  const hash = patchHash(normalizePatch(t.patch));
  return VerdictSchema.parse({
    instance_id: t.instance_id,
    patch_hash: hash,
    spec_hash: specHashOf(t.instance_id),
    outcome,
    reason: ran || outcome === 'empty_patch' ? null : outcome === 'error' ? 'docker: connection reset' : `${outcome}: see the log`,
    apply_method: ran || outcome === 'timeout' ? 'git_apply' : null,
    test_exit_code: ran ? (outcome === 'resolved' ? 0 : 1) : null,
    tests: ran ? { 'tests/test_fix.py::test_issue': outcome === 'resolved' ? 'PASSED' : 'FAILED' } : {},
    report: ran
      ? {
          FAIL_TO_PASS: outcome === 'resolved' ? { success: ['tests/test_fix.py::test_issue'], failure: [] } : { success: [], failure: ['tests/test_fix.py::test_issue'] },
          PASS_TO_PASS: { success: ['tests/test_other.py::test_ok'], failure: [] },
        }
      : null,
    log_truncated: false,
    duration_ms: 4200,
    created_at: '2025-03-01T10:05:00.000Z',
  });
}

const TRAJECTORIES = SAMPLES.map(makeTrajectory);
const byName = new Map(TRAJECTORIES.map((t) => [`${t.instance_id}#${t.sample_index}`, t]));
const traj = (name: string) => byName.get(name)!;

interface BuiltRun {
  dir: string;
  run: RunDir;
  loaded: LoadedRecipe;
}

const roots: string[] = [];

function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  roots.push(dir);
  return dir;
}

const open: RunDir[] = [];

/**
 * A run directory through the real RunDir (recipe.yaml, run.json, state.json, lock) with iteration
 * 0's ledgers (or those of `iterations`, each the same pool) written through Ledger. `leave` drops
 * samples, `noVerdict` their verdicts, `cut` replaces their verdict outcomes (all in iteration 0).
 */
function buildRun(
  name: string,
  options: { leave?: string[]; noVerdict?: string[]; cut?: Record<string, Outcome[]>; select?: string; sft?: string; iterations?: number[]; parquet?: boolean } = {},
): BuiltRun {
  const root = tempDir('rft-ablate-');
  writeFileSync(path.join(root, 'ids.txt'), `${TASKS.join('\n')}\n`);
  // The task file as the hub ships it, when asked: Parquet.
  if (options.parquet) writeFileSync(path.join(root, 'train.parquet'), parquetOf(jsonlRecords(MINIGYM_TASKS)));
  const file = path.join(root, 'recipe.yaml');
  writeFileSync(
    file,
    `name: ${name}
seed: ${SEED}
iterations: 2
tasks:
  train: {path: ${options.parquet ? 'train.parquet' : MINIGYM_TASKS}, ids_file: ids.txt}
sandbox: {memory: 512m, test_timeout_s: ${TIMEOUT_S}}
policy: {kind: openai, base_url: "http://127.0.0.1:9/v1", model: m0}
sampling: {samples_per_task: 6}
select: ${options.select ?? '{cap: 2, require_finished: true}'}
sft: {max_tokens: ${MAX_TOKENS}${options.sft ?? ''}}
finetune: {backend: command, command: "true", base_model: m0}
`,
  );
  const loaded = loadRecipe(file);
  const run = RunDir.open({ runsDir: path.join(root, 'runs'), loaded });
  open.push(run);
  for (const k of options.iterations ?? [0]) {
    const trajectories = run.openLedger(path.relative(run.dir, runLayout.trajectories(run.dir, k)), TrajectorySchema).ledger;
    const verdicts = run.openLedger(path.relative(run.dir, runLayout.verdicts(run.dir, k)), VerdictSchema).ledger;
    for (const t of TRAJECTORIES.map((t) => TrajectorySchema.parse({ ...t, iteration: k }))) {
      const key = `${t.instance_id}#${t.sample_index}`;
      if (k === 0 && options.leave?.includes(key)) continue;
      trajectories.append(t);
      if (k === 0 && options.noVerdict?.includes(key)) continue;
      for (const outcome of (k === 0 ? options.cut?.[key] : undefined) ?? OUTCOMES[key] ?? []) verdicts.append(makeVerdict(t, outcome));
    }
    trajectories.close();
    verdicts.close();
  }
  return { dir: run.dir, run, loaded };
}

/** What the loop's emitDataset writes for the recipe's settings, written into `dir` by the same functions. */
function loopDataset(built: BuiltRun, dir: string) {
  const recipe = built.loaded.recipe;
  const train = selectTaskSetSync(recipe.tasks.train, built.loaded.baseDir);
  const byId = new Map(train.map((i) => [i.instance_id, i]));
  const keyOf = (t: Trajectory) => verdictKey(t.instance_id, patchHash(normalizePatch(t.patch)), specHash(buildEvalSpec(byId.get(t.instance_id)!, { timeout_s: recipe.sandbox.test_timeout_s })));
  const trajectories = readLines(runLayout.trajectories(built.dir, 0)).map((l) => TrajectorySchema.parse(JSON.parse(l)));
  const verdicts = readLines(runLayout.verdicts(built.dir, 0)).map((l) => VerdictSchema.parse(JSON.parse(l)));
  const selection = selectTrajectories(poolFromRecords(trajectories, verdicts, keyOf), { ...recipe.select, seed: recipe.seed });
  const examples = buildExamples(accumulate([{ iteration: 0, kept: selection.kept, trajectories }]), exampleOptionsOf(built.loaded));
  return writeDataset(dir, { recipe_hash: built.loaded.hash, iteration: 0, selections: [{ iteration: 0, selection }], examples });
}

/** train.jsonl lines per instance, told apart by the issue text in each example's user message. */
function linesPerInstance(datasetDir: string): Record<string, number> {
  const counts: Record<string, number> = Object.fromEntries(TASKS.map((id) => [id, 0]));
  for (const line of readLines(path.join(datasetDir, DATASET_FILE))) {
    const user = (JSON.parse(line) as { messages: Array<{ role: string; content: string }> }).messages[1]!;
    const owner = TASKS.filter((id) => user.content.startsWith(`<issue>\n${minigymInstance(id).problem_statement.slice(0, 300)}\n</issue>`));
    expect(owner).toHaveLength(1);
    counts[owner[0]!]! += 1;
  }
  return counts;
}

function readLines(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
}

/** Examples and their tokens of kept trajectories, counted by hand from the records: valid calls up to MAX_TOKENS. */
function expectedExamples(names: string[]): { examples: number; mean: number; max: number } {
  const tokens = names.flatMap((n) => {
    const t = traj(n);
    return t.tokens.per_call.filter((tok, i) => t.calls[i]!.invalid === null && tok <= MAX_TOKENS);
  });
  return { examples: tokens.length, mean: tokens.reduce((a, b) => a + b, 0) / tokens.length, max: Math.max(...tokens) };
}


let main: BuiltRun;
let result: AblateResult;

beforeAll(async () => {
  main = buildRun('ablate-test');
  result = await rebuildDatasets({ runDir: main.dir, iteration: 0, caps: [1, 2, 3, null] });
});

afterAll(() => {
  for (const run of open) run.close();
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

describe('the hand-built pool', () => {
  it('counts tokens like the agent and has exactly one call above max_tokens and one invalid call', async () => {
    const over = TRAJECTORIES.flatMap((t) => t.tokens.per_call.filter((n) => n > MAX_TOKENS).map(() => `${t.instance_id}#${t.sample_index}`));
    expect(over).toEqual([`${EASY}#5`]);
    expect(TRAJECTORIES.flatMap((t) => t.calls.filter((c) => c.invalid !== null).map(() => `${t.instance_id}#${t.sample_index}`))).toEqual([`${EASY}#1`]);
    expect(normalizePatch(traj(`${EASY}#1`).patch)).toBe(normalizePatch(pA));
    expect(patchHash(normalizePatch(''))).toBe(EMPTY_PATCH_HASH);
  });
});

describe('rebuildDatasets', () => {
  it('keeps exactly the expected trajectories per cap, in the order of --cap, one folder each', async () => {
    expect(result.rows.map((r) => r.cap)).toEqual([1, 2, 3, null]);
    expect(result.rows.map((r) => r.folder)).toEqual(['cap-1', 'cap-2', 'cap-3', 'cap-none'].map((f) => path.join('iter-0', 'datasets', f)));
    expect(result.folders).toEqual(result.rows.map((r) => path.join(main.dir, r.folder)));
    expect(readdirSync(path.join(main.dir, 'iter-0', 'datasets')).sort()).toEqual(['cap-1', 'cap-2', 'cap-3', 'cap-none']);
    expect(result.pool).toEqual({ trajectories: 18, successes: 8, instances: 3, instancesWithSuccess: 3 });
    expect(result.easiest).toEqual([EASY]);
    expect(result.iterationsIncluded).toEqual([0]);
    expect(result.settings).toEqual({ order: 'fewest_calls', dedup: false, seed: SEED, unit: 'call', max_tokens: MAX_TOKENS, tokenizer: 'cl100k_base', train_on: 'assistant', backend: 'trl', tool_arguments: null });

    const kept = {
      1: [`${EASY}#3`, `${H1}#1`, `${H2}#2`],
      2: [`${EASY}#1`, `${EASY}#3`, `${H1}#1`, `${H2}#2`],
      3: [`${EASY}#1`, `${EASY}#2`, `${EASY}#3`, `${H1}#1`, `${H2}#2`],
      none: [0, 1, 2, 3, 4, 5].map((s) => `${EASY}#${s}`).concat([`${H1}#1`, `${H2}#2`]),
    };
    const expected = [
      { cap: 1, names: kept[1], examples: 5 + 6 + 5, calls: (5 + 6 + 5) / 3, easy: 5 / 16 },
      { cap: 2, names: kept[2], examples: 5 + 5 + 6 + 5, calls: (6 + 5 + 6 + 5) / 4, easy: 10 / 21 },
      { cap: 3, names: kept[3], examples: 5 + 7 + 5 + 6 + 5, calls: (6 + 7 + 5 + 6 + 5) / 5, easy: 17 / 28 },
      { cap: null, names: kept.none, examples: 8 + 5 + 7 + 5 + 9 + 9 + 6 + 5, calls: (8 + 6 + 7 + 5 + 9 + 10 + 6 + 5) / 8, easy: 43 / 54 },
    ];
    for (const [i, e] of expected.entries()) {
      const row = result.rows[i]!;
      const tokens = expectedExamples(e.names);
      const keptTrajectories = e.names.map(traj);
      expect(tokens.examples).toBe(e.examples);
      expect(row).toMatchObject({
        cap: e.cap,
        trajectories: e.names.length,
        examples: e.examples,
        instances_covered: 3,
        instances_with_success: 3,
        easiest_instances: 1,
        example_tokens_max: tokens.max,
        max_tokens: Math.max(...keptTrajectories.map((t) => t.tokens.prompt + t.tokens.completion)),
        order: 'fewest_calls',
        dedup: false,
        recipe_dataset: e.cap === 2,
      });
      expect(row.mean_llm_calls).toBeCloseTo(e.calls, 10);
      expect(row.easiest_share).toBeCloseTo(e.easy, 10);
      expect(row.example_tokens_mean).toBeCloseTo(tokens.mean, 10);

      // The files agree with the row: which trajectories, how many lines.
      const manifest = JSON.parse(readFileSync(path.join(row.dataset_dir, MANIFEST_FILE), 'utf8'));
      expect(manifest).toMatchObject({ cap: e.cap, order: 'fewest_calls', dedup: false, seed: SEED, iteration: 0, max_tokens: MAX_TOKENS });
      expect(manifest.counts).toMatchObject({ trajectories_in: 18, resolved: 9, not_resolved: 9, not_finished: 1, successes: 8, kept_after_cap: e.names.length, over_cap: 8 - e.names.length, examples: e.examples });
      expect(row.kept.map((k) => `${k.instance_id}#${k.sample_index}`)).toEqual(e.names);
      expect(linesPerInstance(row.dataset_dir)).toEqual(Object.fromEntries(TASKS.map((id) => [id, expectedExamples(e.names.filter((n) => n.startsWith(`${id}#`))).examples])));
    }
    // The easy share falls as the cap tightens: the bias the cap exists to remove.
    const shares = result.rows.map((r) => r.easiest_share!);
    expect(shares[0]).toBeLessThan(shares[1]!);
    expect(shares[1]).toBeLessThan(shares[2]!);
    expect(shares[2]).toBeLessThan(shares[3]!);
  });

  it('drops the invalid call and the call above max_tokens, and says so in the manifest', async () => {
    const none = JSON.parse(readFileSync(path.join(result.rows[3]!.dataset_dir, MANIFEST_FILE), 'utf8'));
    expect(none.dropped).toMatchObject({ invalid_call: 1, over_max_tokens: 1, over_cap: 0, not_finished: 1 });
    const one = JSON.parse(readFileSync(path.join(result.rows[0]!.dataset_dir, MANIFEST_FILE), 'utf8'));
    expect(one.dropped).toMatchObject({ invalid_call: 0, over_max_tokens: 0, over_cap: 5 });
  });

  it("the recipe's cap-2 folder is byte-identical to what the loop's emit step writes", async () => {
    const reference = path.join(tempDir('rft-ablate-ref-'), 'cap-2');
    loopDataset(main, reference);
    for (const file of [DATASET_FILE, MANIFEST_FILE]) {
      expect(readFileSync(path.join(main.dir, 'iter-0', 'datasets', 'cap-2', file)).equals(readFileSync(path.join(reference, file)))).toBe(true);
    }
    // A cap-1 dataset is not the loop's: it differs.
    expect(readFileSync(path.join(main.dir, 'iter-0', 'datasets', 'cap-1', DATASET_FILE)).equals(readFileSync(path.join(reference, DATASET_FILE)))).toBe(false);
  });

  it('reuses the folder the loop already wrote, leaving its bytes as they were', async () => {
    const built = buildRun('ablate-reuse');
    const loopDir = runLayout.datasetDir(built.dir, 0, 2);
    loopDataset(built, loopDir);
    const before = [DATASET_FILE, MANIFEST_FILE].map((f) => readFileSync(path.join(loopDir, f)));
    const again = await rebuildDatasets({ runDir: built.dir, iteration: 0, caps: [2], dedup: false, order: 'fewest_calls' });
    expect(again.folders).toEqual([loopDir]);
    expect(readdirSync(path.dirname(loopDir))).toEqual(['cap-2']);
    [DATASET_FILE, MANIFEST_FILE].forEach((f, i) => expect(readFileSync(path.join(loopDir, f)).equals(before[i]!)).toBe(true));
  });

  it('--dedup writes cap-<c>-dedup folders that keep one success per normalised patch', async () => {
    const dedup = await rebuildDatasets({ runDir: main.dir, iteration: 0, caps: [2, null], dedup: true });
    expect(dedup.rows.map((r) => r.folder)).toEqual([path.join('iter-0', 'datasets', 'cap-2-dedup'), path.join('iter-0', 'datasets', 'cap-none-dedup')]);
    // EASY ranked: #3 (5 calls), #1 (same patch as #3), #2 (7), #0 (8), #4 (same patch as #2), #5 (10)
    const cap2 = [`${EASY}#2`, `${EASY}#3`, `${H1}#1`, `${H2}#2`];
    const none = [`${EASY}#0`, `${EASY}#2`, `${EASY}#3`, `${EASY}#5`, `${H1}#1`, `${H2}#2`];
    expect(dedup.rows.map((r) => [r.trajectories, r.examples, r.dedup, r.recipe_dataset])).toEqual([
      [4, 5 + 7 + 6 + 5, true, false],
      [6, 5 + 7 + 8 + 9 + 6 + 5, true, false],
    ]);
    expect(dedup.rows[0]!.example_tokens_mean).toBeCloseTo(expectedExamples(cap2).mean, 10);
    expect(dedup.rows[1]!.example_tokens_max).toBe(expectedExamples(none).max);
    expect(dedup.rows[0]!.easiest_share).toBeCloseTo(12 / 23, 10);
    expect(dedup.rows[1]!.easiest_share).toBeCloseTo(29 / 40, 10);
    const manifest = JSON.parse(readFileSync(path.join(dedup.folders[1]!, MANIFEST_FILE), 'utf8'));
    expect(manifest).toMatchObject({ dedup: true, cap: null });
    expect(manifest.counts).toMatchObject({ duplicate_patch: 2, kept_after_dedup: 6, kept_after_cap: 6 });
    // The recipe's folder was not touched by a dedup rebuild: it still holds 4 trajectories.
    expect(JSON.parse(readFileSync(path.join(main.dir, 'iter-0', 'datasets', 'cap-2', MANIFEST_FILE), 'utf8')).dedup).toBe(false);
  });

  it('--order random writes cap-<c>-random folders whose choice follows the seeded hash', async () => {
    const random = await rebuildDatasets({ runDir: main.dir, iteration: 0, caps: [1, 2], order: 'random' });
    expect(random.rows.map((r) => r.folder)).toEqual([path.join('iter-0', 'datasets', 'cap-1-random'), path.join('iter-0', 'datasets', 'cap-2-random')]);
    const easyRanked = [0, 1, 2, 3, 4, 5].sort((a, b) => (tieHash(SEED, EASY, a) < tieHash(SEED, EASY, b) ? -1 : 1));
    for (const [i, cap] of [1, 2].entries()) {
      const names = [...easyRanked.slice(0, cap).map((s) => `${EASY}#${s}`), `${H1}#1`, `${H2}#2`];
      const want = expectedExamples(names);
      expect(random.rows[i]).toMatchObject({ cap, order: 'random', trajectories: cap + 2, examples: want.examples, example_tokens_max: want.max });
      expect(random.rows[i]!.mean_llm_calls).toBeCloseTo(names.map((n) => traj(n).llm_calls).reduce((a, b) => a + b, 0) / names.length, 10);
      expect(JSON.parse(readFileSync(path.join(random.folders[i]!, MANIFEST_FILE), 'utf8')).order).toBe('random');
    }
    // Both flags: both suffixes.
    const both = await rebuildDatasets({ runDir: main.dir, iteration: 0, caps: [2], order: 'random', dedup: true });
    expect(both.rows[0]!.folder).toBe(path.join('iter-0', 'datasets', 'cap-2-dedup-random'));
  });

  it('names folders relative to the recipe, so cap-<c> always holds the recipe settings', async () => {
    const select = { dedup: true, order: 'random' as const };
    expect(ablateDatasetDir('/r', 1, { cap: 2, dedup: true, order: 'random' }, select)).toBe('/r/iter-1/datasets/cap-2');
    expect(ablateDatasetDir('/r', 1, { cap: null, dedup: false, order: 'fewest_calls' }, select)).toBe('/r/iter-1/datasets/cap-none-nodedup-fewest_calls');

    // A recipe that dedups: its cap-2 folder is the dedup one (what its loop wrote), --no-dedup goes aside.
    const built = buildRun('ablate-dedup-recipe', { select: '{cap: 2, dedup: true, require_finished: true}' });
    const defaults = await rebuildDatasets({ runDir: built.dir, iteration: 0, caps: [2] });
    expect(defaults.rows[0]).toMatchObject({ folder: path.join('iter-0', 'datasets', 'cap-2'), dedup: true, recipe_dataset: true, trajectories: 4, examples: 23 });
    const reference = path.join(tempDir('rft-ablate-ref-'), 'cap-2');
    loopDataset(built, reference);
    expect(readFileSync(path.join(defaults.folders[0]!, MANIFEST_FILE)).equals(readFileSync(path.join(reference, MANIFEST_FILE)))).toBe(true);
    const plain = await rebuildDatasets({ runDir: built.dir, iteration: 0, caps: [2], dedup: false });
    expect(plain.rows[0]).toMatchObject({ folder: path.join('iter-0', 'datasets', 'cap-2-nodedup'), dedup: false, recipe_dataset: false, trajectories: 4, examples: 21 });
  });

  it('with sft.accumulate, iteration K is rebuilt from iterations 0..K, each capped on its own, and needs all of them complete', async () => {
    const built = buildRun('ablate-accumulate', { sft: ', accumulate: true', iterations: [0, 1] });
    const acc = await rebuildDatasets({ runDir: built.dir, iteration: 1, caps: [1, null] });
    expect(acc.iterationsIncluded).toEqual([0, 1]);
    expect(acc.pool).toEqual({ trajectories: 36, successes: 16, instances: 3, instancesWithSuccess: 3 });
    expect(acc.rows.map((r) => [r.cap, r.trajectories, r.examples, r.folder])).toEqual([
      [1, 6, 2 * 16, path.join('iter-1', 'datasets', 'cap-1')],
      [null, 16, 2 * 54, path.join('iter-1', 'datasets', 'cap-none')],
    ]);
    expect(acc.rows[0]!.kept.map((k) => `${k.instance_id}@${k.iteration}#${k.sample_index}`)).toEqual([`${EASY}@0#3`, `${EASY}@1#3`, `${H1}@0#1`, `${H1}@1#1`, `${H2}@0#2`, `${H2}@1#2`]);
    expect(JSON.parse(readFileSync(path.join(acc.folders[0]!, MANIFEST_FILE), 'utf8')).iterations_included).toEqual([0, 1]);
    expect(formatAblateReport(acc)).toContain('run ablate-accumulate, iterations 0, 1 (accumulated): 36 trajectories, 16 successes');

    const gap = buildRun('ablate-accumulate-gap', { sft: ', accumulate: true', iterations: [0, 1], leave: [`${H1}#0`] });
    await expect(rebuildDatasets({ runDir: gap.dir, iteration: 1, caps: [1] })).rejects.toThrow(/iteration 0 of run ablate-accumulate-gap is not completely sampled.*1 of 18 samples are not recorded \(minigym__ledgerlite-303 #0\)/);
  });

  it('works while another process holds the run and is appending: only whole lines are read', async () => {
    const built = buildRun('ablate-live');
    // built.run holds the lock (as a driving process would); a verdict line is half-written.
    appendFileSync(runLayout.verdicts(built.dir, 0), '{"instance_id":"minigym__unitkit-101","patch_hash":"');
    appendFileSync(runLayout.trajectories(built.dir, 0), '{"run":"ablate-test","iteration":0,"inst');
    const live = await rebuildDatasets({ runDir: built.dir, iteration: 0, caps: [1, 2, null] });
    expect(live.rows.map((r) => [r.trajectories, r.examples])).toEqual(result.rows.filter((r) => r.cap !== 3).map((r) => [r.trajectories, r.examples]));
    expect(existsSync(path.join(built.dir, 'lock'))).toBe(true);
  });

  it('reads a run whose task file is Parquet (as the hub ships it) as it reads one in JSONL', async () => {
    const built = buildRun('ablate-parquet', { parquet: true });
    const fromParquet = await rebuildDatasets({ runDir: built.dir, iteration: 0, caps: [1, 2, 3, null] });
    const shape = (r: AblateResult) => r.rows.map((row) => [row.cap, row.trajectories, row.examples, row.kept.map((k) => `${k.instance_id}#${k.sample_index}`)]);
    expect(shape(fromParquet)).toEqual(shape(result));
  });

  it('refuses an iteration that is not sampled, or not there, and writes nothing', async () => {
    await expect(rebuildDatasets({ runDir: main.dir, iteration: 1, caps: [1] })).rejects.toThrow(/iteration 1 of run ablate-test has not been sampled yet \(.*iter-1\/trajectories\.jsonl does not exist\)/);
    expect(existsSync(path.join(main.dir, 'iter-1'))).toBe(false);
    await expect(rebuildDatasets({ runDir: main.dir, iteration: 2, caps: [1] })).rejects.toThrow(/has 2 iteration\(s\), numbered 0 to 1; there is no iteration 2/);
    await expect(rebuildDatasets({ runDir: main.dir, iteration: 2, caps: [1] })).rejects.toThrow(AblateError);
    await expect(rebuildDatasets({ runDir: path.dirname(main.dir), iteration: 0, caps: [1] })).rejects.toThrow(/is not a run directory \(no run\.json\)/);
  });

  it('refuses an incompletely sampled iteration, naming the missing samples and verdicts', async () => {
    const built = buildRun('ablate-partial', {
      leave: [`${H2}#5`],
      noVerdict: [`${H1}#3`],
      cut: { [`${H2}#0`]: ['error'] },
    });
    let message = '';
    try {
      await rebuildDatasets({ runDir: built.dir, iteration: 0, caps: [1, 2] });
    } catch (error) {
      expect(error).toBeInstanceOf(AblateError);
      message = (error as Error).message;
    }
    expect(message).toMatch(/^iteration 0 of run ablate-partial is not completely sampled and verified/);
    expect(message).toContain(`1 of 18 samples are not recorded (${H2} #5)`);
    expect(message).toContain(`1 recorded patch(es) have no verdict (${H1} #3)`);
    expect(message).toContain(`1 recorded patch(es) have only an \`error\` verdict, to be retried (${H2} #0)`);
    expect(existsSync(path.join(built.dir, 'iter-0', 'datasets'))).toBe(false);
  });
});

describe('parseCapList', () => {
  it('reads caps and none in order, across commas and repeated flags', async () => {
    expect(parseCapList('1,2,3,none')).toEqual([1, 2, 3, null]);
    expect(parseCapList(['none', ' 2 ,1'])).toEqual([null, 2, 1]);
    expect(parseCapList('1,NULL')).toEqual([1, null]);
    expect(parseCapList(4)).toEqual([4]);
  });

  it('names a bad value', async () => {
    expect(() => parseCapList('1,two')).toThrow(/--cap: "two" is not a cap/);
    expect(() => parseCapList('0')).toThrow(/--cap: "0" is not a cap/);
    expect(() => parseCapList('1.5')).toThrow(/--cap: "1.5" is not a cap/);
    expect(() => parseCapList('1,,2')).toThrow(/--cap: "" is not a cap/);
    expect(() => parseCapList('2,none,2')).toThrow(/--cap: 2 is given twice/);
    expect(() => parseCapList('x')).toThrow(AblateError);
  });
});

describe('rft select (the built CLI)', () => {
  it('prints the comparison table, one row per cap in --cap order', async () => {
    const out = rft(['select', main.dir, '--iteration', '0', '--cap', 'none,1', '--cap', '2']);
    expect(out.stderr).not.toMatch(/rft: /);
    expect(out.status).toBe(0);
    const table = formatAblateTable([result.rows[3]!, result.rows[0]!, result.rows[1]!]);
    expect(out.stdout).toContain(table);
    const rows = out.stdout.split('\n').filter((l) => /^(none|1|2) /.test(l));
    expect(rows.map((l) => l.split(/\s+/).slice(0, 5))).toEqual([
      ['none', '8', '54', '3/3', '7.00'],
      ['1', '3', '16', '3/3', '5.33'],
      ['2', '4', '21', '3/3', '5.50'],
    ]);
    expect(rows.map((l) => l.match(/\d+\.\d%/)![0])).toEqual(['79.6%', '31.3%', '47.6%']);
    expect(rows[2]).toMatch(/iter-0\/datasets\/cap-2 \*$/);
    expect(out.stdout).toContain('run ablate-test, iteration 0: 18 trajectories, 8 successes on 3 of 3 instances');
    expect(out.stdout).toContain(`easiest 20%: 1 of 3 instance(s) with a success (${EASY})`);
  });

  it('--json prints the rows and the folders written', async () => {
    const out = rft(['select', main.dir, '--iteration', '0', '--cap', '1,none', '--dedup', '--order', 'random', '--json']);
    expect(out.status).toBe(0);
    const parsed = JSON.parse(out.stdout) as { rows: Array<{ cap: number | null; folder: string; dedup: boolean; order: string; examples: number }>; folders: string[]; easiest_instances: string[]; iteration: number };
    expect(parsed.iteration).toBe(0);
    expect(parsed.easiest_instances).toEqual([EASY]);
    expect(parsed.rows.map((r) => [r.cap, r.folder, r.dedup, r.order])).toEqual([
      [1, path.join('iter-0', 'datasets', 'cap-1-dedup-random'), true, 'random'],
      [null, path.join('iter-0', 'datasets', 'cap-none-dedup-random'), true, 'random'],
    ]);
    expect(parsed.folders).toEqual(parsed.rows.map((r) => path.join(main.dir, r.folder)));
    for (const folder of parsed.folders) expect(readLines(path.join(folder, DATASET_FILE))).toHaveLength(parsed.rows[parsed.folders.indexOf(folder)]!.examples);
  });

  it('a bad --cap or an unsampled iteration exits 2 with a plain message', async () => {
    const bad = rft(['select', main.dir, '--iteration', '0', '--cap', '1,lots']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/^rft: --cap: "lots" is not a cap/);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    const early = rft(['select', main.dir, '--iteration', '1', '--cap', '2']);
    expect(early.status).toBe(2);
    expect(early.stderr).toMatch(/^rft: iteration 1 of run ablate-test has not been sampled yet/);
    expect(early.stdout).toBe('');
  });
});
