/**
 * SIMULATED `axolotl train CONFIG.yml [--key value ...]` (a test double for axolotl; no GPU, no
 * weights). Follows axolotl v0.18.0:
 * - src/axolotl/cli/main.py `train`: click with ignore_unknown_options/allow_extra_args; known
 *   config options come as --NAME value overrides, the rest (ctx.args) are handed to `accelerate
 *   launch` (cli/utils/train.py _launch_accelerate_training), whose argparse rejects an unknown flag
 *   (accelerate v1.14.0: "Accelerate launch command: error: unrecognized arguments").
 * - src/axolotl/utils/config/__init__.py validate_config + utils/schemas/config.py
 *   AxolotlInputConfig: pydantic models with the default extra="ignore", so an unknown or misspelt
 *   top-level or dataset key is dropped silently (no error, no warning); base_model is required
 *   ("1 validation error for AxolotlInputConfig"); utils/schemas/deprecated.py: some old keys raise
 *   (max_packed_sequence_len, rope_scaling, s2_attention, flash_attn_rms_norm), some warn.
 * - src/axolotl/prompt_strategies/chat_template.py + utils/chat_templates/base.py: type
 *   chat_template, field_messages (default "messages"), message_field_training (a message's own
 *   field says whether it is trained), roles_to_train; chat_template tokenizer_default needs the
 *   tokenizer's template ("… but tokenizer's chat_template is null").
 * - src/axolotl/loaders/adapter.py: adapter lora, lora_model_dir loads the saved adapter
 *   (PeftModel.from_pretrained, trainable) and continues it.
 * Output: the trainer's save_model into output_dir (full: config.json, weights, tokenizer; lora:
 * adapter_config.json naming base_model + adapter_model.safetensors), training_args.bin, README.md.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { AXOLOTL_CONFIG_KEYS } from './axolotl-keys.js';
import { chatTemplateOf, isAdapterFolder, readSimModel, resolveModel, writeAdapterFolder, writeModelFolder } from './model-folder.js';
import { ALL_LINEAR_QWEN2, StandinExit, argparseError, pyError, readJsonl, simTrainRows } from './trainer-common.js';
import { loadModelAsTransformers } from './trl.js';

type Config = Record<string, unknown>;

/** utils/schemas/deprecated.py: keys whose validator raises, and keys that only warn. */
const DEPRECATED_RAISE: Readonly<Record<string, string>> = {
  max_packed_sequence_len: '`max_packed_sequence_len` is no longer supported',
  rope_scaling: '`rope_scaling` is no longer supported, it should now be be a key under `model_config`',
  s2_attention: '`s2_attention` (shifted-sparse attention) is no longer supported.',
  flash_attn_rms_norm: '`flash_attn_rms_norm` is no longer supported.',
};
const DEPRECATED_WARN: Readonly<Record<string, string>> = {
  noisy_embedding_alpha: 'noisy_embedding_alpha is deprecated, use neftune_noise_alpha',
  dpo_beta: 'dpo_beta is deprecated, use rl_beta instead',
  evaluation_strategy: 'evaluation_strategy is deprecated, use eval_strategy instead',
};
/** Flags of `axolotl train` itself (and TrainerCliArgs) besides the config options. */
const TRAIN_FLAGS = new Set(['launcher', 'cloud', 'sweep', 'debug', 'debug_text_only', 'debug_num_examples', 'prompter', 'shard', 'main_process_port', 'num_processes']);
const ACCELERATE_LAUNCH_FLAGS = new Set(['config_file', 'num_processes', 'num_machines', 'machine_rank', 'main_process_ip', 'main_process_port', 'mixed_precision', 'multi_gpu', 'use_deepspeed', 'use_fsdp', 'deepspeed_config_file', 'gpu_ids', 'dynamo_backend', 'quiet']);

function parseArgs(argv: readonly string[]): { file: string; overrides: Config } {
  const [command, file, ...rest] = argv;
  if (command !== 'train') throw new StandinExit(2, `Usage: axolotl [OPTIONS] COMMAND [ARGS]...\nTry 'axolotl -h' for help.\n\nError: No such command '${command ?? ''}'. (SIMULATED stand-in: only train is simulated)`);
  if (!file) throw new StandinExit(2, "Usage: axolotl train [OPTIONS] CONFIG\nTry 'axolotl train -h' for help.\n\nError: Missing argument 'CONFIG'.");
  if (!existsSync(file)) throw new StandinExit(2, `Usage: axolotl train [OPTIONS] CONFIG\nTry 'axolotl train -h' for help.\n\nError: Invalid value for 'CONFIG': Path '${file}' does not exist.`);
  const overrides: Config = {};
  for (let i = 0; i < rest.length; i += 1) {
    const token = rest[i]!;
    if (token === '--') continue;
    if (!token.startsWith('--')) continue;
    const [rawName, inline] = token.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    const name = rawName.replace(/-/g, '_');
    const value = inline ?? (rest[i + 1] !== undefined && !rest[i + 1]!.startsWith('--') ? rest[++i] : 'true');
    if (AXOLOTL_CONFIG_KEYS.has(name)) overrides[name] = parseYaml(value!) as unknown;
    else if (!TRAIN_FLAGS.has(name) && !ACCELERATE_LAUNCH_FLAGS.has(name)) {
      throw argparseError('Accelerate launch command', 'accelerate <command> [<args>] launch [-h] [--config_file CONFIG_FILE] ... training_script ...', `unrecognized arguments: --${rawName}`);
    }
  }
  return { file, overrides };
}

function validate(config: Config): void {
  if (typeof config.base_model !== 'string' || !config.base_model) {
    throw pyError('pydantic_core._pydantic_core.ValidationError', `1 validation error for AxolotlInputConfig\nbase_model\n  Field required [type=missing, input_value={...}, input_type=dict]`);
  }
  for (const [key, message] of Object.entries(DEPRECATED_RAISE)) if (config[key]) throw pyError('DeprecationWarning', message);
  for (const [key, message] of Object.entries(DEPRECATED_WARN)) if (config[key] !== undefined && config[key] !== null) process.stderr.write(`[axolotl.utils.schemas.deprecated] [WARNING] ${message}\n`);
  if (config.adapter !== undefined && config.adapter !== null && !['lora', 'qlora'].includes(String(config.adapter))) {
    throw pyError('NotImplementedError', `SIMULATED stand-in: adapter ${String(config.adapter)} is not simulated (lora, qlora)`);
  }
  if (!Array.isArray(config.datasets) || config.datasets.length === 0) throw pyError('ValueError', 'SIMULATED stand-in: datasets is required for training');
}

/** The rows of one chat_template dataset entry, checked as the prompt strategy reads them. */
function loadChatDataset(entry: Record<string, unknown>, template: string | null, configTemplate: string): Record<string, unknown>[] {
  if (entry.type !== 'chat_template') throw pyError('NotImplementedError', `SIMULATED stand-in: dataset type ${String(entry.type)} is not simulated (chat_template)`);
  const choice = typeof entry.chat_template === 'string' ? entry.chat_template : configTemplate;
  if (choice === 'tokenizer_default' && !template) {
    throw pyError('ValueError', "`chat_template choice is tokenizer_default but tokenizer's chat_template is null. Please add a chat_template in tokenizer config");
  }
  const file = String(entry.path ?? '');
  if (!existsSync(file)) throw pyError('FileNotFoundError', `SIMULATED: dataset path ${file} is not a local file and the hub is offline`);
  const field = typeof entry.field_messages === 'string' ? entry.field_messages : 'messages';
  const trainingField = typeof entry.message_field_training === 'string' ? entry.message_field_training : null;
  const roles = Array.isArray(entry.roles_to_train) ? entry.roles_to_train.map(String) : ['assistant'];
  const rows = readJsonl(file);
  const kept: Record<string, unknown>[] = [];
  for (const row of rows) {
    const messages = row[field];
    if (!Array.isArray(messages)) throw pyError('KeyError', `'${field}'`);
    // A turn is trained by its own field when present, else by its role.
    const trained = (messages as Array<Record<string, unknown>>).some((m) => {
      const own = trainingField !== null ? m[trainingField] : undefined;
      return own !== undefined && own !== null ? Boolean(own) : roles.includes(String(m.role));
    });
    if (trained) kept.push(row);
  }
  if (rows.length > 0 && kept.length < rows.length) process.stderr.write(`[axolotl] Dropped ${rows.length - kept.length} samples with no trainable tokens from ${file}\n`);
  return kept;
}

export function axolotlCli(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const { file, overrides } = parseArgs(argv);
  const loaded = parseYaml(readFileSync(file, 'utf8')) as Config | null;
  const config: Config = { ...(loaded ?? {}), ...overrides };
  validate(config);
  const modelName = String(config.base_model);
  const modelDir = loadModelAsTransformers(modelName);
  const tokenizerDir = typeof config.tokenizer_config === 'string' ? resolveModel(config.tokenizer_config) : { dir: modelDir };
  const template = tokenizerDir ? chatTemplateOf(tokenizerDir.dir) : null;
  let parent = readSimModel(modelDir);
  const adapter = config.adapter === 'lora' || config.adapter === 'qlora';
  if (typeof config.lora_model_dir === 'string' && config.lora_model_dir) {
    const loraDir = config.lora_model_dir;
    if (!isAdapterFolder(loraDir)) throw pyError('ValueError', `Can't find 'adapter_config.json' at '${loraDir}'`);
    if (adapter) parent = readSimModel(loraDir);
  }
  const rows = (config.datasets as Array<Record<string, unknown>>).flatMap((entry) => loadChatDataset(entry, template, typeof config.chat_template === 'string' ? config.chat_template : 'tokenizer_default'));
  if (rows.length === 0) throw pyError('ValueError', 'SIMULATED: no samples left to train on after preprocessing');
  const model = simTrainRows('axolotl', parent, rows, env);
  const out = typeof config.output_dir === 'string' ? config.output_dir : './model-out';
  const extraFiles = {
    'training_args.bin': `SIMULATED training_args.bin (test double): ${JSON.stringify(config)}\n`,
    'README.md': `---\nlibrary_name: transformers\ntags: [axolotl, simulated]\nbase_model: ${modelName}\n---\n\nSIMULATED model (test double) trained with the axolotl stand-in.\n`,
  };
  if (adapter) {
    const rank = Number(config.lora_r ?? 8);
    const targets = config.lora_target_linear === true ? ALL_LINEAR_QWEN2 : Array.isArray(config.lora_target_modules) ? config.lora_target_modules.map(String) : ['q_proj', 'v_proj'];
    writeAdapterFolder(out, { base: modelName, rank, alpha: Number(config.lora_alpha ?? rank * 2), dropout: Number(config.lora_dropout ?? 0), targetModules: targets }, modelDir, model, { extraFiles });
  } else {
    writeModelFolder(out, modelDir, model, { extraFiles });
  }
  return [`SIMULATED training: ${rows.length} examples, ${parent.name} -> ${model.name}`, `Model successfully saved to ${path.resolve(out)}`];
}
