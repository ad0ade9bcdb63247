/**
 * SIMULATED `llamafactory-cli train CONFIG.yaml [key=value ...]` (a test double for LLaMA-Factory;
 * no GPU, no weights). Follows LLaMA-Factory v0.9.5:
 * - src/llamafactory/launcher.py: the commands; an unknown one prints "Unknown command" + usage.
 * - src/llamafactory/hparams/parser.py read_args/_parse_train_args: the YAML merged with the
 *   OmegaConf.from_cli key=value overrides, then HfArgumentParser.parse_dict over _TRAIN_ARGS with
 *   allow_extra_keys only when ALLOW_EXTRA_ARGS is set; an unknown key raises transformers'
 *   "Some keys are not used by the HfArgumentParser: [...]" (transformers 4.57.6 hf_argparser.py);
 *   "Adapter is only valid for the LoRA method."; hparams/model_args.py: adapter_name_or_path is a
 *   comma-separated list, the last one resumed when training.
 * - src/llamafactory/data/parser.py get_dataset_list (dataset_info.json; "Undefined dataset X in
 *   dataset_info.json."), data/loader.py (the file under dataset_dir, FILEEXT2TYPE, "File X not
 *   found.", "Cannot find valid samples, check `data/README.md` for the data format."),
 *   data/converter.py Sharegpt/OpenAI converters (a system message only first; user/observation
 *   at odd turns, assistant/function at even turns, an even count; else the example is skipped).
 * - model loading through transformers (AutoConfig: a folder without config.json fails).
 * - train/sft/workflow.py: save_model, save_metrics, save_state (trainer_state.json), plot_loss.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { LLAMAFACTORY_TRAIN_KEYS } from './llamafactory-keys.js';
import { isAdapterFolder, readSimModel, resolveModel, writeAdapterFolder, writeModelFolder } from './model-folder.js';
import { ALL_LINEAR_QWEN2, StandinExit, pyError, readJsonl, simTrainRows } from './trainer-common.js';
import { loadModelAsTransformers } from './trl.js';

const USAGE = [
  '----------------------------------------------------------------------',
  '| Usage:                                                             |',
  '|   llamafactory-cli train -h: train models                          |',
  '|   (SIMULATED stand-in: only train is simulated)                    |',
  '----------------------------------------------------------------------',
].join('\n');

type Config = Record<string, unknown>;

/** OmegaConf.from_cli: each override is key=value, the value read as YAML. */
function applyOverrides(config: Config, overrides: readonly string[]): Config {
  const merged: Config = { ...config };
  for (const item of overrides) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw pyError('omegaconf.errors.GrammarParseError', `Error parsing override '${item}' (expected key=value)`);
    merged[item.slice(0, eq)] = parseYaml(item.slice(eq + 1)) as unknown;
  }
  return merged;
}

function str(config: Config, key: string): string | undefined {
  const v = config[key];
  return v === undefined || v === null ? undefined : String(v);
}

type Tags = { role: string; content: string; user: string; assistant: string; observation: string; function: string; system: string };

/** Whether the converter keeps an example (the checks of SharegptDatasetConverter / OpenAIDatasetConverter). */
function convertible(messages: unknown, tags: Tags, openai: boolean): boolean {
  if (!Array.isArray(messages)) return false;
  let list = messages as Array<Record<string, unknown>>;
  if (list.length > 0 && list[0]![tags.role] === tags.system) list = list.slice(1);
  let roles: string[] = [];
  if (openai) {
    // assistant tool_calls become function turns; consecutive observations merge into one.
    for (const m of list) {
      let role = String(m[tags.role]);
      if ((role === tags.assistant || role === tags.function) && Array.isArray(m.tool_calls) && m.tool_calls.length > 0) role = tags.function;
      if (role === tags.observation) {
        if (roles.at(-1) !== 'observation') roles.push('observation');
        continue;
      }
      roles.push(role === tags.user ? 'user' : role === tags.assistant ? 'assistant' : role === tags.function ? 'function' : role === tags.system ? 'system' : `?${role}`);
    }
  } else {
    roles = list.map((m) => {
      const role = String(m[tags.role]);
      return role === tags.user ? 'user' : role === tags.observation ? 'observation' : role === tags.assistant ? 'assistant' : role === tags.function ? 'function' : `?${role}`;
    });
  }
  const odd = ['user', 'observation'];
  const even = ['assistant', 'function'];
  if (roles.some((r, i) => !(i % 2 === 0 ? odd : even).includes(r))) return false;
  return roles.length % 2 === 0;
}

function loadDataset(config: Config): Record<string, unknown>[] {
  const names = (str(config, 'dataset') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw pyError('ValueError', 'Please specify `dataset` for training.');
  const dir = str(config, 'dataset_dir') ?? 'data';
  const infoPath = path.join(dir, 'dataset_info.json');
  let info: Record<string, Record<string, unknown>>;
  try {
    info = JSON.parse(readFileSync(infoPath, 'utf8')) as Record<string, Record<string, unknown>>;
  } catch (error) {
    throw pyError('ValueError', `Cannot open ${infoPath} due to ${(error as Error).message}.`);
  }
  const kept: Record<string, unknown>[] = [];
  for (const name of names) {
    const entry = info[name];
    if (!entry) throw pyError('ValueError', `Undefined dataset ${name} in dataset_info.json.`);
    if (typeof entry.file_name !== 'string') throw pyError('NotImplementedError', `SIMULATED stand-in: only local file_name datasets (entry ${name})`);
    const formatting = (entry.formatting as string | undefined) ?? 'alpaca';
    if (formatting !== 'sharegpt' && formatting !== 'openai') throw pyError('NotImplementedError', `SIMULATED stand-in: formatting ${formatting} is not simulated (sharegpt, openai)`);
    const local = path.join(dir, entry.file_name);
    let files: string[];
    if (existsSync(local) && statSync(local).isDirectory()) files = readdirSync(local).map((f) => path.join(local, f));
    else if (existsSync(local)) files = [local];
    else throw pyError('ValueError', `File ${local} not found.`);
    if (files.some((f) => !/\.(jsonl|json)$/.test(f))) throw pyError('ValueError', 'Allowed file types: arrow,csv,json,jsonl,parquet,txt. (SIMULATED: json/jsonl only)');
    const columns = (entry.columns ?? {}) as Record<string, string>;
    const t = (entry.tags ?? {}) as Record<string, string>;
    const tags: Tags = {
      role: t.role_tag ?? 'from',
      content: t.content_tag ?? 'value',
      user: t.user_tag ?? 'human',
      assistant: t.assistant_tag ?? 'gpt',
      observation: t.observation_tag ?? 'observation',
      function: t.function_tag ?? 'function_call',
      system: t.system_tag ?? 'system',
    };
    const messagesColumn = columns.messages ?? 'conversations';
    for (const file of files) {
      for (const row of readJsonl(file)) {
        if (!(messagesColumn in row)) throw pyError('KeyError', `'${messagesColumn}'`);
        if (convertible(row[messagesColumn], tags, formatting === 'openai')) kept.push(row);
        else process.stderr.write(`[WARNING|converter] Invalid role tag or message count in ${file}; Skipping this abnormal example.\n`);
      }
    }
  }
  if (kept.length === 0) throw pyError('RuntimeError', 'Cannot find valid samples, check `data/README.md` for the data format.');
  return kept;
}

export function llamafactoryCli(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): string[] {
  const command = argv[0];
  if (command !== 'train') {
    // The real launcher prints and returns (exit 0) for an unknown command.
    throw new StandinExit(0, command === 'help' || command === undefined ? USAGE : `Unknown command: ${command}.\n${USAGE}`);
  }
  const file = argv[1];
  if (!file || !/\.(ya?ml|json)$/.test(file)) throw pyError('ValueError', 'SIMULATED stand-in: give the training config as CONFIG.yaml (command-line --flags are not simulated)');
  if (!existsSync(file)) throw pyError('FileNotFoundError', `[Errno 2] No such file or directory: '${path.resolve(file)}'`);
  const config = applyOverrides((parseYaml(readFileSync(file, 'utf8')) as Config | null) ?? {}, argv.slice(2));

  const allowExtra = ['true', '1', 'y'].includes((env.ALLOW_EXTRA_ARGS ?? '').toLowerCase());
  const unknown = Object.keys(config).filter((k) => !LLAMAFACTORY_TRAIN_KEYS.has(k)).sort();
  if (unknown.length > 0 && !allowExtra) throw pyError('ValueError', `Some keys are not used by the HfArgumentParser: [${unknown.map((k) => `'${k}'`).join(', ')}]`);

  const stage = str(config, 'stage') ?? 'sft';
  if (stage !== 'sft') throw pyError('NotImplementedError', `SIMULATED stand-in: stage ${stage} is not simulated (sft)`);
  const finetuning = str(config, 'finetuning_type') ?? 'lora';
  if (!['lora', 'oft', 'freeze', 'full'].includes(finetuning)) throw pyError('ValueError', `finetuning_type must be one of lora, oft, freeze, full, not ${finetuning}`);
  const adapters = (str(config, 'adapter_name_or_path') ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  if (adapters.length > 0 && finetuning !== 'lora' && finetuning !== 'oft') throw pyError('ValueError', 'Adapter is only valid for the LoRA method.');
  if (config.do_train !== true) throw pyError('NotImplementedError', 'SIMULATED stand-in: only do_train: true is simulated');

  const modelName = str(config, 'model_name_or_path');
  if (!modelName) throw pyError('ValueError', 'Please provide `model_name_or_path`.');
  const modelDir = loadModelAsTransformers(modelName);
  let parent = readSimModel(modelDir);
  if (adapters.length > 0) {
    // PeftModel.from_pretrained(model, adapter, is_trainable=True): the last adapter is resumed.
    const resume = adapters.at(-1)!;
    const resolved = resolveModel(resume);
    if (!resolved || !isAdapterFolder(resolved.dir)) throw pyError('ValueError', `Can't find 'adapter_config.json' at '${resume}'`);
    parent = readSimModel(resolved.dir);
  }
  const rows = loadDataset(config);
  const model = simTrainRows('llamafactory', parent, rows, env);
  const out = str(config, 'output_dir');
  if (!out) throw pyError('ValueError', 'SIMULATED stand-in: output_dir is required');
  const metrics = JSON.stringify({ epoch: Number(config.num_train_epochs ?? 3), train_loss: 0.5, simulated: true });
  const extraFiles = {
    'training_args.bin': `SIMULATED training_args.bin (test double): ${JSON.stringify(config)}\n`,
    'train_results.json': `${metrics}\n`,
    'all_results.json': `${metrics}\n`,
    'trainer_state.json': `${JSON.stringify({ global_step: rows.length, log_history: [], simulated: true })}\n`,
    'trainer_log.jsonl': `${JSON.stringify({ current_steps: rows.length, loss: 0.5 })}\n`,
    ...(config.plot_loss === true ? { 'training_loss.png': 'SIMULATED plot (test double)\n' } : {}),
  };
  if (finetuning === 'lora') {
    const rank = Number(config.lora_rank ?? 8);
    const target = str(config, 'lora_target') ?? 'all';
    writeAdapterFolder(out, { base: modelName, rank, alpha: Number(config.lora_alpha ?? rank * 2), dropout: Number(config.lora_dropout ?? 0), targetModules: target === 'all' ? ALL_LINEAR_QWEN2 : target.split(',') }, modelDir, model, { extraFiles });
  } else {
    writeModelFolder(out, modelDir, model, { extraFiles });
  }
  return [`SIMULATED training: ${rows.length} examples, ${parent.name} -> ${model.name}`, `Model saved to ${out}`];
}
