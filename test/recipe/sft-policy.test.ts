import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRecipe } from '../../src/recipe/load.js';
import { sftBackendOf } from '../../src/recipe/schema.js';
import { assertDatasetReadable, DatasetCheckError } from '../../src/sft/check-dataset.js';
import { exampleOptionsOf } from '../../src/sft/options.js';

const recipe = (finetune: string, sft = '') => `name: t
tasks:
  train: {path: tasks.jsonl}
policy: {kind: simulated, model: sim-base}
finetune: ${finetune}
${sft}`;
const command = (cmd: string) => `{backend: command, command: "${cmd}", base_model: sim-base}`;

describe('sft: train_on, backend, tool_arguments in the recipe', () => {
  it('defaults: every assistant turn trained; the backend follows finetune; arguments by backend', () => {
    const options = exampleOptionsOf(parseRecipe(recipe(command('true')), 'r.yaml'));
    expect(options).toMatchObject({ train_on: 'assistant', backend: 'trl', tokenizer: 'cl100k_base', tool_arguments: null });
    expect(sftBackendOf(parseRecipe(recipe('{backend: openai, base_model: gpt-4o-mini-2024-07-18}'), 'r.yaml').recipe)).toBe('openai');
    expect(sftBackendOf(parseRecipe(recipe(command('bash scripts/train-llamafactory.sh --dataset {dataset}')), 'r.yaml').recipe)).toBe('llamafactory');
    expect(sftBackendOf(parseRecipe(recipe(command('bash scripts/train-axolotl.sh --dataset {dataset}')), 'r.yaml').recipe)).toBe('axolotl');
  });

  it('refuses at recipe check what a backend cannot read, naming the field', () => {
    expect(() => parseRecipe(recipe(command('bash scripts/train-llamafactory.sh'), 'sft: {unit: trajectory}\n'), 'r.yaml')).toThrow(/r\.yaml:\d+: sft\.unit: LLaMA-Factory reads one system message per line/);
    expect(() => parseRecipe(recipe(command('bash scripts/train-trl.sh --train-on target'), 'sft: {unit: trajectory, train_on: target}\n'), 'r.yaml')).toThrow(/sft\.train_on: TRL's prompt-completion form/);
    expect(() => parseRecipe(recipe(command('bash scripts/train-trl.sh'), 'sft: {train_on: target}\n'), 'r.yaml')).toThrow(/finetune\.command: the wrapper is told --train-on assistant but sft\.train_on is target/);
    expect(() => parseRecipe(recipe('{backend: openai, base_model: gpt-4o-mini-2024-07-18}', 'sft: {backend: openai, tool_arguments: object}\n'), 'r.yaml')).toThrow(/tool_arguments: OpenAI fine-tuning reads tool-call arguments as a JSON string/);
    // What works: the trajectory unit where every line is readable, and a wrapper told the recipe's policy.
    expect(() => parseRecipe(recipe(command('bash scripts/train-axolotl.sh'), 'sft: {unit: trajectory, train_on: target}\n'), 'r.yaml')).toThrow(/--train-on assistant but sft\.train_on is target/);
    expect(parseRecipe(recipe(command('bash scripts/train-axolotl.sh --train-on target'), 'sft: {unit: trajectory, train_on: target}\n'), 'r.yaml').recipe.sft.unit).toBe('trajectory');
  });
});

describe('the check the loop runs after each emit', () => {
  it('stops (throws) on a file the backend would misread, naming the line', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rft-emit-check-'));
    const file = path.join(dir, 'train.jsonl');
    // A history turn of weight 1 in a file emitted for train_on target: OpenAI would train it.
    writeFileSync(file, `${JSON.stringify({ messages: [{ role: 'user', content: 'u' }, { role: 'assistant', content: 'a', weight: 1 }, { role: 'user', content: 'v' }, { role: 'assistant', content: 'b', weight: 1 }] })}\n`);
    const options = { unit: 'call', max_tokens: 100, tokenizer: 'cl100k_base', train_on: 'target', backend: 'openai', tool_arguments: null } as const;
    expect(() => assertDatasetReadable(file, options)).toThrow(DatasetCheckError);
    expect(() => assertDatasetReadable(file, options)).toThrow(/train\.jsonl:1 \[openai\]: trains messages 1,3, train_on target means 3/);
    expect(() => assertDatasetReadable(file, { ...options, train_on: 'assistant' })).not.toThrow();
  });
});
