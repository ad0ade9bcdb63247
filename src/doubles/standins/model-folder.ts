/**
 * Model folders as the CLI stand-ins (test doubles: vLLM, the trainers, the merge launcher) see
 * them: hub ids resolved offline from the Hugging Face cache, what makes a folder a model or an
 * adapter, and the SIMULATED weights. Follows:
 * - huggingface_hub v0.34 `constants.py` (HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub)
 *   and `file_download.py` (`repo_folder_name`: models--Org--Name; refs/<revision> holds a commit
 *   hash; the files live under snapshots/<hash>/), read offline as `try_to_load_from_cache` does.
 * - transformers / PEFT save layouts: a model folder holds config.json, weights (model.safetensors,
 *   or model-0000x-of-0000y.safetensors + model.safetensors.index.json) and the tokenizer files;
 *   an adapter folder holds adapter_config.json (base_model_name_or_path names the base) and
 *   adapter_model.safetensors.
 * The SIMULATED weights are SIMULATED_MODEL.json, a SimModel: the only thing a stand-in reads to
 * decide how the model behaves. A folder without it (a hub base model) behaves as sim-base.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic, writeJsonAtomic } from '../../store/atomic.js';
import { SIM_BASE, parseSimModel, type SimModel } from '../model.js';

export const SIM_MODEL_FILE = 'SIMULATED_MODEL.json';
export const CONFIG_FILE = 'config.json';
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';

/** The package root (dist/doubles/standins/ → three levels up, as src/ is). */
export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** Files a tokenizer save writes that the stand-ins carry over when present. */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'chat_template.jinja', 'vocab.json', 'merges.txt', 'added_tokens.json'];

/** The hub cache folder, resolved from the environment as huggingface_hub does. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME ?? path.join(env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'huggingface');
  return path.join(home, 'hub');
}

/** A hub id is one or two names separated by '/', made of letters, digits, '-', '_', '.'. */
export function looksLikeHubId(id: string): boolean {
  return /^(?:[\w.-]+\/)?[\w.-]+$/.test(id) && !id.startsWith('.') && !id.includes('..');
}

export interface ResolvedModel {
  /** The folder the files are read from. */
  dir: string;
  /** 'local': the argument named an existing folder; 'hub': found in the hub cache. */
  source: 'local' | 'hub';
}

/**
 * Resolves a model argument as the real tools do offline: an existing local folder is used as is;
 * otherwise a hub id is looked up in the cache (refs/<revision> → snapshots/<rev>/). Null when
 * neither: the caller fails in its own tool's words, naming the id.
 */
export function resolveModel(idOrPath: string, env: NodeJS.ProcessEnv = process.env, revision = 'main'): ResolvedModel | null {
  if (existsSync(idOrPath) && statSync(idOrPath).isDirectory()) return { dir: path.resolve(idOrPath), source: 'local' };
  if (!looksLikeHubId(idOrPath)) return null;
  const repo = path.join(hubCacheDir(env), hubRepoFolderName(idOrPath));
  const ref = path.join(repo, 'refs', revision);
  // A revision given as a commit hash names the snapshot directly.
  const rev = existsSync(ref) ? readFileSync(ref, 'utf8').trim() : /^[0-9a-f]{40}$/.test(revision) ? revision : null;
  if (!rev) return null;
  const snapshot = path.join(repo, 'snapshots', rev);
  return existsSync(snapshot) && statSync(snapshot).isDirectory() ? { dir: snapshot, source: 'hub' } : null;
}

/** The weight files of a model folder, single-file or sharded (the index names the shards). */
export function weightFiles(dir: string): string[] {
  if (existsSync(path.join(dir, 'model.safetensors'))) return ['model.safetensors'];
  const index = path.join(dir, 'model.safetensors.index.json');
  if (!existsSync(index)) return [];
  const shards = readdirSync(dir).filter((name) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(name));
  return shards.length > 0 ? ['model.safetensors.index.json', ...shards.sort()] : [];
}

/** config.json + weights + tokenizer.json + tokenizer_config.json. */
export function isModelFolder(dir: string): boolean {
  return (
    existsSync(path.join(dir, CONFIG_FILE)) &&
    weightFiles(dir).length > 0 &&
    existsSync(path.join(dir, 'tokenizer.json')) &&
    existsSync(path.join(dir, 'tokenizer_config.json'))
  );
}

/** adapter_config.json + adapter_model.safetensors. */
export function isAdapterFolder(dir: string): boolean {
  return existsSync(path.join(dir, ADAPTER_CONFIG_FILE)) && existsSync(path.join(dir, ADAPTER_WEIGHTS_FILE));
}

/** Reads a JSON file of a folder (config.json, adapter_config.json); null when absent or not an object. */
export function readJsonObject(file: string): Record<string, unknown> | null {
  if (!existsSync(file)) return null;
  try {
    const value: unknown = JSON.parse(readFileSync(file, 'utf8'));
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The adapter's base (adapter_config.json's base_model_name_or_path), or null. */
export function adapterBase(dir: string): string | null {
  const base = readJsonObject(path.join(dir, ADAPTER_CONFIG_FILE))?.base_model_name_or_path;
  return typeof base === 'string' && base ? base : null;
}

/** The folder's SIMULATED weights, or null when it has none (then it behaves as sim-base). */
export function ownSimModel(dir: string): SimModel | null {
  const file = path.join(dir, SIM_MODEL_FILE);
  return existsSync(file) ? parseSimModel(readFileSync(file, 'utf8'), file) : null;
}

/** The folder's SimModel, or sim-base when it has none (a hub base model). */
export function readSimModel(dir: string): SimModel {
  return ownSimModel(dir) ?? SIM_BASE;
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

/**
 * A safetensors file holding no tensors (8-byte little-endian header length, then the JSON header):
 * well-formed for any reader that checks the format, and small. The SIMULATED weights are elsewhere.
 */
export function emptySafetensors(metadata: Record<string, string> = {}): Buffer {
  const header = Buffer.from(JSON.stringify({ __metadata__: { format: 'pt', simulated: 'true', ...metadata } }), 'utf8');
  // The header is padded with spaces to a multiple of 8 bytes, as the reference writer does.
  const padded = Buffer.concat([header, Buffer.alloc((8 - (header.length % 8)) % 8, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(padded.length));
  return Buffer.concat([length, padded]);
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

/** Writes the given files into a folder (tests lay out odd folders with it), each atomically. */
export function writeFolderFiles(dir: string, files: Readonly<Record<string, string | Buffer>>, sim?: SimModel): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileAtomic(path.join(dir, name), data);
  }
  if (sim) writeSimModel(dir, sim);
}
