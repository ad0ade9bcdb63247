import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * What a trainer's output model must be before anything serves it or trains from it. A hub id or
 * an API model name is taken as it is; a local path must be a folder a server and a trainer can
 * load: a full model (config.json, as `vllm serve` and transformers read first) or a LoRA adapter
 * (adapter_config.json, which names its base). A folder with neither is the mistake issue 20 found
 * (the recipe naming {output_dir} while the wrapper writes {output_dir}/model): said before hours of
 * sampling are spent on a server that cannot start.
 */

export type ModelOutputCheck =
  | { kind: 'name' }
  | { kind: 'full'; dir: string }
  | { kind: 'adapter'; dir: string }
  /** A path not visible from this machine (e.g. on the GPU box, folders not shared). */
  | { kind: 'not_here'; dir: string }
  | { kind: 'not_a_model'; dir: string; problem: string };

export const MODEL_CONFIG = 'config.json';
export const ADAPTER_CONFIG = 'adapter_config.json';

export function looksLikePath(model: string): boolean {
  return path.isAbsolute(model) || /^\.\.?(\/|$)/.test(model) || model.startsWith('~');
}

export function checkModelOutput(model: string, cwd: string): ModelOutputCheck {
  if (!looksLikePath(model)) return { kind: 'name' };
  const dir = path.resolve(cwd, model);
  if (!existsSync(dir)) return { kind: 'not_here', dir };
  if (!statSync(dir).isDirectory()) return { kind: 'not_a_model', dir, problem: `${dir} is a file, not a model folder` };
  if (existsSync(path.join(dir, MODEL_CONFIG))) return { kind: 'full', dir };
  if (existsSync(path.join(dir, ADAPTER_CONFIG))) return { kind: 'adapter', dir };
  const inner = modelSubfolder(dir);
  const hint = inner
    ? `; the trainer wrote its model to ${inner}: point finetune.output_model_file at the file naming it ('{output_dir}/MODEL' for the bundled scripts/train-*.sh) or set finetune.output_model to '{output_dir}/${path.basename(inner)}'`
    : '; point finetune.output_model (or output_model_file) at the folder the trainer writes its model to';
  return { kind: 'not_a_model', dir, problem: `${dir} is not a model folder: it has no ${MODEL_CONFIG} (a full model) nor ${ADAPTER_CONFIG} (a LoRA adapter)${hint}` };
}

/** A direct subfolder that is a model or an adapter (the usual `<output_dir>/model`), if any. */
function modelSubfolder(dir: string): string | null {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const sub = path.join(dir, entry.name);
    if (existsSync(path.join(sub, MODEL_CONFIG)) || existsSync(path.join(sub, ADAPTER_CONFIG))) return sub;
  }
  return null;
}
