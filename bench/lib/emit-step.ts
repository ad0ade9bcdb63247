/**
 * The loop's emit step and the check after it (src/loop/run-loop.ts emitDataset), run alone on a
 * run directory by any build of rft: `node emit-step.js <dist> <run-dir> emit|check <out-dir>`.
 * Modules are imported from <dist>, so the code of another commit (a worktree built with tsc) runs
 * the same step on the same ledgers, side by side with this one (benchmark 8). `emit` writes the
 * dataset into <out-dir> exactly as the loop does (scan, select the recipe's cap, stream
 * train.jsonl, manifest); `check` runs the loop's assertDatasetReadable on <out-dir>/train.jsonl.
 * Prints one JSON line: the step's own seconds (module loading excluded).
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';

const [dist, runDirArg, step, outDir] = process.argv.slice(2);
if (!dist || !runDirArg || !outDir || (step !== 'emit' && step !== 'check')) throw new Error('usage: emit-step.js <dist> <run-dir> emit|check <out-dir>');
const runDir = path.resolve(runDirArg);
const load = async <T>(module: string): Promise<T> => (await import(pathToFileURL(path.resolve(dist, module)).href)) as T;

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any -- modules of another build: their types are not this build's
const { loadRunRecipe } = await load<Any>('loop/drive.js');
const { selectTaskSet } = await load<Any>('tasks/select.js');
const { buildEvalSpec, specHash } = await load<Any>('verify/spec.js');
const { verdictKey } = await load<Any>('verify/verdict.js');
const { exampleOptionsOf } = await load<Any>('sft/options.js');
const { emitDatasetFromLedgers } = await load<Any>('sft/stream.js');
const { assertDatasetReadable } = await load<Any>('sft/check-dataset.js');
const { runLayout } = await load<Any>('loop/layout.js');

const loaded = loadRunRecipe(runDir, []);
const recipe = loaded.recipe;
const options = exampleOptionsOf(loaded);
const started = performance.now();
let result: unknown = null;
if (step === 'emit') {
  // As run-loop.ts emitDataset computes the verdict key (specFor: the train set's eval spec).
  const train = (await selectTaskSet(recipe.tasks.train, loaded.baseDir)) as Array<{ instance_id: string }>;
  const byId = new Map(train.map((i) => [i.instance_id, i]));
  const specs = new Map<string, string>();
  const specOf = (id: string): string => {
    let hash = specs.get(id);
    if (hash === undefined) {
      hash = specHash(buildEvalSpec(byId.get(id), { timeout_s: recipe.sandbox.test_timeout_s, pythonEnv: recipe.tasks.train.python_env ?? recipe.sandbox.python_env })) as string;
      specs.set(id, hash);
    }
    return hash;
  };
  const manifest = emitDatasetFromLedgers({
    dir: path.resolve(outDir),
    recipe_hash: loaded.hash,
    iteration: 0,
    iterations: [{ iteration: 0, trajectoriesFile: runLayout.trajectories(runDir, 0), verdictsFile: runLayout.verdicts(runDir, 0) }],
    select: { ...recipe.select, seed: recipe.seed },
    examples: options,
    verdictKeyOf: (t: { instance_id: string }, hash: string) => verdictKey(t.instance_id, hash, specOf(t.instance_id)),
  });
  result = { examples: manifest.example_counts.examples, bytes: manifest.file.bytes, sha256: manifest.file.sha256 };
} else {
  assertDatasetReadable(path.join(path.resolve(outDir), 'train.jsonl'), options);
}
console.log(JSON.stringify({ step, seconds: (performance.now() - started) / 1000, result }));
