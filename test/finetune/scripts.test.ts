import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { toolStub } from '../helpers/tool-stub.js';
import { ROOT } from './build-js.js';

/**
 * The trainer wrappers users point the command backend at. No GPU and neither TRL nor
 * LLaMA-Factory exist here: the tests cover --help, argument errors, the missing-tool message,
 * and (with a stub standing in for the tool, which records its arguments) the flags passed on.
 */

const SCRIPTS = {
  trl: { file: path.join(ROOT, 'scripts/train-trl.sh'), tool: 'trl' },
  llamafactory: { file: path.join(ROOT, 'scripts/train-llamafactory.sh'), tool: 'llamafactory-cli' },
  axolotl: { file: path.join(ROOT, 'scripts/train-axolotl.sh'), tool: 'axolotl' },
} as const;

function run(script: string, args: string[], env: NodeJS.ProcessEnv = process.env) {
  return spawnSync('/bin/bash', [script, ...args], { encoding: 'utf8', env });
}

function workspace(): { dir: string; dataset: string; out: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-wrapper-'));
  const dataset = path.join(dir, 'train.jsonl');
  writeFileSync(dataset, '{"messages":[{"role":"user","content":"u"},{"role":"assistant","content":"a"}]}\n');
  return { dir, dataset, out: path.join(dir, 'iter-0', 'finetune') };
}

describe.each(Object.entries(SCRIPTS))('scripts/train-%s.sh', (_name, { file, tool }) => {
  it('--help documents every flag', () => {
    const result = run(file, ['--help']);
    expect(result.status).toBe(0);
    for (const flag of ['--dataset', '--output-dir', '--model', '--epochs', '--learning-rate', '--batch-size', '--max-length', '--lora-rank', '--train-on']) {
      expect(result.stdout).toContain(flag);
    }
  });

  it('rejects unknown flags, missing required flags and bad numbers with exit 2', () => {
    const { dataset, out } = workspace();
    expect(run(file, ['--bogus']).status).toBe(2);
    const missing = run(file, ['--dataset', dataset, '--output-dir', out]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('--model is required');
    const bad = run(file, ['--dataset', dataset, '--output-dir', out, '--model', 'm', '--batch-size', '8', '--micro-batch-size', '3']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('not a multiple');
    expect(run(file, ['--dataset', dataset, '--output-dir', out, '--model', 'm', '--lora-rank', 'x']).status).toBe(2);
    expect(run(file, ['--dataset', dataset, '--output-dir', out, '--model', 'm', '--train-on', 'everything']).stderr).toContain('--train-on must be assistant or target');
    expect(run(file, ['--dataset', path.join(out, 'nope.jsonl'), '--output-dir', out, '--model', 'm']).stderr).toContain('does not exist');
  });

  it('says clearly that the tool is not installed (exit 127) and writes no model', () => {
    const { dir, dataset, out } = workspace();
    const emptyBin = path.join(dir, 'empty-bin');
    mkdirSync(emptyBin);
    const result = run(file, ['--dataset', dataset, '--output-dir', out, '--model', 'm'], { ...process.env, PATH: emptyBin });
    expect(result.status).toBe(127);
    expect(result.stderr).toContain(`the '${tool}' command is not installed`);
    expect(existsSync(path.join(out, 'MODEL'))).toBe(false);
  });
});

describe('flags passed on to the tool (a stub stands in for it)', () => {
  it('train-trl.sh maps the flags onto trl sft, merges the LoRA adapter with $PYTHON, and writes <output-dir>/MODEL', () => {
    const { dir, dataset, out } = workspace();
    const { env, argsFile } = toolStub(dir, 'trl');
    // With --lora-rank TRL writes DIR/adapter and scripts/lib/merge-lora.py merges it into DIR/model.
    const merge = toolStub(path.join(dir, 'py'), 'python-stub');
    const result = run(SCRIPTS.trl.file, ['--dataset', dataset, '--output-dir', out, '--model', 'Qwen/Qwen2.5-Coder-32B-Instruct', '--epochs', '3', '--learning-rate', '0.0005', '--batch-size', '8', '--max-length', '10240', '--lora-rank', '64', '--micro-batch-size', '2', '--', '--seed', '7'], { ...env, PYTHON: path.join(dir, 'py', 'bin', 'python-stub') });
    expect(result.status, result.stderr).toBe(0);
    const args = readFileSync(argsFile, 'utf8').trim().split('\n');
    const value = (flag: string) => args[args.indexOf(flag) + 1];
    expect(args[0]).toBe('sft');
    expect(value('--model_name_or_path')).toBe('Qwen/Qwen2.5-Coder-32B-Instruct');
    expect(value('--dataset_name')).toBe(path.join(out, 'data'));
    expect(readFileSync(path.join(out, 'data', 'train.jsonl'), 'utf8')).toBe(readFileSync(dataset, 'utf8'));
    expect(value('--output_dir')).toBe(path.join(out, 'adapter'));
    expect(readFileSync(merge.argsFile, 'utf8').trim().split('\n')).toEqual([path.join(ROOT, 'scripts/lib/merge-lora.py'), path.join(out, 'adapter'), path.join(out, 'model')]);
    expect(value('--num_train_epochs')).toBe('3');
    expect(value('--learning_rate')).toBe('0.0005');
    expect(value('--per_device_train_batch_size')).toBe('2');
    expect(value('--gradient_accumulation_steps')).toBe('4');
    expect(value('--max_length')).toBe('10240');
    expect(args).toContain('--use_peft');
    expect(value('--lora_r')).toBe('64');
    expect(value('--lora_alpha')).toBe('128');
    expect(args.slice(-2)).toEqual(['--seed', '7']);
    expect(readFileSync(path.join(out, 'MODEL'), 'utf8').trim()).toBe(path.join(out, 'model'));
  });

  it('train-llamafactory.sh registers the dataset, writes the YAML, and writes <output-dir>/MODEL', () => {
    const { dir, dataset, out } = workspace();
    const { env, argsFile } = toolStub(dir, 'llamafactory-cli');
    const result = run(SCRIPTS.llamafactory.file, ['--dataset', dataset, '--output-dir', out, '--model', 'my "model"', '--epochs', '5', '--learning-rate', '0.00002', '--batch-size', '8', '--max-length', '4096', '--template', 'qwen'], env);
    expect(result.status, result.stderr).toBe(0);
    const args = readFileSync(argsFile, 'utf8').trim().split('\n');
    const config = path.join(out, 'llamafactory.yaml');
    expect(args).toEqual(['train', config]);
    const yaml = readFileSync(config, 'utf8');
    for (const line of ['model_name_or_path: "my \\"model\\""', 'stage: sft', 'finetuning_type: full', 'dataset: rft_sft', 'template: qwen', 'cutoff_len: 4096', 'per_device_train_batch_size: 1', 'gradient_accumulation_steps: 8', 'learning_rate: 0.00002', 'num_train_epochs: 5', `output_dir: "${path.join(out, 'model')}"`]) {
      expect(yaml).toContain(line);
    }
    const info = JSON.parse(readFileSync(path.join(out, 'lf-data', 'dataset_info.json'), 'utf8')) as Record<string, { formatting: string; columns: Record<string, string> }>;
    expect(info.rft_sft).toMatchObject({ formatting: 'sharegpt', columns: { messages: 'messages' } });
    expect(readFileSync(path.join(out, 'lf-data', 'train.jsonl'), 'utf8')).toBe(readFileSync(dataset, 'utf8'));
    expect(readFileSync(path.join(out, 'MODEL'), 'utf8').trim()).toBe(path.join(out, 'model'));
  });
});
