import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadInstances } from '../../tasks/load.js';
import type { Instance } from '../../tasks/instance.js';
import { baseSkill, SIM_BASE, SIM_BASE_NAME, type SimModel } from '../model.js';
import { startSimServer, VllmHttpError, type SimServer } from '../server.js';
import {
  ADAPTER_CONFIG_FILE,
  CONFIG_FILE,
  readJsonObject,
  ownSimModel,
  resolveModel,
  weightFiles,
} from './model-folder.js';
import { parseVllmArgs, type ServeArgs } from './vllm-args.js';

/**
 * The SIMULATED `vllm serve` (a test double with vLLM's contract; chat completions come from the
 * SIMULATED policy). Follows vLLM v0.10.0:
 * - vllm/transformers_utils/config.py get_config: a model argument that is neither a folder with
 *   config.json nor a hub repo (offline: in the hub cache) fails with "Invalid repository ID or
 *   local directory specified: '<model>'" before anything listens — an adapter folder included.
 * - vllm/model_executor/model_loader/default_loader.py: a config without weights fails with
 *   "Cannot find any model weights with `<model>`".
 * - vllm/config.py _get_and_verify_max_len: max_model_len defaults to the config's
 *   max_position_embeddings; a larger --max-model-len is refused unless
 *   VLLM_ALLOW_LONG_MAX_MODEL_LEN is set.
 * - vllm/entrypoints/openai/serving_models.py + vllm/lora/worker_manager.py + vllm/lora/peft_helper.py:
 *   loading an adapter without adapter_config.json is 404 NotFoundError "Loading lora <name>
 *   failed: No adapter found for <path>"; a rank above --max-lora-rank is 400 "LoRA rank r is
 *   greater than max_lora_rank m."; without --enable-lora, 400 "LoRA is not enabled. Use
 *   --enable-lora to enable LoRA."; --lora-modules that fail to load stop the server at start.
 * - vllm/envs.py: VLLM_ALLOW_RUNTIME_LORA_UPDATING is on for "1" or "true" (any case).
 * The HTTP surface (routes, cards, error shapes) is server.ts's vLLM surface.
 */

export const BANNER = 'SIMULATED vllm stand-in (test double)';

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const DEFAULT_SIM_TASKS = path.join(PACKAGE_ROOT, 'test/fixtures/minigym/tasks.jsonl');

export interface StandinIo {
  env: NodeJS.ProcessEnv;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

/** A failure at start, printed as vLLM's uncaught exception would end (its last line), exit 1. */
class StartError extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
}

function envFlag(value: string | undefined): boolean {
  return ['1', 'true'].includes((value ?? '0').trim().toLowerCase());
}

/** A SimModel served under another name. sim-base's derived skills are written out per known task. */
export function servedAs(model: SimModel, name: string, tasks: readonly Instance[]): SimModel {
  if (model.name === name) return model;
  const derived = model.name === SIM_BASE_NAME && model.parent === null;
  const skills = derived ? Object.fromEntries(tasks.map((t) => [t.instance_id, baseSkill(t.instance_id)])) : {};
  return { ...model, name, skill: { default: model.skill.default, tasks: { ...skills, ...model.skill.tasks } } };
}

/** vLLM's get_adapter_absolute_path: ~ expanded; an existing relative path made absolute; a hub id from the cache. */
function adapterDir(loraPath: string, env: NodeJS.ProcessEnv): string {
  const expanded = loraPath.startsWith('~') ? path.join(homedir(), loraPath.slice(1)) : loraPath;
  if (existsSync(expanded)) return path.resolve(expanded);
  return resolveModel(loraPath, env)?.dir ?? loraPath;
}

function loadAdapterModel(name: string, loraPath: string, args: ServeArgs, base: SimModel, tasks: readonly Instance[], env: NodeJS.ProcessEnv): SimModel {
  if (!args.enableLora) throw new VllmHttpError(400, 'BadRequestError', 'LoRA is not enabled. Use --enable-lora to enable LoRA.');
  const dir = adapterDir(loraPath, env);
  const config = existsSync(dir) && statSync(dir).isDirectory() ? readJsonObject(path.join(dir, ADAPTER_CONFIG_FILE)) : null;
  if (!config) throw new VllmHttpError(404, 'NotFoundError', `Loading lora ${name} failed: No adapter found for ${dir}`);
  const rank = typeof config.r === 'number' ? config.r : 8;
  if (rank > args.maxLoraRank) throw new VllmHttpError(400, 'BadRequestError', `LoRA rank ${rank} is greater than max_lora_rank ${args.maxLoraRank}.`);
  if (!['adapter_model.safetensors', 'adapter_model.bin', 'adapter_model.pt'].some((f) => existsSync(path.join(dir, f)))) {
    throw new VllmHttpError(400, 'BadRequestError', `${dir} doesn't contain tensors`);
  }
  // An adapter without SIMULATED weights answers as the base it was loaded onto.
  return servedAs(ownSimModel(dir) ?? base, name, tasks);
}

/** The context length the model allows (config.json), as vLLM derives max_model_len. */
function derivedMaxLen(config: Record<string, unknown>): { key: string; value: number } | null {
  for (const key of ['max_position_embeddings', 'n_positions', 'max_seq_len', 'seq_length', 'max_sequence_length', 'max_seq_length', 'seq_len']) {
    const value = config[key];
    if (typeof value === 'number' && value > 0) return { key, value };
  }
  return null;
}

export interface RunningStandin {
  server: SimServer;
  close(): Promise<void>;
}

/** Starts `vllm serve` from parsed arguments; throws StartError before listening when vLLM would. */
export async function startVllm(args: ServeArgs, io: StandinIo): Promise<RunningStandin> {
  const resolved = resolveModel(args.model, io.env, args.revision ?? 'main');
  const configFile = resolved ? path.join(resolved.dir, CONFIG_FILE) : null;
  const config = configFile ? readJsonObject(configFile) : null;
  if (!resolved || !config) {
    throw new StartError(
      'ValueError',
      `Invalid repository ID or local directory specified: '${args.model}'.\nPlease verify the following requirements:\n1. Provide a valid Hugging Face repository ID.\n2. Specify a local directory that contains a recognized configuration file.\n   - For Hugging Face models: ensure the presence of a 'config.json'.\n   - For Mistral models: ensure the presence of a 'params.json'.`,
    );
  }
  const derived = derivedMaxLen(config);
  let maxModelLen = args.maxModelLen ?? derived?.value ?? 2048;
  if (derived && args.maxModelLen !== null && args.maxModelLen > derived.value && !envFlag(io.env.VLLM_ALLOW_LONG_MAX_MODEL_LEN)) {
    throw new StartError(
      'ValueError',
      `User-specified max_model_len (${args.maxModelLen}) is greater than the derived max_model_len (${derived.key}=${derived.value} or model_max_length=None in model's config.json). This may lead to incorrect model outputs or CUDA errors. To allow overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1`,
    );
  }
  maxModelLen = Math.max(1, maxModelLen);
  if (weightFiles(resolved.dir).length === 0) throw new StartError('RuntimeError', `Cannot find any model weights with \`${resolved.source === 'local' ? resolved.dir : args.model}\``);

  const tasksFile = io.env.RFT_SIM_TASKS || DEFAULT_SIM_TASKS;
  let tasks: Instance[];
  try {
    tasks = loadInstances(tasksFile);
  } catch (err) {
    throw new StartError('SimulationError', `RFT_SIM_TASKS: cannot read the SIMULATED policy's tasks from ${path.resolve(tasksFile)}: ${(err as Error).message}`);
  }
  let sim: SimModel;
  try {
    sim = ownSimModel(resolved.dir) ?? SIM_BASE;
  } catch (err) {
    throw new StartError('SimulationError', (err as Error).message);
  }
  const names = args.servedModelName ?? [args.model];
  const models = names.map((name) => servedAs(sim, name, tasks));

  // --lora-modules are loaded before the server listens (init_static_loras); a failure stops it.
  const adapters: Array<{ name: string; path: string; model: SimModel }> = [];
  for (const lora of args.loraModules) {
    try {
      adapters.push({ name: lora.name, path: lora.path, model: loadAdapterModel(lora.name, lora.path, args, sim, tasks, io.env) });
    } catch (err) {
      if (err instanceof VllmHttpError) throw new StartError('ValueError', err.message);
      throw err;
    }
  }

  const host = args.host ?? '0.0.0.0';
  let server: SimServer;
  try {
    server = await startSimServer({
      host,
      port: args.port,
      models,
      tasks,
      maxModelLen,
      vllm: {
        root: args.model,
        runtimeLoraUpdating: envFlag(io.env.VLLM_ALLOW_RUNTIME_LORA_UPDATING),
        loadAdapter: (name, loraPath) => loadAdapterModel(name, loraPath, args, sim, tasks, io.env),
        adapters,
        apiKey: args.apiKey ?? io.env.VLLM_API_KEY ?? null,
      },
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new StartError('OSError', `[Errno 98] error while attempting to bind on address ('${host}', ${args.port}): address already in use`);
    throw err;
  }
  if (envFlag(io.env.VLLM_ALLOW_RUNTIME_LORA_UPDATING)) {
    io.stderr('WARNING: LoRA dynamic loading & unloading is enabled in the API server. This should ONLY be used for local development!\n');
  }
  io.stderr(`INFO: SIMULATED vLLM API server serving ${names.join(', ')} (max_model_len ${maxModelLen}) on http://${host}:${server.port}\n`);
  return { server, close: () => server.close() };
}

/** The `vllm` command: parse, start, serve until SIGTERM/SIGINT. Resolves with the exit code. */
export async function vllmMain(argv: readonly string[], io: StandinIo): Promise<number> {
  io.stderr(`${BANNER}\n`);
  const parsed = parseVllmArgs(argv);
  if (parsed.kind === 'exit') {
    if (parsed.stdout) io.stdout(parsed.stdout);
    if (parsed.stderr) io.stderr(parsed.stderr);
    return parsed.code;
  }
  let running: RunningStandin;
  try {
    running = await startVllm(parsed.args, io);
  } catch (err) {
    if (err instanceof StartError) {
      io.stderr(`${err.kind}: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  return new Promise<number>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      io.stderr(`INFO: ${signal} received, shutting down\n`);
      running.close().then(
        () => resolve(0),
        () => resolve(0),
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
