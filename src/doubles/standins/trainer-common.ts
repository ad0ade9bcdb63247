/**
 * What the trainer stand-ins (test doubles for `trl sft`, `llamafactory-cli train`, `axolotl train`
 * and the LoRA merge launcher) share: the banner, failing as a Python tool fails (a traceback's last
 * line, exit 1) or as argparse does (usage + error, exit 2), reading JSONL as datasets' json builder
 * does, and the SIMULATED training rule applied to the rows (src/doubles/train.ts simTrain, as
 * scripts/sim-train.mjs uses it).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { SimModel } from '../model.js';
import { normalizeIssue, simTrain, taskOfExample } from '../train.js';
import { PACKAGE_ROOT } from './model-folder.js';

/** A stand-in stops: what it prints to stderr and its exit code. */
export class StandinExit extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** An uncaught Python exception: the traceback's last line, exit 1. */
export function pyError(type: string, message: string): StandinExit {
  return new StandinExit(1, `Traceback (most recent call last):\n  (SIMULATED stand-in: Python frames omitted)\n${type}: ${message}`);
}

/** argparse's parser.error(): usage line, "prog: error: message", exit 2. */
export function argparseError(prog: string, usage: string, message: string): StandinExit {
  return new StandinExit(2, `usage: ${usage}\n${prog}: error: ${message}`);
}

export function banner(tool: string): void {
  process.stderr.write(`SIMULATED ${tool} stand-in (test double)\n`);
}

/** Runs a stand-in's main; prints a StandinExit's message and exits with its code. */
export async function runStandin(tool: string, main: (argv: string[]) => Promise<void> | void): Promise<void> {
  banner(tool);
  try {
    await main(process.argv.slice(2));
    process.exitCode = 0;
  } catch (error) {
    if (error instanceof StandinExit) {
      process.stderr.write(`${error.message}\n`);
      process.exitCode = error.code;
      return;
    }
    throw error;
  }
}

/** Rows of a JSONL file as datasets' json builder reads them: a bad line fails the whole load. */
export function readJsonl(file: string): Record<string, unknown>[] {
  const rows: Record<string, unknown>[] = [];
  const lines = readFileSync(file, 'utf8').split('\n');
  for (const [i, line] of lines.entries()) {
    if (!line.trim()) continue;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw pyError('datasets.exceptions.DatasetGenerationError', `An error occurred while generating the dataset (JSON parse error in ${file} line ${i + 1})`);
    }
    if (row === null || typeof row !== 'object' || Array.isArray(row)) {
      throw pyError('datasets.exceptions.DatasetGenerationError', `An error occurred while generating the dataset (${file} line ${i + 1} is not a JSON object)`);
    }
    rows.push(row as Record<string, unknown>);
  }
  return rows;
}

/** The tasks the SIMULATED policy knows: $RFT_SIM_TASKS, else the bundled minigym tasks. */
export function simTasksFile(env: NodeJS.ProcessEnv = process.env): string {
  return env.RFT_SIM_TASKS ? path.resolve(env.RFT_SIM_TASKS) : path.join(PACKAGE_ROOT, 'test/fixtures/minigym/tasks.jsonl');
}

type TaskLine = { instance_id: string; problem_statement: string };

/**
 * The SIMULATED weights a training run produces: examples matched to tasks by their <issue>
 * block, simTrain from the parent. The name is derived from the tool, parent and data, so a rerun
 * on the same data names the same model.
 */
export function simTrainRows(tool: string, parent: SimModel, rows: readonly Record<string, unknown>[], env: NodeJS.ProcessEnv = process.env): SimModel {
  const file = simTasksFile(env);
  const tasks = existsSync(file) ? (readJsonl(file) as unknown as TaskLine[]) : [];
  const issueToTask = new Map(tasks.map((t) => [normalizeIssue(t.problem_statement), t.instance_id]));
  const perTask = new Map<string, number>();
  for (const row of rows) {
    const id = taskOfExample(row as Parameters<typeof taskOfExample>[0], issueToTask);
    if (id !== null) perTask.set(id, (perTask.get(id) ?? 0) + 1);
  }
  const digest = createHash('sha256').update(parent.name).update(JSON.stringify(rows)).digest('hex').slice(0, 10);
  return simTrain(parent, perTask, tasks.map((t) => t.instance_id), `sim-${tool}-${digest}`);
}

/** The LoRA target modules PEFT resolves "all-linear" to for Qwen2-style models. */
export const ALL_LINEAR_QWEN2 = ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj'];

/** transformers' OSError for a path that is neither a folder with config.json nor a cached hub id. */
export function configNotFound(nameOrPath: string, isDir: boolean): StandinExit {
  if (isDir) {
    return pyError('OSError', `${nameOrPath} does not appear to have a file named config.json. Checkout 'https://huggingface.co/${nameOrPath}/tree/main' for available files.`);
  }
  return pyError(
    'OSError',
    "We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them in the cached files.\n" +
      "Check your internet connection or see how to run the library in offline mode at 'https://huggingface.co/docs/transformers/installation#offline-mode'." +
      ` (model: ${nameOrPath})`,
  );
}
