import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../../../store/atomic.js';
import { parseSimModel, type SimModel } from '../model.js';

/**
 * Model folders as the CLI stand-ins (vLLM, trainers) see them — a test double's helper, shared by
 * every stand-in. Follows:
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

export const SIMULATED_MODEL_FILE = 'SIMULATED_MODEL.json';
export const CONFIG_FILE = 'config.json';
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'] as const;

/** The hub cache folder, resolved from the environment as huggingface_hub does. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  const home = env.HF_HOME ?? path.join(env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'huggingface');
  return path.join(home, 'hub');
}

/** `Org/Name` → `models--Org--Name` (huggingface_hub's repo_folder_name for a model repo). */
export function hubRepoFolderName(id: string): string {
  return ['models', ...id.split('/')].join('--');
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
 * otherwise a hub id is looked up in the cache (refs/main → snapshots/<rev>/). Null when neither:
 * the caller fails in its own tool's words, naming the id.
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

/** config.json + weights + tokenizer files. */
export function isModelFolder(dir: string): boolean {
  return (
    existsSync(path.join(dir, CONFIG_FILE)) &&
    weightFiles(dir).length > 0 &&
    TOKENIZER_FILES.every((name) => existsSync(path.join(dir, name)))
  );
}

/** adapter_config.json + adapter_model.safetensors. */
export function isAdapterFolder(dir: string): boolean {
  return existsSync(path.join(dir, ADAPTER_CONFIG_FILE)) && existsSync(path.join(dir, ADAPTER_WEIGHTS_FILE));
}

/** The folder's SIMULATED weights, or null when it has none (then it behaves as sim-base). */
export function readSimModel(dir: string): SimModel | null {
  const file = path.join(dir, SIMULATED_MODEL_FILE);
  if (!existsSync(file)) return null;
  return parseSimModel(readFileSync(file, 'utf8'), file);
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

/**
 * Writes a model or adapter folder: each file atomically, SIMULATED_MODEL.json last (when given),
 * so a folder that has its SimModel is complete.
 */
export function writeModelFolder(dir: string, files: Readonly<Record<string, string | Buffer>>, sim?: SimModel): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, data] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileAtomic(path.join(dir, name), data);
  }
  if (sim) writeFileAtomic(path.join(dir, SIMULATED_MODEL_FILE), `${JSON.stringify(sim, null, 2)}\n`);
}
