/**
 * SIMULATED `trl sft` (a test double for TRL's CLI; no GPU, no weights). Follows TRL v1.9.0:
 * - trl/cli/commands/training.py + trl/cli/accelerate_launcher.py: the arguments are parsed by the
 *   script's TrlParser with return_remaining_strings; what it does not know goes to `accelerate
 *   launch` (accelerate v1.14.0 src/accelerate/commands/launch.py, allow_abbrev=False), whose
 *   argparse rejects an unknown flag: "Accelerate launch command: error: unrecognized arguments".
 * - transformers 4.57.6 hf_argparser.py: one flag per dataclass field (+ a dashed alias), bools take
 *   an optional yes/no/true/false/1/0 value, a true-default bool also gets --no_X, enums are choices.
 * - trl/scripts/sft.py main: load_dataset(dataset_name) (a local folder of JSONL: datasets' json
 *   builder, split from the file name, default train), SFTTrainer(model=model_name_or_path, …,
 *   peft_config=get_peft_config(model_args)), trainer.save_model(output_dir).
 * - trl/trainer/utils.py create_model_from_path: AutoConfig.from_pretrained first, so a folder
 *   without config.json (a LoRA adapter) fails in transformers' words; hub ids from the cache.
 * - trl/trainer/sft_trainer.py __init__: assistant_only_loss needs a conversational dataset and a
 *   chat template with {% generation %} markers; without them trl/chat_template_utils.py
 *   get_training_chat_template swaps in TRL's training template when the tokenizer's template is
 *   exactly one of the originals it ships (qwen2_5.jinja, qwen3.jinja, llama3.jinja, …, compared
 *   here by SHA-256 of the file text) and otherwise raises ValueError. --chat_template_path: a
 *   .jinja/.j2 file replaces the tokenizer's template.
 * Output: save_model writes the model (full: config.json, weights, tokenizer; --use_peft: PEFT's
 * adapter_config.json naming the base + adapter_model.safetensors, tokenizer) plus
 * training_args.bin and a README.md model card; no trainer_state.json with save_strategy no.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { TRL_SFT_FIELDS } from './trl-fields.js';
import { chatTemplateOf, readSimModel, resolveModel, writeAdapterFolder, writeModelFolder } from './model-folder.js';
import { ALL_LINEAR_QWEN2, StandinExit, argparseError, configNotFound, pyError, readJsonl, simTrainRows } from './trainer-common.js';

const PROG = 'trl sft';
const USAGE = 'trl sft [-h] [--dataset_name DATASET_NAME] [--output_dir OUTPUT_DIR] [--model_name_or_path MODEL_NAME_OR_PATH] ... (see --help)';

/** Flags of `accelerate launch` (v1.14.0), which receives the flags TRL's parser leaves over. */
const ACCELERATE_FLAGS = new Set(
  (
    'config_file cpu debug deepspeed_config_file deepspeed_exclusion_filter deepspeed_hostfile deepspeed_inclusion_filter deepspeed_multinode_launcher downcast_bf16 ' +
    'dynamo_backend dynamo_mode enable_cpu_affinity env fsdp_activation_checkpointing fsdp_auto_wrap_policy fsdp_backward_prefetch fsdp_cpu_ram_efficient_loading ' +
    'fsdp_offload_params fsdp_sharding_strategy fsdp_state_dict_type fsdp_transformer_layer_cls_to_wrap fsdp_version gpu_ids gradient_accumulation_steps gradient_clipping ' +
    'log_dir machine_rank main_process_ip main_process_port main_training_function max_restarts mixed_precision module monitor_interval multi_gpu no_python ' +
    'num_cpu_threads_per_process num_machines num_processes offload_optimizer_device offload_param_device quiet rdzv_backend rdzv_conf same_network tee tpu ' +
    'use_deepspeed use_fsdp use_megatron_lm zero3_init_flag zero3_save_16bit_model zero_stage accelerate_config'
  ).split(' '),
);

/** SHA-256 of the original chat templates TRL v1.9.0 recognises (trl/chat_templates/<family>.jinja). */
export const TRL_KNOWN_TEMPLATES: Readonly<Record<string, string>> = {
  cd8e9439f0570856fd70470bf8889ebd8b5d1107207f67a5efb46e342330527f: 'qwen2_5',
  a0bc6f6fc7a29a80017a433e8f03a1cc1236e838a944a2d034295a60c4f2fddb: 'qwen2_5_vl',
  a55ee1b1660128b7098723e0abcd92caa0788061051c62d51cbe87d9cf1974d8: 'qwen3',
  '64f85b198065d0fba2a81f37e10ed68161ce2c19a754c7100e67e0ca2ee9c326': 'qwen3_instruct_2507',
  '3636d0f0bd6bef02654cdffdc447b79cb2cef8ab02cc75267345946291a489e4': 'qwen3_vl',
  '273d8e0e683b885071fb17e08d71e5f2a5ddfb5309756181681de4f5a1822d80': 'qwen3_5_nothink',
  a4aee8afcf2e0711942cf848899be66016f8d14a889ff9ede07bca099c28f715: 'qwen3_5_think',
  e84f32a23fdda27689f868aa4a1a5621f41133e51a48d7f3efcbea2839574259: 'qwen3_6',
  ba03a121d097859c7b5b9cd03af99aafe95275210d2876f642ad9929a150f122: 'llama3',
  ecd6ae513fe103f0eb62e8ab5bfa8d0fe45c1074fa398b089c93a7e70c15cfd6: 'gemma',
  '7de1c58e208eda46e9c7f86397df37ec49883aeece39fb961e0a6b24088dd3c4': 'gemma3',
  '563b1ce7d61d50a9b4c7439a912a1116f095b712df5b5e4d3e1116049874eb64': 'deepseekv3',
  dcaee66df77bfbb789ec541fe713218da30225a526f1db97138fc39ee6dc56aa: 'phi3',
  '78d976a442bcde2f0be15aafbb8e3050e1104f86732266f68403251b89982a90': 'phi3_5',
  '90c33aee14aa2a226127516d48ee9184c9b90745d4a04c484621ec2e82fb712c': 'cohere',
  '2147c474f41b522b7296f74692b9f31e45f49a31465960576a9d321339c5915a': 'cohere2',
  '44f815868bf02fa458dd2f741a338046f4bf45f398eb6d067766726b9d96cce3': 'glm4moe',
  a4c9919cbbd4acdd51ccffe22da049264b1b73e59055fa58811a99efbd7c8146: 'gptoss',
};

export const NO_GENERATION_MARKERS =
  'The chat template is not training-compatible (missing prefix-preservation or `{% generation %}` markers) ' +
  'and patching is not supported for this template. Please manually modify the chat template for training.';

export function hasGenerationMarkers(template: string): boolean {
  return /\{%-?\s*generation\s*-?%\}/.test(template);
}

type Value = string | number | boolean | string[];

function parseBool(flag: string, raw: string): boolean {
  const v = raw.toLowerCase();
  if (['yes', 'true', 't', 'y', '1'].includes(v)) return true;
  if (['no', 'false', 'f', 'n', '0'].includes(v)) return false;
  throw argparseError(PROG, USAGE, `argument ${flag}: Truthy value expected: got ${raw} but expected one of yes/no, true/false, t/f, y/n, 1/0 (case insensitive).`);
}

/** HfArgumentParser over the SFT dataclasses; the leftovers as accelerate launch would take them. */
export function parseTrlArgs(argv: readonly string[]): Map<string, Value> {
  const values = new Map<string, Value>();
  const leftover: string[] = [];
  for (let i = 0; i < argv.length; i += 1) {
    const token = argv[i]!;
    if (token === '-h' || token === '--help') throw new StandinExit(0, `usage: ${USAGE}\n(SIMULATED: accepts the ${Object.keys(TRL_SFT_FIELDS).length} fields of TRL v1.9.0's SFT dataclasses)`);
    if (!token.startsWith('--')) {
      leftover.push(token);
      continue;
    }
    const eq = token.indexOf('=');
    const flag = eq >= 0 ? token.slice(0, eq) : token;
    const inline = eq >= 0 ? token.slice(eq + 1) : undefined;
    let name = flag.slice(2).replace(/-/g, '_');
    let negated = false;
    if (!(name in TRL_SFT_FIELDS) && name.startsWith('no_') && TRL_SFT_FIELDS[name.slice(3)] === 'bool+') {
      name = name.slice(3);
      negated = true;
    }
    const kind = TRL_SFT_FIELDS[name];
    if (kind === undefined) {
      leftover.push(token);
      continue;
    }
    const next = (): string => {
      if (inline !== undefined) return inline;
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) throw argparseError(PROG, USAGE, `argument ${flag}: expected one argument`);
      i += 1;
      return v;
    };
    if (negated) values.set(name, false);
    else if (kind === 'bool' || kind === 'bool+') {
      const v = inline ?? (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--') ? argv[++i] : undefined);
      values.set(name, v === undefined ? true : parseBool(flag, v));
    } else if (kind === 'list') {
      const items: string[] = inline !== undefined ? [inline] : [];
      while (inline === undefined && argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) items.push(argv[++i]!);
      if (items.length === 0) throw argparseError(PROG, USAGE, `argument ${flag}: expected at least one argument`);
      values.set(name, items);
    } else if (kind === 'int' || kind === 'float') {
      const raw = next();
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n) || (kind === 'int' && !/^[-+]?\d+$/.test(raw.trim()))) throw argparseError(PROG, USAGE, `argument ${flag}: invalid ${kind} value: '${raw}'`);
      values.set(name, n);
    } else if (kind.startsWith('c:')) {
      const raw = next();
      const choices = kind.slice(2).split('|');
      if (!choices.includes(raw)) throw argparseError(PROG, USAGE, `argument ${flag}: invalid choice: '${raw}' (choose from ${choices.map((c) => `'${c}'`).join(', ')})`);
      values.set(name, raw);
    } else values.set(name, next());
  }
  // What TrlParser left goes to `accelerate launch … sft.py`; its parser knows its own flags only.
  for (let i = 0; i < leftover.length; i += 1) {
    const token = leftover[i]!;
    if (!token.startsWith('--')) continue;
    const name = token.slice(2).split('=')[0]!.replace(/-/g, '_');
    if (!ACCELERATE_FLAGS.has(name)) {
      throw argparseError('Accelerate launch command', 'accelerate <command> [<args>] launch [-h] [--config_file CONFIG_FILE] ... training_script ...', `unrecognized arguments: ${token}`);
    }
  }
  return values;
}

/** datasets.load_dataset(name): a local folder of JSON/JSONL files, split by file name. */
function loadLocalDataset(name: string): Map<string, Record<string, unknown>[]> {
  if (!existsSync(name)) throw pyError('datasets.exceptions.DatasetNotFoundError', `Dataset '${name}' doesn't exist on the Hub or cannot be accessed.`);
  const files = statSync(name).isDirectory()
    ? readdirSync(name)
        .filter((f) => /\.(jsonl|json)$/.test(f))
        .sort()
        .map((f) => path.join(name, f))
    : [];
  if (files.length === 0) throw pyError('datasets.exceptions.DataFilesNotFoundError', `No (supported) data files found in ${name}`);
  const splits = new Map<string, Record<string, unknown>[]>();
  for (const file of files) {
    const base = path.basename(file).replace(/\.(jsonl|json)$/, '');
    const split = /(^|[-_.])(test|testing|eval|evaluation)([-_.]|$)/.test(base) ? 'test' : /(^|[-_.])(validation|valid|dev|val)([-_.]|$)/.test(base) ? 'validation' : 'train';
    splits.set(split, [...(splits.get(split) ?? []), ...readJsonl(file)]);
  }
  return splits;
}

function isConversational(row: Record<string, unknown>): boolean {
  for (const key of ['prompt', 'chosen', 'rejected', 'completion', 'messages']) {
    const value = row[key];
    if (Array.isArray(value)) {
      const first = value[0] as unknown;
      if (first !== null && typeof first === 'object' && 'role' in first) return true;
    }
  }
  return false;
}

/** The base model as create_model_from_path reads it: AutoConfig first, then the weights. */
export function loadModelAsTransformers(nameOrPath: string): string {
  const resolved = resolveModel(nameOrPath);
  if (!resolved) throw configNotFound(nameOrPath, false);
  if (!existsSync(path.join(resolved.dir, 'config.json'))) throw configNotFound(nameOrPath, true);
  const hasWeights = readdirSync(resolved.dir).some((f) => /^model(-\d{5}-of-\d{5})?\.safetensors$/.test(f) || f === 'pytorch_model.bin');
  if (!hasWeights) throw pyError('OSError', `Error no file named model.safetensors, or pytorch_model.bin, found in directory ${nameOrPath}.`);
  return resolved.dir;
}

export function trlSft(argv: readonly string[]): { outputDir: string; log: string[] } {
  if (argv[0] !== 'sft') {
    throw argparseError('trl', 'trl [-h] {dpo,env,grpo,kto,reward,rloo,sft,vllm-serve} ...', `argument command: invalid choice: '${argv[0] ?? ''}' (SIMULATED stand-in: only sft is simulated)`);
  }
  const args = parseTrlArgs(argv.slice(1));
  const log: string[] = [];
  const datasetName = args.get('dataset_name') as string | undefined;
  if (!datasetName) throw pyError('ValueError', 'Either `datasets` or `dataset_name` must be provided.');
  const splits = loadLocalDataset(datasetName);
  const split = (args.get('dataset_train_split') as string | undefined) ?? 'train';
  const rows = splits.get(split);
  if (!rows) throw pyError('KeyError', `'${split}'`);
  if (rows.length === 0) throw pyError('StopIteration', '(the train split is empty)');

  const modelName = args.get('model_name_or_path') as string | undefined;
  if (!modelName) throw pyError('OSError', 'None is not a local folder and is not a valid model identifier');
  const modelDir = loadModelAsTransformers(modelName);
  // AutoProcessor on the same folder: the tokenizer and its chat template.
  let template = chatTemplateOf(modelDir);
  const templatePath = args.get('chat_template_path') as string | undefined;
  if (templatePath !== undefined) {
    if (existsSync(templatePath) && statSync(templatePath).isFile() && /\.(jinja|j2)$/.test(templatePath)) template = readFileSync(templatePath, 'utf8');
    else {
      // clone_chat_template: the template of another tokenizer (a folder or hub id).
      const other = resolveModel(templatePath);
      if (!other) throw configNotFound(templatePath, false);
      template = chatTemplateOf(other.dir);
    }
  }

  const sample = rows[0]!;
  const promptCompletion = 'prompt' in sample && 'completion' in sample;
  if (!('messages' in sample) && !('text' in sample) && !promptCompletion) throw pyError('KeyError', `'${(args.get('dataset_text_field') as string | undefined) ?? 'text'}'`);
  if (args.get('assistant_only_loss') === true) {
    if (!isConversational(sample)) {
      throw pyError('ValueError', 'You set `assistant_only_loss=True`, but the dataset is not conversational. This option is only supported for conversational datasets.');
    }
    if (template === null || !hasGenerationMarkers(template)) {
      const family = template === null ? undefined : TRL_KNOWN_TEMPLATES[createHash('sha256').update(template).digest('hex')];
      if (family === undefined) throw pyError('ValueError', NO_GENERATION_MARKERS);
      log.push(`assistant_only_loss: swapped in TRL's ${family}_training chat template ({% generation %} markers)`);
    }
  }
  if (args.get('completion_only_loss') === true && !promptCompletion) log.push('completion_only_loss set, but the data is not prompt-completion: no completion mask applies');

  const parent = readSimModel(modelDir);
  const model = simTrainRows('trl', parent, rows);
  const outputDir = (args.get('output_dir') as string | undefined) ?? 'trainer_output';
  const extraFiles = {
    'training_args.bin': `SIMULATED training_args.bin (test double): ${JSON.stringify(Object.fromEntries(args))}\n`,
    'README.md': `---\nlibrary_name: transformers\ntags: [trl, sft, simulated]\nbase_model: ${modelName}\n---\n\nSIMULATED model (test double) trained with the trl sft stand-in.\n`,
  };
  if (args.get('use_peft') === true) {
    const targets = args.get('lora_target_modules') as string[] | undefined;
    writeAdapterFolder(
      outputDir,
      {
        base: modelName,
        rank: (args.get('lora_r') as number | undefined) ?? 16,
        alpha: (args.get('lora_alpha') as number | undefined) ?? 32,
        dropout: (args.get('lora_dropout') as number | undefined) ?? 0.05,
        targetModules: targets === undefined ? ['q_proj', 'v_proj'] : targets.length === 1 && targets[0] === 'all-linear' ? ALL_LINEAR_QWEN2 : targets,
      },
      modelDir,
      model,
      { chatTemplate: templatePath !== undefined ? template : null, extraFiles },
    );
  } else {
    writeModelFolder(outputDir, modelDir, model, { chatTemplate: templatePath !== undefined ? template : null, extraFiles });
  }
  log.push(`SIMULATED training: ${rows.length} examples, ${parent.name} -> ${model.name}`, `💾 Model saved to ${outputDir}.`);
  return { outputDir, log };
}

