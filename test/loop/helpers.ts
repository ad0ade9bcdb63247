import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { RFT_BIN, ROOT } from '../cli/helpers.js';
import { MINIGYM_TASKS } from '../helpers/minigym.js';

export const LOOP_TASKS = ['minigym__iniform-201', 'minigym__ledgerlite-303', 'minigym__unitkit-101'];

/** A small recipe on three bundled tasks; its policy is a SIMULATED server the test runs (simUrl), or the one rft runs itself (null). */
export function writeLoopRecipe(simUrl: string | null, options: { trainerDelayS?: number; name?: string } = {}): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-loop-recipe-'));
  writeFileSync(path.join(dir, 'ids.txt'), `${LOOP_TASKS.join('\n')}\n`);
  const delay = options.trainerDelayS ? `sleep ${options.trainerDelayS} && ` : '';
  const recipe = `name: ${options.name ?? 'loop-test'}
seed: 3
iterations: 2
tasks:
  train: {path: ${MINIGYM_TASKS}, ids_file: ids.txt}
  eval: {path: ${MINIGYM_TASKS}, ids_file: ids.txt}
sandbox: {memory: 512m, pids: 256, test_timeout_s: 60, concurrency: 2}
policy: ${simUrl ? `{kind: openai, base_url: ${simUrl}, model: sim-base, concurrency: 8, retries: 0}` : '{kind: simulated, model: sim-base, concurrency: 8}'}
sampling: {samples_per_task: 4, instances_in_flight: 2}
select: {cap: 2}
finetune:
  backend: command
  command: "${delay}node ${path.join(ROOT, 'scripts/sim-train.mjs')} --dataset {dataset} --base {base_model} --iteration {iteration} --out {output_dir} --models-dir {run_dir}/sim-models"
  base_model: sim-base
  output_model_file: '{output_dir}/MODEL'
`;
  const file = path.join(dir, 'recipe.yaml');
  writeFileSync(file, recipe);
  return file;
}

export interface Running {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

export function startRft(args: string[]): Running {
  const child = spawn(process.execPath, [RFT_BIN, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  return { child, done };
}

/** Polls until the condition holds (or the process ends first). */
export async function waitFor(condition: () => boolean | Promise<boolean>, running: Running, what: string, timeoutMs = 240_000): Promise<void> {
  let ended = false;
  void running.done.then(() => (ended = true));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    if (ended) throw new Error(`rft ended before ${what}: ${(await running.done).stderr.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
