#!/usr/bin/env node
// SIMULATED trainer (a test double for a real fine-tune, used by recipes/demo.yaml through the
// real `command` fine-tuning backend). Reads an SFT chat JSONL file, writes a new SIMULATED model
// whose per-task skill rises on the tasks the data covers, and prints the model's name to
// <out>/MODEL. No GPU, no weights: see src/doubles/train.ts for the rule.
//
//   node scripts/sim-train.mjs --dataset train.jsonl --base sim-base --iteration 0 \
//     --out OUTPUT_DIR --models-dir RUN_DIR/sim-models [--tasks tasks.jsonl]
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { SIM_BASE, SIM_BASE_NAME, parseSimModel } = await import(path.join(root, 'dist/doubles/model.js'));
const { simTrain, taskOfExample, normalizeIssue } = await import(path.join(root, 'dist/doubles/train.js'));

const { values: args } = parseArgs({
  options: {
    dataset: { type: 'string' },
    base: { type: 'string' },
    iteration: { type: 'string' },
    out: { type: 'string' },
    'models-dir': { type: 'string' },
    tasks: { type: 'string', default: path.join(root, 'test/fixtures/minigym/tasks.jsonl') },
  },
});
for (const name of ['dataset', 'base', 'iteration', 'out', 'models-dir']) {
  if (!args[name]) {
    console.error(`sim-train: --${name} is required`);
    process.exit(2);
  }
}

const tasks = readFileSync(args.tasks, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
const issueToTask = new Map(tasks.map((t) => [normalizeIssue(t.problem_statement), t.instance_id]));
const examplesPerTask = new Map();
let unknown = 0;
const lines = readFileSync(args.dataset, 'utf8').split('\n').filter((l) => l.trim());
for (const line of lines) {
  const id = taskOfExample(JSON.parse(line), issueToTask);
  if (id === null) unknown += 1;
  else examplesPerTask.set(id, (examplesPerTask.get(id) ?? 0) + 1);
}

const modelsDir = args['models-dir'];
const parent = args.base === SIM_BASE_NAME ? SIM_BASE : parseSimModel(readFileSync(path.join(modelsDir, `${args.base}.json`), 'utf8'), args.base);
const name = `sim-ft-it${Number(args.iteration) + 1}`;
const model = simTrain(parent, examplesPerTask, tasks.map((t) => t.instance_id), name);

mkdirSync(modelsDir, { recursive: true });
mkdirSync(args.out, { recursive: true });
const write = (file, text) => {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
};
write(path.join(modelsDir, `${name}.json`), `${JSON.stringify(model, null, 2)}\n`);
write(path.join(args.out, 'MODEL'), `${name}\n`);
console.log(`SIMULATED training: ${lines.length} examples (${unknown} not matched to a task) over ${examplesPerTask.size} tasks: ${args.base} -> ${name}`);
for (const [id, n] of [...examplesPerTask].sort()) console.log(`  ${id}: ${n} examples, skill ${model.skill.tasks[id]}`);
