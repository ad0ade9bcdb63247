import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeHubModel, MARKED_CHATML_TEMPLATE } from '../helpers/standin-hub.js';
import { ROOT } from './build-js.js';

/**
 * The trainer stand-ins (SIMULATED `trl sft`, `llamafactory-cli train`, `axolotl train`, and the
 * Python launcher of scripts/lib/merge-lora.py): as strict as the real parsers, validating data
 * as the real loaders, laying out output as the real tools; then each wrapper run end to end
 * against its stand-in, including a two-step LoRA continuation.
 */

const BIN = path.join(ROOT, 'test/standins/bin');
const BASE_ID = 'Qwen/Qwen2.5-Coder-7B-Instruct';
const PLAIN_ID = 'Org/Plain-Template';
const TASKS = readFileSync(path.join(ROOT, 'test/fixtures/minigym/tasks.jsonl'), 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l) as { instance_id: string; problem_statement: string });
const TASK = TASKS[0]!;

function sftLine(extra: { systemLast?: boolean; weight?: boolean } = {}): string {
  const assistant: Record<string, unknown> = { role: 'assistant', content: 'the fix' };
  if (extra.weight) assistant.weight = 1;
  const messages = [
    { role: 'system', content: 'You are an agent.' },
    { role: 'user', content: `<issue>\n${TASK.problem_statement}\n</issue>` },
    assistant,
  ];
  if (extra.systemLast) messages.push({ role: 'system', content: 'late system' }, { role: 'assistant', content: 'x' });
  return JSON.stringify({ messages });
}

function workspace(): { dir: string; hub: string; env: NodeJS.ProcessEnv; data: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-trainer-standins-'));
  const hub = path.join(dir, 'hub');
  makeHubModel(hub, BASE_ID, undefined, { chatTemplate: MARKED_CHATML_TEMPLATE });
  makeHubModel(hub, PLAIN_ID);
  const data = path.join(dir, 'train.jsonl');
  writeFileSync(data, `${sftLine({ weight: true })}\n${sftLine({ weight: true })}\n`);
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${BIN}:${process.env.PATH}`, HF_HUB_CACHE: hub, PYTHON: path.join(BIN, 'python-peft') };
  delete env.RFT_SIM_TASKS;
  delete env.ALLOW_EXTRA_ARGS;
  return { dir, hub, env, data };
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv) {
  return spawnSync(cmd, args, { encoding: 'utf8', env });
}

const json = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
const simModel = (dir: string) => json(path.join(dir, 'SIMULATED_MODEL.json')) as { name: string; parent: string; skill: { tasks: Record<string, number> } };

function expectFullModel(dir: string): void {
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'SIMULATED_MODEL.json']) expect(existsSync(path.join(dir, f)), f).toBe(true);
  expect(existsSync(path.join(dir, 'adapter_config.json'))).toBe(false);
}

function expectAdapter(dir: string, base: string): void {
  for (const f of ['adapter_config.json', 'adapter_model.safetensors', 'tokenizer_config.json', 'SIMULATED_MODEL.json']) expect(existsSync(path.join(dir, f)), f).toBe(true);
  expect(existsSync(path.join(dir, 'config.json'))).toBe(false);
  expect(json(path.join(dir, 'adapter_config.json')).base_model_name_or_path).toBe(base);
}

/** A local dataset folder for `trl sft --dataset_name`. */
function trlData(dir: string, lines: string[]): string {
  const folder = path.join(dir, `data-${Math.random().toString(36).slice(2)}`);
  mkdirSync(folder);
  writeFileSync(path.join(folder, 'train.jsonl'), `${lines.join('\n')}\n`);
  return folder;
}

describe('trl sft stand-in (TRL v1.9.0)', () => {
  const trl = path.join(BIN, 'trl');

  it('fails an unknown or renamed flag as accelerate launch does (exit 2), accepts accelerate flags and dashed aliases', () => {
    const { dir, env, data } = workspace();
    const folder = trlData(dir, [readFileSync(data, 'utf8').trim()]);
    const base = ['sft', '--model_name_or_path', BASE_ID, '--dataset_name', folder, '--output_dir', path.join(dir, 'out')];
    const renamed = run(trl, [...base, '--max_seq_length', '1024'], env);
    expect(renamed.status).toBe(2);
    expect(renamed.stderr).toContain('SIMULATED trl stand-in (test double)');
    expect(renamed.stderr).toContain('Accelerate launch command: error: unrecognized arguments: --max_seq_length');
    const badBool = run(trl, [...base, '--bf16', 'maybe'], env);
    expect(badBool.status).toBe(2);
    expect(badBool.stderr).toContain('trl sft: error: argument --bf16: Truthy value expected');
    const badChoice = run(trl, [...base, '--save_strategy', 'never'], env);
    expect(badChoice.status).toBe(2);
    expect(badChoice.stderr).toContain("invalid choice: 'never'");
    const ok = run(trl, [...base, '--max-length', '1024', '--num_processes', '1', '--bf16', 'true', '--use_peft', '--lora_target_modules', 'all-linear'], env);
    expect(ok.stderr).not.toContain('error');
    expect(ok.status).toBe(0);
  });

  it('reads the model with AutoConfig first: an adapter folder or an uncached hub id fails (exit 1)', () => {
    const { dir, env, data } = workspace();
    const folder = trlData(dir, [readFileSync(data, 'utf8').trim()]);
    const adapter = path.join(dir, 'adapter');
    expect(run(trl, ['sft', '--model_name_or_path', BASE_ID, '--dataset_name', folder, '--output_dir', adapter, '--use_peft'], env).status).toBe(0);
    const fromAdapter = run(trl, ['sft', '--model_name_or_path', adapter, '--dataset_name', folder, '--output_dir', path.join(dir, 'o2')], env);
    expect(fromAdapter.status).toBe(1);
    expect(fromAdapter.stderr).toContain(`OSError: ${adapter} does not appear to have a file named config.json`);
    const uncached = run(trl, ['sft', '--model_name_or_path', 'Nobody/Nothing', '--dataset_name', folder, '--output_dir', path.join(dir, 'o3')], env);
    expect(uncached.status).toBe(1);
    expect(uncached.stderr).toContain("couldn't find them in the cached files");
  });

  it('assistant_only_loss: refuses a template without {% generation %} it cannot patch, and non-conversational data; a marked --chat_template_path fixes it', () => {
    const { dir, env, data } = workspace();
    const folder = trlData(dir, [readFileSync(data, 'utf8').trim()]);
    const plain = run(trl, ['sft', '--model_name_or_path', PLAIN_ID, '--dataset_name', folder, '--assistant_only_loss', 'true', '--output_dir', path.join(dir, 'o1')], env);
    expect(plain.status).toBe(1);
    expect(plain.stderr).toContain('ValueError: The chat template is not training-compatible');
    const template = path.join(dir, 'marked.jinja');
    writeFileSync(template, MARKED_CHATML_TEMPLATE);
    const fixed = run(trl, ['sft', '--model_name_or_path', PLAIN_ID, '--dataset_name', folder, '--assistant_only_loss', 'true', '--chat_template_path', template, '--output_dir', path.join(dir, 'o2')], env);
    expect(fixed.status).toBe(0);
    expect(readFileSync(path.join(dir, 'o2', 'chat_template.jinja'), 'utf8')).toContain('{% generation %}');
    const text = trlData(dir, ['{"text":"plain text"}']);
    const notChat = run(trl, ['sft', '--model_name_or_path', BASE_ID, '--dataset_name', text, '--assistant_only_loss', 'true', '--output_dir', path.join(dir, 'o3')], env);
    expect(notChat.status).toBe(1);
    expect(notChat.stderr).toContain('the dataset is not conversational');
    const empty = path.join(dir, 'empty');
    mkdirSync(empty);
    const noFiles = run(trl, ['sft', '--model_name_or_path', BASE_ID, '--dataset_name', empty, '--output_dir', path.join(dir, 'o4')], env);
    expect(noFiles.status).toBe(1);
    expect(noFiles.stderr).toContain('No (supported) data files found');
  });

  it('writes a full model folder, or with --use_peft an adapter naming the base; the SIMULATED model learns the task', () => {
    const { dir, env, data } = workspace();
    const folder = trlData(dir, [readFileSync(data, 'utf8').trim()]);
    const full = path.join(dir, 'full');
    expect(run(trl, ['sft', '--model_name_or_path', BASE_ID, '--dataset_name', folder, '--output_dir', full, '--assistant_only_loss', 'true'], env).status).toBe(0);
    expectFullModel(full);
    expect(existsSync(path.join(full, 'training_args.bin'))).toBe(true);
    expect(existsSync(path.join(full, 'trainer_state.json'))).toBe(false);
    const model = simModel(full);
    expect(model.parent).toBe('sim-base');
    expect(model.skill.tasks[TASK.instance_id]).toBeGreaterThan(0);
    const adapter = path.join(dir, 'lora');
    expect(run(trl, ['sft', '--model_name_or_path', BASE_ID, '--dataset_name', folder, '--output_dir', adapter, '--use_peft', '--lora_r', '8'], env).status).toBe(0);
    expectAdapter(adapter, BASE_ID);
    expect(json(path.join(adapter, 'adapter_config.json')).r).toBe(8);
  });
});

describe('llamafactory-cli train stand-in (LLaMA-Factory v0.9.5)', () => {
  const lf = path.join(BIN, 'llamafactory-cli');

  function setup(lines: string[], formatting = 'sharegpt') {
    const ws = workspace();
    const dataDir = path.join(ws.dir, 'lf-data');
    mkdirSync(dataDir);
    writeFileSync(path.join(dataDir, 'train.jsonl'), `${lines.join('\n')}\n`);
    writeFileSync(
      path.join(dataDir, 'dataset_info.json'),
      JSON.stringify({ rft: { file_name: 'train.jsonl', formatting, columns: { messages: 'messages' }, tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant', system_tag: 'system' } } }),
    );
    const config = (extra: string) => {
      const file = path.join(ws.dir, `cfg-${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(file, `model_name_or_path: ${BASE_ID}\nstage: sft\ndo_train: true\ndataset: rft\ndataset_dir: ${dataDir}\ntemplate: qwen\n${extra}`);
      return file;
    };
    return { ...ws, config };
  }

  it('an unknown key, in the YAML or as key=value, fails as HfArgumentParser.parse_dict does (unless ALLOW_EXTRA_ARGS)', () => {
    const { dir, env, config } = setup([sftLine()]);
    const cfg = config(`finetuning_type: full\noutput_dir: ${path.join(dir, 'out')}\nmax_seq_length: 1024\n`);
    const bad = run(lf, ['train', cfg], env);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("ValueError: Some keys are not used by the HfArgumentParser: ['max_seq_length']");
    const cfgOk = config(`finetuning_type: full\noutput_dir: ${path.join(dir, 'out')}\n`);
    expect(run(lf, ['train', cfgOk, 'cutof_len=10'], env).stderr).toContain("['cutof_len']");
    expect(run(lf, ['train', cfg], { ...env, ALLOW_EXTRA_ARGS: '1' }).status).toBe(0);
    expect(run(lf, ['train', cfgOk, 'cutoff_len=10'], env).status).toBe(0);
  });

  it('validates the dataset: undefined entry, a system message not first (example skipped → no valid samples), adapter without LoRA', () => {
    const { dir, env, config } = setup([sftLine({ systemLast: true })]);
    const skipped = run(lf, ['train', config(`finetuning_type: full\noutput_dir: ${path.join(dir, 'o1')}\n`)], env);
    expect(skipped.status).toBe(1);
    expect(skipped.stderr).toContain('Cannot find valid samples');
    const undefinedDs = run(lf, ['train', config(`finetuning_type: full\noutput_dir: ${path.join(dir, 'o2')}\n`), 'dataset=nope'], env);
    expect(undefinedDs.stderr).toContain('Undefined dataset nope in dataset_info.json.');
    const adapterFull = run(lf, ['train', config(`finetuning_type: full\nadapter_name_or_path: ${dir}\noutput_dir: ${path.join(dir, 'o3')}\n`)], env);
    expect(adapterFull.stderr).toContain('Adapter is only valid for the LoRA method.');
  });

  it('writes a full model folder or an adapter naming the base, with the trainer files; continues an adapter', () => {
    const { dir, env, config } = setup([sftLine()]);
    const full = path.join(dir, 'full');
    expect(run(lf, ['train', config(`finetuning_type: full\noutput_dir: ${full}\nplot_loss: true\n`)], env).status).toBe(0);
    expectFullModel(full);
    for (const f of ['trainer_state.json', 'train_results.json', 'training_args.bin', 'training_loss.png']) expect(existsSync(path.join(full, f)), f).toBe(true);
    const a1 = path.join(dir, 'a1');
    expect(run(lf, ['train', config(`finetuning_type: lora\nlora_rank: 8\noutput_dir: ${a1}\n`)], env).status).toBe(0);
    expectAdapter(a1, BASE_ID);
    const a2 = path.join(dir, 'a2');
    expect(run(lf, ['train', config(`finetuning_type: lora\nlora_rank: 8\nadapter_name_or_path: ${a1}\noutput_dir: ${a2}\n`)], env).status).toBe(0);
    expectAdapter(a2, BASE_ID);
    expect(simModel(a2).parent).toBe(simModel(a1).name);
  });
});

describe('axolotl train stand-in (axolotl v0.18.0)', () => {
  const ax = path.join(BIN, 'axolotl');

  function config(dir: string, data: string, extra: string, base = BASE_ID): string {
    const file = path.join(dir, `ax-${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(
      file,
      `base_model: ${base}\nchat_template: tokenizer_default\ndatasets:\n  - path: ${data}\n    ds_type: json\n    type: chat_template\n    field_messages: messages\n    message_field_training: weight\n    roles_to_train: [assistant]\n${extra}`,
    );
    return file;
  }

  it('ignores an unknown key as pydantic does, but an unknown CLI flag fails in accelerate launch and removed keys raise', () => {
    const { dir, env, data } = workspace();
    const ok = run(ax, ['train', config(dir, data, `output_dir: ${path.join(dir, 'o1')}\nsequence_length: 1024\n`)], env);
    expect(ok.status).toBe(0);
    expectFullModel(path.join(dir, 'o1'));
    const flag = run(ax, ['train', config(dir, data, `output_dir: ${path.join(dir, 'o2')}\n`), '--max_seq_length', '1024'], env);
    expect(flag.status).toBe(2);
    expect(flag.stderr).toContain('unrecognized arguments: --max_seq_length');
    expect(run(ax, ['train', config(dir, data, `output_dir: ${path.join(dir, 'o3')}\n`), '--sequence_len', '1024'], env).status).toBe(0);
    const removed = run(ax, ['train', config(dir, data, `output_dir: ${path.join(dir, 'o4')}\nmax_packed_sequence_len: 2048\n`)], env);
    expect(removed.status).toBe(1);
    expect(removed.stderr).toContain('`max_packed_sequence_len` is no longer supported');
    const noBase = path.join(dir, 'nobase.yaml');
    writeFileSync(noBase, 'datasets: []\n');
    expect(run(ax, ['train', noBase], env).stderr).toContain('1 validation error for AxolotlInputConfig\nbase_model\n  Field required');
  });

  it('validates the chat_template dataset: a tokenizer without a template, a missing messages field', () => {
    const { dir, env, data } = workspace();
    makeHubModel(path.join(dir, 'hub'), 'Org/No-Template', undefined, { chatTemplate: '' });
    const noTemplate = run(ax, ['train', config(dir, data, `output_dir: ${path.join(dir, 'o1')}\n`, 'Org/No-Template')], env);
    expect(noTemplate.status).toBe(1);
    expect(noTemplate.stderr).toContain("tokenizer's chat_template is null");
    const other = path.join(dir, 'other.jsonl');
    writeFileSync(other, '{"conversations":[]}\n');
    const missing = run(ax, ['train', config(dir, other, `output_dir: ${path.join(dir, 'o2')}\n`)], env);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain("KeyError: 'messages'");
  });

  it('writes an adapter naming base_model and continues it from lora_model_dir', () => {
    const { dir, env, data } = workspace();
    const a1 = path.join(dir, 'a1');
    expect(run(ax, ['train', config(dir, data, `output_dir: ${a1}\nadapter: lora\nlora_r: 8\nlora_target_linear: true\n`)], env).status).toBe(0);
    expectAdapter(a1, BASE_ID);
    const a2 = path.join(dir, 'a2');
    expect(run(ax, ['train', config(dir, data, `output_dir: ${a2}\nadapter: lora\nlora_r: 8\nlora_model_dir: ${a1}\n`)], env).status).toBe(0);
    expectAdapter(a2, BASE_ID);
    expect(simModel(a2).parent).toBe(simModel(a1).name);
  });
});

describe('the wrappers end to end against their stand-ins', () => {
  const script = (name: string) => path.join(ROOT, `scripts/train-${name}.sh`);
  const common = (data: string, out: string, model: string) => ['--dataset', data, '--output-dir', out, '--model', model, '--epochs', '1', '--batch-size', '2', '--max-length', '2048'];
  const modelOf = (out: string) => readFileSync(path.join(out, 'MODEL'), 'utf8').trim();

  it('train-trl.sh: a full fine-tune writes a model folder named in MODEL', () => {
    const { dir, env, data } = workspace();
    const out = path.join(dir, 'it0');
    const result = run('/bin/bash', [script('trl'), ...common(data, out, BASE_ID)], env);
    expect(result.stderr).toContain('SIMULATED trl stand-in');
    expect(result.status).toBe(0);
    expect(modelOf(out)).toBe(path.join(out, 'model'));
    expectFullModel(modelOf(out));
  });

  it('train-trl.sh LoRA: adapter + its merge; step 2 starts from step 1 merged model; an adapter folder as --model is refused', () => {
    const { dir, env, data } = workspace();
    const out1 = path.join(dir, 'it0');
    const first = run('/bin/bash', [script('trl'), ...common(data, out1, BASE_ID), '--lora-rank', '8'], env);
    expect(first.stderr).toContain('SIMULATED python-peft stand-in');
    expect(first.status).toBe(0);
    expectAdapter(path.join(out1, 'adapter'), BASE_ID);
    expectFullModel(modelOf(out1));
    expect(simModel(modelOf(out1))).toEqual(simModel(path.join(out1, 'adapter')));
    const out2 = path.join(dir, 'it1');
    expect(run('/bin/bash', [script('trl'), ...common(data, out2, modelOf(out1)), '--lora-rank', '8'], env).status).toBe(0);
    expectAdapter(path.join(out2, 'adapter'), modelOf(out1));
    expectFullModel(modelOf(out2));
    expect(simModel(modelOf(out2)).parent).toBe(simModel(modelOf(out1)).name);
    const refused = run('/bin/bash', [script('trl'), ...common(data, path.join(dir, 'it2'), path.join(out1, 'adapter')), '--lora-rank', '8'], env);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('is a LoRA adapter folder');
  });

  it('train-trl.sh on a model whose template TRL cannot patch fails as TRL does; --chat-template fixes it', () => {
    const { dir, env, data } = workspace();
    const failed = run('/bin/bash', [script('trl'), ...common(data, path.join(dir, 'a'), PLAIN_ID)], env);
    expect(failed.status).toBe(1);
    expect(failed.stderr).toContain('The chat template is not training-compatible');
    const template = path.join(dir, 'marked.jinja');
    writeFileSync(template, MARKED_CHATML_TEMPLATE);
    expect(run('/bin/bash', [script('trl'), ...common(data, path.join(dir, 'b'), PLAIN_ID), '--chat-template', template], env).status).toBe(0);
  });

  for (const name of ['llamafactory', 'axolotl'] as const) {
    it(`train-${name}.sh: full fine-tune, then a two-step LoRA run continuing the adapter on the same base`, () => {
      const { dir, env, data } = workspace();
      const full = path.join(dir, 'full');
      const fullRun = run('/bin/bash', [script(name), ...common(data, full, BASE_ID)], env);
      expect(fullRun.stderr).toContain('SIMULATED');
      expect(fullRun.status).toBe(0);
      expectFullModel(modelOf(full));
      const out1 = path.join(dir, 'it0');
      expect(run('/bin/bash', [script(name), ...common(data, out1, BASE_ID), '--lora-rank', '8'], env).status).toBe(0);
      expectAdapter(modelOf(out1), BASE_ID);
      const out2 = path.join(dir, 'it1');
      const second = run('/bin/bash', [script(name), ...common(data, out2, modelOf(out1)), '--lora-rank', '8'], env);
      expect(second.status).toBe(0);
      expectAdapter(modelOf(out2), BASE_ID);
      expect(simModel(modelOf(out2)).parent).toBe(simModel(modelOf(out1)).name);
      const noRank = run('/bin/bash', [script(name), ...common(data, path.join(dir, 'it2'), modelOf(out1))], env);
      expect(noRank.status).toBe(2);
      expect(noRank.stderr).toContain('needs --lora-rank');
    });
  }
});
