/**
 * Model folders as the CLI stand-ins (test doubles) see them: hub ids resolved offline from the
 * Hugging Face cache, what makes a folder a model or an adapter, and the SIMULATED weights.
 *
 * Follows: huggingface_hub's cache layout (`models--Org--Name/refs/main` holding a revision,
 * `snapshots/<rev>/` the files; HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub) and
 * the file names transformers' save_pretrained / PEFT's save_pretrained write (config.json,
 * model.safetensors or model-0000x-of-0000y.safetensors + model.safetensors.index.json,
 * adapter_config.json + adapter_model.safetensors).
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic, writeJsonAtomic } from '../../../store/atomic.js';
import { SIM_BASE, parseSimModel, type SimModel } from '../model.js';

export const SIM_MODEL_FILE = 'SIMULATED_MODEL.json';

/** The package root (dist/policy/sim/standins/ → four levels up, as src/ is). */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');

/** Files a tokenizer save writes that the stand-ins carry over when present. */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'vocab.json', 'merges.txt', 'added_tokens.json'];

export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HF_HOME) return path.join(env.HF_HOME, 'hub');
  return path.join(homedir(), '.cache', 'huggingface', 'hub');
}

export type Resolved = { ok: true; dir: string } | { ok: false; reason: 'not-found'; cachePath: string };

/**
 * A local folder as is; otherwise an `Org/Name` id looked up in the hub cache as huggingface_hub
 * does offline (refs/main → snapshots/<rev>). Not found → the caller fails in its tool's words.
 */
export function resolveModel(nameOrPath: string, env: NodeJS.ProcessEnv = process.env): Resolved {
  if (existsSync(nameOrPath) && statSync(nameOrPath).isDirectory()) return { ok: true, dir: path.resolve(nameOrPath) };
  const repo = path.join(hubCacheDir(env), hubRepoFolderName(nameOrPath));
  const ref = path.join(repo, 'refs', 'main');
  if (/^[\w.-]+(\/[\w.-]+)?$/.test(nameOrPath) && existsSync(ref)) {
    const snapshot = path.join(repo, 'snapshots', readFileSync(ref, 'utf8').trim());
    if (existsSync(snapshot)) return { ok: true, dir: snapshot };
  }
  return { ok: false, reason: 'not-found', cachePath: repo };
}

function weightsPresent(dir: string): boolean {
  if (existsSync(path.join(dir, 'model.safetensors'))) return true;
  const index = path.join(dir, 'model.safetensors.index.json');
  return existsSync(index) && readdirSync(dir).some((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
}

/** config.json + weights + tokenizer.json + tokenizer_config.json. */
export function isModelFolder(dir: string): boolean {
  return (
    existsSync(path.join(dir, 'config.json')) &&
    weightsPresent(dir) &&
    existsSync(path.join(dir, 'tokenizer.json')) &&
    existsSync(path.join(dir, 'tokenizer_config.json'))
  );
}

/** adapter_config.json + adapter_model.safetensors. */
export function isAdapterFolder(dir: string): boolean {
  return existsSync(path.join(dir, 'adapter_config.json')) && existsSync(path.join(dir, 'adapter_model.safetensors'));
}

/** The adapter's base (adapter_config.json's base_model_name_or_path), or null. */
export function adapterBase(dir: string): string | null {
  try {
    const config = JSON.parse(readFileSync(path.join(dir, 'adapter_config.json'), 'utf8')) as { base_model_name_or_path?: unknown };
    return typeof config.base_model_name_or_path === 'string' && config.base_model_name_or_path ? config.base_model_name_or_path : null;
  } catch {
    return null;
  }
}

/** The folder's SimModel, or sim-base when it has none (a hub base model). */
export function readSimModel(dir: string): SimModel {
  const file = path.join(dir, SIM_MODEL_FILE);
  return existsSync(file) ? parseSimModel(readFileSync(file, 'utf8'), file) : SIM_BASE;
}

export function writeSimModel(dir: string, model: SimModel): void {
  writeJsonAtomic(path.join(dir, SIM_MODEL_FILE), model);
}

/** The chat template a tokenizer load would see: chat_template.jinja, else tokenizer_config.json's. */
export function chatTemplateOf(dir: string): string | null {
  const jinja = path.join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) return readFileSync(jinja, 'utf8');
  try {
    const config = JSON.parse(readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')) as { chat_template?: unknown };
    return typeof config.chat_template === 'string' ? config.chat_template : null;
  } catch {
    return null;
  }
}

/** huggingface_hub's cache folder name for a model id: models--Org--Name. */
export function hubRepoFolderName(id: string): string {
  return `models--${id.split('/').join('--')}`;
}

/** Placeholder weights: a valid safetensors file with no tensors (8-byte header length + JSON header). */
export function emptySafetensors(): Buffer {
  const header = Buffer.from('{"__metadata__":{"format":"pt","simulated":"true"}}', 'utf8');
  const size = Buffer.alloc(8);
  size.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([size, header]);
}

function copyTokenizer(from: string, to: string, chatTemplate?: string | null): void {
  for (const file of TOKENIZER_FILES) {
    if (existsSync(path.join(from, file))) copyFileSync(path.join(from, file), path.join(to, file));
  }
  // save_pretrained writes the tokenizer's template (which may have been replaced) beside it.
  if (chatTemplate) writeFileAtomic(path.join(to, 'chat_template.jinja'), chatTemplate);
}

/** A full model folder as save_pretrained writes it: config.json from the base, weights, tokenizer. */
export function writeModelFolder(
  out: string,
  base: string,
  model: SimModel,
  options: { chatTemplate?: string | null; extraFiles?: Record<string, string>; tokenizerFrom?: string } = {},
): void {
  mkdirSync(out, { recursive: true });
  copyFileSync(path.join(base, 'config.json'), path.join(out, 'config.json'));
  if (existsSync(path.join(base, 'generation_config.json'))) copyFileSync(path.join(base, 'generation_config.json'), path.join(out, 'generation_config.json'));
  writeFileAtomic(path.join(out, 'model.safetensors'), emptySafetensors());
  copyTokenizer(options.tokenizerFrom ?? base, out, options.chatTemplate);
  for (const [name, text] of Object.entries(options.extraFiles ?? {})) writeFileAtomic(path.join(out, name), text);
  writeSimModel(out, model);
}

/** An adapter folder as PEFT's save_pretrained writes it (+ the tokenizer, as the trainers save it). */
export function writeAdapterFolder(
  out: string,
  adapter: { base: string; rank: number; alpha: number; targetModules: string[] | string; dropout?: number },
  tokenizerFrom: string,
  model: SimModel,
  options: { chatTemplate?: string | null; extraFiles?: Record<string, string> } = {},
): void {
  mkdirSync(out, { recursive: true });
  writeJsonAtomic(path.join(out, 'adapter_config.json'), {
    base_model_name_or_path: adapter.base,
    peft_type: 'LORA',
    task_type: 'CAUSAL_LM',
    r: adapter.rank,
    lora_alpha: adapter.alpha,
    lora_dropout: adapter.dropout ?? 0.05,
    target_modules: adapter.targetModules,
    bias: 'none',
    inference_mode: true,
  });
  writeFileAtomic(path.join(out, 'adapter_model.safetensors'), emptySafetensors());
  copyTokenizer(tokenizerFrom, out, options.chatTemplate);
  for (const [name, text] of Object.entries(options.extraFiles ?? {})) writeFileAtomic(path.join(out, name), text);
  writeSimModel(out, model);
}
