/**
 * SIMULATED Python launcher for scripts/lib/merge-lora.py (a test double; set PYTHON to
 * test/standins/bin/python-peft). Does what that script does with peft + transformers, following
 * peft v0.17 (AutoPeftModelForCausalLM.from_pretrained: adapter_config.json, its
 * base_model_name_or_path loaded through transformers; merge_and_unload; save_pretrained): validates
 * the adapter folder, resolves the base (a folder or a cached hub id), writes a full model folder
 * (config.json from the base, weights, the adapter's tokenizer files, else the base's) whose
 * SIMULATED_MODEL.json is the adapter's. Any other script is refused.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { adapterBase, isAdapterFolder, readSimModel, writeModelFolder } from './model-folder.js';
import { StandinExit, pyError } from './trainer-common.js';
import { loadModelAsTransformers } from './trl.js';

export function pythonPeft(argv: readonly string[]): string[] {
  const [script, ...args] = argv;
  if (!script || path.basename(script) !== 'merge-lora.py') {
    throw new StandinExit(2, `SIMULATED python-peft stand-in runs scripts/lib/merge-lora.py only, not ${script ?? '(nothing)'}`);
  }
  if (!existsSync(script)) throw new StandinExit(2, `python3: can't open file '${path.resolve(script)}': [Errno 2] No such file or directory`);
  const [adapter, out, ...rest] = args;
  if (!adapter || !out || rest.length > 0) throw new StandinExit(2, 'usage: merge-lora.py ADAPTER_DIR OUTPUT_DIR\nmerge-lora.py: error: expected ADAPTER_DIR and OUTPUT_DIR');
  if (!existsSync(path.join(adapter, 'adapter_config.json'))) throw pyError('ValueError', `Can't find 'adapter_config.json' at '${adapter}'`);
  if (!isAdapterFolder(adapter)) throw pyError('FileNotFoundError', `No adapter weights (adapter_model.safetensors) in ${adapter}`);
  const base = adapterBase(adapter);
  if (!base) throw pyError('KeyError', `'base_model_name_or_path' (in ${path.join(adapter, 'adapter_config.json')})`);
  const baseDir = loadModelAsTransformers(base);
  const tokenizerFrom = existsSync(path.join(adapter, 'tokenizer_config.json')) ? adapter : baseDir;
  // The tokenizer the adapter was trained with wins over the base's.
  writeModelFolder(out, baseDir, readSimModel(adapter), { tokenizerFrom });
  return [`merged ${adapter} into ${base}: ${out}`];
}
