import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { connectEngine } from '../../src/sandbox/engine.js';
import { imageNameFor } from '../../src/tasks/image-name.js';
import { MINIGYM_TASKS } from '../helpers/minigym.js';
import { freePort } from '../helpers/ports.js';
import { makeHubModel, MARKED_CHATML_TEMPLATE } from '../helpers/standin-hub.js';
import { STANDIN_BIN, startVllmStandin, stopStandin, type StandinProcess } from '../helpers/vllm-standin.js';

/**
 * Every shipped recipe, run end to end as a researcher runs it, with the real tools' stand-ins on
 * PATH (test/standins/bin: `vllm`, `trl`, `llamafactory-cli`, `axolotl`, and the python that merges
 * a LoRA adapter), the base models in a Hugging Face cache laid out as huggingface_hub lays it out,
 * and M_0 served by a vLLM the "user" started before `rft run`. A recipe is changed only where a
 * user would change it: its task files and sizes, and the ports of this machine. Everything
 * else — Docker verification, selection, the wrappers in scripts/, serving, eval — is the real path.
 */

const ROOT = path.resolve(import.meta.dirname, '../..');
const RFT = path.join(ROOT, 'dist/cli/main.js');
// Two bundled tasks the SIMULATED base model solves about half the time: every iteration keeps some successes.
const TASK_IDS = ['minigym__iniform-203', 'minigym__unitkit-101'];
const BASE_7B = 'Qwen/Qwen2.5-Coder-7B-Instruct';
const BASE_32B = 'Qwen/Qwen2.5-Coder-32B-Instruct';

let work: string;
let hub: string;
let tasksFile: string;
const swegymTags: string[] = [];
const servers: StandinProcess[] = [];

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'rft-realpath-'));
  hub = path.join(work, 'hf-hub');
  // The base models as a GPU box has them cached; their chat template marks assistant spans, so
  // `trl sft --assistant_only_loss true` takes it as it is.
  for (const id of [BASE_7B, BASE_32B]) makeHubModel(hub, id, undefined, { chatTemplate: MARKED_CHATML_TEMPLATE });
  // The user's task file: two instances of the bundled set.
  const lines = readFileSync(MINIGYM_TASKS, 'utf8').split('\n').filter((line) => TASK_IDS.some((id) => line.includes(`"${id}"`)));
  expect(lines).toHaveLength(TASK_IDS.length);
  tasksFile = path.join(work, 'tasks.jsonl');
  writeFileSync(tasksFile, `${lines.join('\n')}\n`);
  // The shipped recipes name SWE-Gym's published images (xingyaoww/…) for training: here they are
  // the locally built images under those names, as a user who built or loaded them has them.
  const docker = await connectEngine();
  for (const id of TASK_IDS) {
    const local = docker.getImage(imageNameFor(id, 'swebench'));
    const [repo, tag] = imageNameFor(id, 'swegym').split(':') as [string, string];
    await local.tag({ repo, tag });
    swegymTags.push(`${repo}:${tag}`);
  }
}, 120_000);

afterAll(async () => {
  await Promise.all(servers.map((proc) => stopStandin(proc)));
  const docker = await connectEngine();
  for (const tag of swegymTags) await docker.getImage(tag).remove({ noprune: true }).catch(() => undefined);
});

const standinEnv = (): NodeJS.ProcessEnv => ({
  PATH: `${STANDIN_BIN}${path.delimiter}${process.env.PATH ?? ''}`,
  HF_HUB_CACHE: hub,
  HF_HUB_OFFLINE: '1',
  // The python of the GPU box's env, with peft: scripts/lib/merge-lora.py runs under it.
  PYTHON: path.join(STANDIN_BIN, 'python-peft'),
});

/** M_0: the vLLM the user runs before `rft run` (rft serves nothing for M_0). */
async function startM0(model: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const { proc, base } = await startVllmStandin([model, '--max-model-len', '32768', ...extra], { ...standinEnv(), ...env });
  servers.push(proc);
  return `${base}/v1`;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function rftRun(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [RFT, ...args], { cwd: ROOT, env: { ...process.env, ...standinEnv() }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The overrides a user makes to try a shipped recipe small: task files, sizes, this machine's ports. */
function sized(m0Url: string, servePort: number | null, iterations: number): string[] {
  const sets = [
    `tasks.train.path=${tasksFile}`,
    `tasks.eval.path=${tasksFile}`,
    `iterations=${iterations}`,
    'sampling.samples_per_task=3',
    'sampling.instances_in_flight=2',
    'sandbox.concurrency=2',
    'sandbox.cpus=1',
    'sandbox.memory=1g',
    `policy.base_url=${m0Url}`,
  ];
  if (servePort !== null) sets.push(`serve.port=${servePort}`);
  return sets.flatMap((set) => ['--set', set]);
}

const finetuneDir = (runDir: string, k: number) => path.join(runDir, `iter-${k}`, 'finetune');
const job = (runDir: string, k: number) => JSON.parse(readFileSync(path.join(finetuneDir(runDir, k), 'finetune.json'), 'utf8')) as { status: string; output_model: string; base_model: string };
const ledger = (file: string) => readFileSync(file, 'utf8').split('\n').filter((line) => line.trim() !== '');
const modelsOf = (file: string) => new Set(ledger(file).map((line) => (JSON.parse(line) as { model: string }).model));
const trainerStarts = (runDir: string, k: number) => readFileSync(path.join(finetuneDir(runDir, k), 'trainer.log'), 'utf8').match(/^=== rft: iteration /gm)?.length ?? 0;

function expectComplete(run: Run): void {
  expect(run.code, `rft exited ${run.code}\n--- stderr ---\n${run.stderr.slice(-4000)}`).toBe(0);
  expect(run.stdout).toContain('run complete');
}

/** M_{m} answered the eval of M_{m}: one trajectory per instance, all sent to the served name. */
function expectEvaluated(runDir: string, m: number, servedName: string): void {
  const file = path.join(runDir, 'eval', `m${m}`, 'trajectories.jsonl');
  expect(ledger(file)).toHaveLength(TASK_IDS.length);
  expect([...modelsOf(file)]).toEqual([servedName]);
  expect(ledger(path.join(runDir, 'eval', `m${m}`, 'verdicts.jsonl')).length).toBeGreaterThan(0);
}

describe('shipped recipes, end to end with the real tools\' stand-ins', () => {
  it('moatless-7b (TRL full fine-tune, vLLM started by rft): a wrong output wiring stops before serving; the fixed recipe reads the trained model without training again', async () => {
    const m0 = await startM0(BASE_7B);
    const runs = path.join(work, 'runs-7b');
    const recipe = 'recipes/moatless-7b.yaml';
    const common = [...sized(m0, await freePort(), 1), '--runs-dir', runs];
    // The wiring an earlier recipe shipped: the fine-tune folder itself as the model.
    const broken = await rftRun(['run', recipe, ...common, '--set', 'finetune.output_model_file=null', '--set', 'finetune.output_model={output_dir}']);
    const runDir = path.join(runs, 'moatless-7b');
    expect(broken.code).not.toBe(0);
    expect(broken.stderr).toContain(`${finetuneDir(runDir, 0)} is not a model folder`);
    expect(broken.stderr).toContain(`the trainer wrote its model to ${path.join(finetuneDir(runDir, 0), 'model')}`);
    expect(existsSync(path.join(runDir, 'serve'))).toBe(false);

    const fixed = await rftRun(['run', recipe, ...common, '--allow-recipe-change']);
    expectComplete(fixed);
    const trained = job(runDir, 0);
    expect(trained).toMatchObject({ status: 'succeeded', output_model: path.join(finetuneDir(runDir, 0), 'model'), base_model: BASE_7B });
    expect(existsSync(path.join(trained.output_model, 'config.json'))).toBe(true);
    expect(trainerStarts(runDir, 0)).toBe(1);
    // M_0 answered sampling and its own eval at the user's endpoint; M_1 was served by rft and evaluated.
    expect([...modelsOf(path.join(runDir, 'iter-0', 'trajectories.jsonl'))]).toEqual([BASE_7B]);
    expectEvaluated(runDir, 0, BASE_7B);
    expectEvaluated(runDir, 1, 'rft-it1');
    expect(readFileSync(path.join(runDir, 'serve', 'iter-1.log'), 'utf8')).toContain('SIMULATED vllm stand-in');
    // The images were there before the run: remove_after_use leaves them.
    const docker = await connectEngine();
    for (const tag of swegymTags) await expect(docker.getImage(tag).inspect()).resolves.toBeTruthy();
  });

  it('moatless-7b-axolotl (axolotl full fine-tune): M_1 is a model folder vLLM serves, and it is evaluated', async () => {
    const m0 = await startM0(BASE_7B);
    const runs = path.join(work, 'runs-axolotl');
    const run = await rftRun(['run', 'recipes/moatless-7b-axolotl.yaml', ...sized(m0, await freePort(), 1), '--runs-dir', runs]);
    expectComplete(run);
    const runDir = path.join(runs, 'moatless-7b-axolotl');
    const trained = job(runDir, 0);
    expect(trained.output_model).toBe(path.join(finetuneDir(runDir, 0), 'model'));
    expect(existsSync(path.join(trained.output_model, 'config.json'))).toBe(true);
    const config = parseYaml(readFileSync(path.join(finetuneDir(runDir, 0), 'axolotl.yaml'), 'utf8')) as { base_model: string; adapter?: string };
    expect(config.base_model).toBe(BASE_7B);
    expect(config.adapter).toBeUndefined();
    expectEvaluated(runDir, 1, 'rft-it1');
  });

  it('moatless-32b-trl-lora (TRL LoRA, two iterations, start_from previous): each adapter is merged into its base, iteration 1 trains on M_1', async () => {
    const m0 = await startM0(BASE_32B);
    const runs = path.join(work, 'runs-trl-lora');
    const run = await rftRun(['run', 'recipes/moatless-32b-trl-lora.yaml', ...sized(m0, await freePort(), 2), '--runs-dir', runs]);
    expectComplete(run);
    const runDir = path.join(runs, 'moatless-32b-trl-lora');
    const [first, second] = [job(runDir, 0), job(runDir, 1)];
    expect(first.base_model).toBe(BASE_32B);
    // Iteration 1 starts from M_1, the merge of the base and the first adapter: a model folder TRL reads.
    expect(second.base_model).toBe(first.output_model);
    for (const [k, trained] of [first, second].entries()) {
      expect(trained.output_model).toBe(path.join(finetuneDir(runDir, k), 'model'));
      expect(existsSync(path.join(trained.output_model, 'config.json'))).toBe(true);
      const adapter = JSON.parse(readFileSync(path.join(finetuneDir(runDir, k), 'adapter', 'adapter_config.json'), 'utf8')) as { base_model_name_or_path: string };
      expect(adapter.base_model_name_or_path).toBe(k === 0 ? BASE_32B : first.output_model);
    }
    expectEvaluated(runDir, 1, 'rft-it1');
    expectEvaluated(runDir, 2, 'rft-it2');
    expect([...modelsOf(path.join(runDir, 'iter-1', 'trajectories.jsonl'))]).toEqual(['rft-it1']);
  });

  it('moatless-32b-llamafactory-lora (LLaMA-Factory LoRA loaded into the running vLLM, two iterations): iteration 1 continues the adapter on the same base', async () => {
    const m0 = await startM0(BASE_32B, ['--enable-lora', '--max-lora-rank', '64'], { VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True' });
    const runs = path.join(work, 'runs-lf-lora');
    const run = await rftRun(['run', 'recipes/moatless-32b-llamafactory-lora.yaml', ...sized(m0, null, 2), '--set', `serve.base_url=${m0}`, '--runs-dir', runs]);
    expectComplete(run);
    const runDir = path.join(runs, 'moatless-32b-llamafactory-lora');
    const [first, second] = [job(runDir, 0), job(runDir, 1)];
    expect(second.base_model).toBe(first.output_model);
    for (const [k, trained] of [first, second].entries()) {
      const adapter = JSON.parse(readFileSync(path.join(trained.output_model, 'adapter_config.json'), 'utf8')) as { base_model_name_or_path: string };
      expect(adapter.base_model_name_or_path).toBe(BASE_32B);
      const config = parseYaml(readFileSync(path.join(finetuneDir(runDir, k), 'llamafactory.yaml'), 'utf8')) as { model_name_or_path: string; adapter_name_or_path?: string };
      expect(config.model_name_or_path).toBe(BASE_32B);
      expect(config.adapter_name_or_path).toBe(k === 0 ? undefined : first.output_model);
    }
    // Both adapters are loaded into the user's server, each under its iteration's name, on the base.
    const listed = (await (await fetch(`${m0}/models`)).json()) as { data: { id: string; root: string; parent: string | null }[] };
    for (const [k, trained] of [first, second].entries()) {
      expect(listed.data.find((card) => card.id === `rft-it${k + 1}`)).toMatchObject({ root: trained.output_model, parent: BASE_32B });
    }
    expectEvaluated(runDir, 1, 'rft-it1');
    expectEvaluated(runDir, 2, 'rft-it2');
    expect(readdirSync(runDir)).not.toContain('serve');
  });
});

// Kept here so that a recipe added to recipes/ without a test here is noticed.
it('every shipped real-path recipe has an end-to-end test in this file', () => {
  // The demo recipes run on the bundled world, not the real path: each has its end-to-end test elsewhere.
  const demos: Record<string, string> = { 'demo.yaml': 'test/cluster/slurm-run.test.ts', 'synth-demo.yaml': 'test/synth/cli.test.ts' };
  const shipped = readdirSync(path.join(ROOT, 'recipes')).filter((file) => file.endsWith('.yaml') && !(file in demos));
  const text = readFileSync(import.meta.filename, 'utf8');
  for (const file of shipped) expect(text, `recipes/${file} has no test`).toContain(`recipes/${file}`);
  for (const [file, test] of Object.entries(demos)) {
    expect(readFileSync(path.join(ROOT, test), 'utf8'), `recipes/${file} has no test in ${test}`).toContain(file);
  }
  mkdirSync(work, { recursive: true });
});
