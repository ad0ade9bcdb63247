import path from 'node:path';
import { ROOT } from '../cli/helpers.js';

/**
 * The SIMULATED trainer as a recipe's `finetune:` section: `backend: command` running
 * scripts/sim-train.mjs by its absolute path (recipe commands run in the recipe's folder, and the
 * test recipes live in temporary folders), on base model sim-base. A YAML fragment ending in a
 * newline, to close a recipe with. `before` is shell put ahead of the trainer in the same command
 * (a marker file, a delay); `onEmpty` sets finetune.on_empty.
 */
export function simTrainerFinetune(options: { before?: string; onEmpty?: 'stop' | 'carry_forward' } = {}): string {
  const command = `${options.before ?? ''}node ${path.join(ROOT, 'scripts/sim-train.mjs')} --dataset {dataset} --base {base_model} --iteration {iteration} --out {output_dir} --models-dir {run_dir}/sim-models`;
  return `finetune:
  backend: command
  command: "${command}"
  base_model: sim-base
  output_model_file: '{output_dir}/MODEL'
${options.onEmpty ? `  on_empty: ${options.onEmpty}\n` : ''}`;
}
