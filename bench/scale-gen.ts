/**
 * Generates a run directory of full SWE-Gym size for benchmark 6: 2,438 instances × 30 samples =
 * 73,140 trajectories (BENCH_SCALE_TRAJECTORIES), ~12 calls each (10–14), every call's prompt the
 * agent's real system prompt for its state plus an issue and a file context that grows by one file
 * (~3.3 KB of Python from the bundled repositories) per call, to ~40 KB; completions are actions.
 * Each instance has its own 25 candidate files, perturbed so that no text is shared between
 * instances (conservative for dedup: real instances of one repository share code); an instance's
 * samples pick files from them in their own order. Successes are rare and concentrated (half the
 * instances never succeed).
 *
 * Written straight into the compact layout through the real writer (TrajectoryLedger), and the
 * bytes the whole-record layout would take are counted on the same records (JSON.stringify of
 * each, not written). A whole-layout copy of the first BENCH_SCALE_OLD trajectories is written for
 * "today's code", which cannot read more.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { StateName } from '../src/agent/actions.js';
import { systemPrompt } from '../src/agent/actions.js';
import { issueBlock } from '../src/agent/prompts.js';
import { TrajectorySchema, type Trajectory } from '../src/agent/trajectory.js';
import { parseRecipe } from '../src/recipe/load.js';
import { Ledger } from '../src/store/ledger.js';
import { RunDir } from '../src/store/run-dir.js';
import { blobsFileOf, TrajectoryLedger } from '../src/store/trajectories.js';
import { InstanceSchema, type Instance } from '../src/tasks/instance.js';
import { mulberry32 } from '../src/util/prng.js';
import { normalizePatch, patchHash } from '../src/verify/patch.js';
import { buildEvalSpec, specHash } from '../src/verify/spec.js';
import { runLayout } from '../src/loop/layout.js';
import { bundledPythonFiles, TASKS_FILE } from './lib/fixtures.js';

export interface ScaleRun {
  runDir: string;
  runName: string;
  trajectories: number;
  instances: number;
  /** Bytes of the compact layout: trajectories.jsonl + trajectories.blobs.jsonl. */
  compactBytes: number;
  recordBytes: number;
  blobBytes: number;
  /** Bytes the whole-record layout takes for the same records. */
  wholeBytes: number;
  meanCalls: number;
  meanPromptKb: number;
  maxPromptKb: number;
  generatedSeconds: number;
  reused: boolean;
  /** A run directory holding the first `oldTrajectories` in the whole-record layout. */
  oldRunDir: string;
  oldTrajectories: number;
}

const FORMAT = 'rft-bench-scale/1';
const SAMPLES = 30;
const FILES_PER_INSTANCE = 25;
const FILE_LINES = 90;
export const SCALE_TEMPLATE_TIMEOUT_S = 1800;

function corpus(): string[] {
  return bundledPythonFiles()
    .flatMap((f) => f.text.split('\n'))
    .filter((l) => l.trim() !== '');
}

const STATES: StateName[] = ['SearchCode', 'SearchCode', 'IdentifyCode', 'SearchCode', 'IdentifyCode', 'DecideRelevance', 'PlanToCode', 'ClarifyCodeChange', 'EditCode', 'PlanToCode', 'ClarifyCodeChange', 'EditCode', 'PlanToCode', 'PlanToCode'];

export function recipeText(name: string, tasksFile: string): string {
  return `name: ${name}
seed: 1
iterations: 1
tasks:
  train: {path: ${tasksFile}}
sandbox: {memory: 1g, pids: 256, test_timeout_s: ${SCALE_TEMPLATE_TIMEOUT_S}, concurrency: 2}
policy: {kind: openai, base_url: 'http://127.0.0.1:9/v1', model: bench-model, concurrency: 16, retries: 0}
sampling: {samples_per_task: ${SAMPLES}, instances_in_flight: 2}
select: {cap: 2}
# Generated texts carry estimated token counts; a limit no example reaches keeps the after-emit
# check (rft sft check, which counts the real tokens) from refusing what the estimate let through.
sft: {max_tokens: 131072}
finetune:
  backend: command
  command: "false"
  base_model: bench-model
  output_model_file: '{output_dir}/MODEL'
`;
}

/** The run directories for a size, generated once into `baseDir` (reused while the marker says the same size). */
export function ensureScaleRun(baseDir: string, trajectories: number, oldTrajectories: number): ScaleRun {
  const dir = path.join(baseDir, `scale-${trajectories}-${oldTrajectories}`);
  const marker = path.join(dir, 'DONE');
  if (existsSync(marker)) {
    const saved = JSON.parse(readFileSync(marker, 'utf8')) as ScaleRun & { format: string };
    if (saved.format === FORMAT) return { ...saved, reused: true };
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const started = Date.now();
  const result = generate(dir, trajectories, oldTrajectories);
  const out: ScaleRun = { ...result, generatedSeconds: (Date.now() - started) / 1000, reused: false };
  writeFileSync(marker, JSON.stringify({ format: FORMAT, ...out }));
  return out;
}

function generate(dir: string, total: number, oldTotal: number): Omit<ScaleRun, 'generatedSeconds' | 'reused'> {
  const rand = mulberry32(14);
  const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
  const lines = corpus();
  const template = readFileSync(TASKS_FILE, 'utf8').split('\n').filter((l) => l.trim() !== '').map((l) => InstanceSchema.parse(JSON.parse(l)));
  const instances = Math.ceil(total / SAMPLES);

  // The task set: clones of the bundled tasks under new ids (their eval specs are real).
  const tasksFile = path.join(dir, 'tasks.jsonl');
  const tasks: Instance[] = [];
  const taskLines: string[] = [];
  for (let i = 0; i < instances; i++) {
    const base = template[i % template.length]!;
    const id = `benchgym__scale-${String(i).padStart(5, '0')}`;
    const raw = JSON.parse(readFileSync(TASKS_FILE, 'utf8').split('\n')[i % template.length]!) as Record<string, unknown>;
    taskLines.push(JSON.stringify({ ...raw, instance_id: id }));
    tasks.push({ ...base, instance_id: id });
  }
  writeFileSync(tasksFile, `${taskLines.join('\n')}\n`);
  // The whole-layout run holds only the first instances' samples: its task set is just those.
  const oldTasksFile = path.join(dir, 'tasks-old.jsonl');
  writeFileSync(oldTasksFile, `${taskLines.slice(0, Math.ceil(oldTotal / SAMPLES)).join('\n')}\n`);

  const open = (name: string) => {
    const run = RunDir.open({ runsDir: dir, loaded: parseRecipe(recipeText(name, name === 'scale' ? tasksFile : oldTasksFile), path.join(dir, `${name}.yaml`)) });
    run.writeState({ ...run.readState(), phases: { 'iter-0/sample': { status: 'done', updated_at: new Date().toISOString(), note: null } } });
    run.close();
    return path.join(dir, name);
  };
  const runDir = open('scale');
  const oldRunDir = open('scale-old');
  const trajectoriesFile = runLayout.trajectories(runDir, 0);
  const ledger = TrajectoryLedger.open(trajectoriesFile, undefined, { fsyncEach: false });
  const oldLedger = Ledger.open(runLayout.trajectories(oldRunDir, 0), TrajectorySchema, { fsyncEach: false }).ledger;
  const verdicts: string[] = [];
  const oldVerdicts: string[] = [];

  let written = 0;
  let wholeBytes = 0;
  let calls = 0;
  let promptChars = 0;
  let maxPrompt = 0;
  const day = Date.parse('2026-11-30T00:00:00Z');
  for (let i = 0; i < instances && written < total; i++) {
    const task = tasks[i]!;
    const spec = specHash(buildEvalSpec(task, { timeout_s: SCALE_TEMPLATE_TIMEOUT_S }));
    const issue = issueBlock(`${task.problem_statement}\n\n(instance ${task.instance_id})`);
    // This instance's candidate files: windows of the corpus, every 5th line marked with the instance.
    const files = Array.from({ length: FILES_PER_INSTANCE }, (_, f) => {
      const from = int(0, Math.max(0, lines.length - FILE_LINES));
      const body = lines
        .slice(from, from + FILE_LINES)
        .map((l, n) => (n % 5 === 0 ? `${l}  # ${task.instance_id}:${f}:${n}` : l))
        .join('\n');
      return { path: `pkg${f % 4}/module_${f}.py`, text: `<file path="pkg${f % 4}/module_${f}.py">\n${body}\n</file>` };
    });
    const rate = rand() < 0.5 ? 0 : 0.05 + rand() * 0.45;
    const goodPatches = Array.from({ length: int(1, 3) }, (_, n) => `diff --git a/pkg/fix.py b/pkg/fix.py\n--- a/pkg/fix.py\n+++ b/pkg/fix.py\n@@ -1 +1 @@\n-old\n+fix ${task.instance_id} ${n}\n`);
    const verdictDone = new Set<string>();
    for (let s = 0; s < SAMPLES && written < total; s++) {
      const success = rand() < rate;
      const n = success ? int(10, 12) : int(10, 14);
      const order = [...files.keys()].sort(() => rand() - 0.5);
      const history: Array<{ role: 'assistant' | 'user'; content: string }> = [];
      const callRecords: Trajectory['calls'] = [];
      const perCall: number[] = [];
      for (let c = 0; c < n; c++) {
        const state = STATES[c]!;
        const shown = order.slice(0, Math.min(c + 1, 12)).sort((a, b) => files[a]!.path.localeCompare(files[b]!.path));
        const context = shown.map((f) => files[f]!.text).join('\n');
        const user = state === 'EditCode' ? `<instructions>\nChange line ${int(1, 80)} of ${files[order[0]!]!.path} (sample ${s})\n</instructions>\n\n${files[order[0]!]!.text}` : `${issue}\n\n<file_context>\n${context}\n</file_context>`;
        const messages = [{ role: 'system' as const, content: systemPrompt(state, 'json') }, { role: 'user' as const, content: user }, ...(state === 'SearchCode' || state === 'PlanToCode' ? history.slice(-4) : [])];
        const completion = { role: 'assistant' as const, content: JSON.stringify({ thoughts: `step ${c} of sample ${s} on ${task.instance_id}: ${'consider the span '.repeat(int(2, 8))}`, action: state, file: files[order[c % order.length]!]!.path }) };
        history.push(completion, { role: 'user', content: `Observation for step ${c}: ${'found matching spans; '.repeat(int(3, 12))}` });
        const prompt = messages.reduce((k, m) => k + m.content.length, 0);
        promptChars += prompt;
        maxPrompt = Math.max(maxPrompt, prompt);
        const tokens = Math.round(prompt / 3.6) + 40;
        perCall.push(tokens + 60);
        callRecords.push({ state, messages, completion, usage: { prompt_tokens: tokens, completion_tokens: 60 }, invalid: null, retry: false, latency_ms: int(800, 9000) });
      }
      calls += n;
      const emptyPatch = !success && rand() < 0.2;
      const patch = success ? goodPatches[int(0, goodPatches.length - 1)]! : emptyPatch ? '' : `diff --git a/pkg/x.py b/pkg/x.py\n--- a/pkg/x.py\n+++ b/pkg/x.py\n@@ -1 +1 @@\n-a\n+try ${task.instance_id} ${s}\n`;
      const finished = success || rand() < 0.6;
      const trajectory = TrajectorySchema.parse({
        run: 'scale',
        iteration: 0,
        instance_id: task.instance_id,
        sample_index: s,
        seed: int(0, 2 ** 31),
        model: 'bench-model',
        protocol: 'json',
        temperature: 1,
        calls: callRecords,
        transitions: callRecords.slice(1).map((c, k) => ({ from: callRecords[k]!.state, to: c.state, trigger: 'next' })),
        outcome: finished ? { status: 'finished', reason: null } : { status: 'rejected', reason: 'the agent gave up' },
        patch,
        llm_calls: n,
        tokens: { encoding: 'cl100k_base', prompt: perCall.reduce((a, b) => a + b - 60, 0), completion: 60 * n, max_example: Math.max(...perCall), per_call: perCall },
        usage: { prompt_tokens: perCall.reduce((a, b) => a + b - 60, 0), completion_tokens: 60 * n },
        started_at: new Date(day + written * 1000).toISOString(),
        duration_ms: int(30_000, 400_000),
      });
      ledger.append(trajectory);
      wholeBytes += Buffer.byteLength(JSON.stringify(trajectory)) + 1;
      if (written < oldTotal) oldLedger.append(trajectory);
      const hash = patchHash(normalizePatch(patch));
      if (!verdictDone.has(hash)) {
        verdictDone.add(hash);
        const outcome = hash === patchHash('') ? 'empty_patch' : success ? 'resolved' : 'unresolved';
        const line = JSON.stringify({
          instance_id: task.instance_id,
          patch_hash: hash,
          spec_hash: spec,
          outcome,
          reason: outcome === 'resolved' ? null : 'FAIL_TO_PASS failed',
          apply_method: outcome === 'empty_patch' ? null : 'git_apply',
          test_exit_code: outcome === 'empty_patch' ? null : outcome === 'resolved' ? 0 : 1,
          tests: outcome === 'empty_patch' ? {} : { 'tests/test_fix.py::test_fix': success ? 'PASSED' : 'FAILED', 'tests/test_other.py::test_other': 'PASSED' },
          report:
            outcome === 'empty_patch'
              ? null
              : {
                  FAIL_TO_PASS: { success: success ? ['tests/test_fix.py::test_fix'] : [], failure: success ? [] : ['tests/test_fix.py::test_fix'] },
                  PASS_TO_PASS: { success: ['tests/test_other.py::test_other'], failure: [] },
                },
          log_truncated: false,
          duration_ms: int(8_000, 90_000),
          created_at: new Date(day + written * 1000).toISOString(),
        });
        verdicts.push(line);
        if (written < oldTotal) oldVerdicts.push(line);
      }
      written += 1;
    }
    if (verdicts.length > 2000) appendFileSync(runLayout.verdicts(runDir, 0), `${verdicts.splice(0).join('\n')}\n`);
  }
  if (verdicts.length > 0) appendFileSync(runLayout.verdicts(runDir, 0), `${verdicts.join('\n')}\n`);
  if (oldVerdicts.length > 0) appendFileSync(runLayout.verdicts(oldRunDir, 0), `${oldVerdicts.join('\n')}\n`);
  ledger.close();
  oldLedger.close();
  const recordBytes = statSync(trajectoriesFile).size;
  const blobBytes = statSync(blobsFileOf(trajectoriesFile)).size;
  return {
    runDir,
    runName: 'scale',
    trajectories: written,
    instances,
    compactBytes: recordBytes + blobBytes,
    recordBytes,
    blobBytes,
    wholeBytes,
    meanCalls: calls / written,
    meanPromptKb: promptChars / calls / 1024,
    maxPromptKb: maxPrompt / 1024,
    oldRunDir,
    oldTrajectories: Math.min(oldTotal, written),
  };
}
