import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { policyMessages, POLICIES, readAs, shapeLine, trainerSettings, type CanonicalLine, type TrainerSettings, type TrainOn } from '../../src/sft/backends.js';
import { serializeLine } from '../../src/sft/write.js';
import { SftLineSchema } from '../../src/sft/examples.js';
import { toolStub } from '../helpers/tool-stub.js';
import { ROOT } from './build-js.js';

/**
 * Each wrapper, run with a stub in place of its tool, for both loss policies: the flags and
 * configs it hands the trainer are read back and must be the facts looked up in each project
 * (src/sft/backends.ts: TRL assistant_only_loss / prompt-completion + completion_only_loss;
 * LLaMA-Factory mask_history + train_on_prompt false + the registration; axolotl
 * message_field_training weight, roles_to_train [assistant], train_on_eos turn). Then the data rft
 * writes for that backend, read with the settings parsed from the wrapper's own config, must put
 * loss on exactly the policy's messages.
 */

// A call-unit line with replayed history: system, user, assistant (history), user, assistant (target).
const LINE: CanonicalLine = {
  messages: [
    { role: 'system', content: 'Workflow step: PlanToCode' },
    { role: 'user', content: '<issue>\nx breaks\n</issue>' },
    { role: 'assistant', content: '', weight: 0, tool_calls: [{ id: 'c1', type: 'function', function: { name: 'Search', arguments: '{"query":"x"}' } }] },
    { role: 'tool', content: 'found x in a.py', tool_call_id: 'c1' },
    { role: 'assistant', content: '{"action":"finish"}', weight: 1 },
  ],
  tools: [{ type: 'function', function: { name: 'Search', description: 'search', parameters: { type: 'object', properties: { query: { type: 'string' } } } } }],
};

function workspace(lines: string[]) {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-policy-'));
  const dataset = path.join(dir, 'train.jsonl');
  writeFileSync(dataset, lines.map((l) => `${l}\n`).join(''));
  return { dir, dataset, out: path.join(dir, 'finetune') };
}

function runWrapper(backend: 'trl' | 'llamafactory' | 'axolotl', trainOn: TrainOn, data: string[]) {
  const tool = { trl: 'trl', llamafactory: 'llamafactory-cli', axolotl: 'axolotl' }[backend];
  const { dir, dataset, out } = workspace(data);
  const { env, argsFile } = toolStub(dir, tool);
  const result = spawnSync('/bin/bash', [path.join(ROOT, `scripts/train-${backend}.sh`), '--dataset', dataset, '--output-dir', out, '--model', 'Qwen/Qwen2.5-Coder-7B-Instruct', '--train-on', trainOn], { encoding: 'utf8', env });
  return { result, out, args: () => readFileSync(argsFile, 'utf8').trim().split('\n') };
}

/** The data rft writes for a backend under a policy, as train.jsonl lines (schema-checked). */
function written(backend: 'trl' | 'llamafactory' | 'axolotl', trainOn: TrainOn): { record: Record<string, unknown>; text: string } {
  const record = shapeLine(LINE, backend, trainOn);
  return { record, text: serializeLine(SftLineSchema.parse(record)) };
}

/** Which of LINE's messages the trainer trains, given the settings parsed back from the wrapper. */
function trainedBy(record: Record<string, unknown>, settings: TrainerSettings): number[] | 'all' | string {
  const reading = readAs(record, settings);
  return reading.skipped ?? reading.trained;
}

describe.each(POLICIES)('train_on %s: every wrapper tells its trainer exactly the policy', (trainOn) => {
  const expected = policyMessages(shapeLine(LINE, 'openai', trainOn).messages as CanonicalLine['messages'], trainOn);

  it('is what OpenAI reads from weight', () => {
    expect(expected).toEqual(trainOn === 'assistant' ? [2, 4] : [4]);
    expect(trainedBy(shapeLine(LINE, 'openai', trainOn), trainerSettings('openai', trainOn))).toEqual(expected);
  });

  it('TRL: prompt-completion + completion_only_loss for target, messages + assistant_only_loss for assistant', () => {
    const { record, text } = written('trl', trainOn);
    const { result, args } = runWrapper('trl', trainOn, [text]);
    expect(result.status, result.stderr).toBe(0);
    const a = args();
    const flag = (name: string) => (a.includes(name) ? a[a.indexOf(name) + 1] === 'true' : false);
    expect(flag('--assistant_only_loss')).toBe(trainOn === 'assistant');
    expect(flag('--completion_only_loss')).toBe(trainOn === 'target');
    expect('prompt' in record).toBe(trainOn === 'target');
    const settings: TrainerSettings = { backend: 'trl', form: 'prompt' in record ? 'prompt_completion' : 'messages', assistant_only_loss: flag('--assistant_only_loss'), completion_only_loss: flag('--completion_only_loss') };
    expect(settings).toEqual(trainerSettings('trl', trainOn));
    expect(trainedBy(record, settings)).toEqual(expected);
    // Data of the other policy is refused: TRL would silently train on the wrong tokens.
    const other = written('trl', trainOn === 'target' ? 'assistant' : 'target');
    const refused = runWrapper('trl', trainOn, [other.text]);
    expect(refused.result.status).toBe(2);
    expect(refused.result.stderr).toMatch(/--train-on .* needs/);
  });

  it('LLaMA-Factory: mask_history and train_on_prompt in the YAML, the OpenAI-format registration with tool tags', () => {
    const { record, text } = written('llamafactory', trainOn);
    const { result, out } = runWrapper('llamafactory', trainOn, [text]);
    expect(result.status, result.stderr).toBe(0);
    const config = parseYaml(readFileSync(path.join(out, 'llamafactory.yaml'), 'utf8')) as Record<string, unknown>;
    expect(config.mask_history).toBe(trainOn === 'target');
    expect(config.train_on_prompt).toBe(false);
    const info = JSON.parse(readFileSync(path.join(out, 'lf-data', 'dataset_info.json'), 'utf8')) as { rft_sft: { formatting: string; columns: Record<string, string>; tags: Record<string, string> } };
    // The line has tools: LLaMA-Factory's "openai" converter reads tool_calls and tool messages.
    expect(info.rft_sft).toMatchObject({ formatting: 'openai', columns: { messages: 'messages', tools: 'tools' }, tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant', system_tag: 'system', observation_tag: 'tool' } });
    const settings: TrainerSettings = { backend: 'llamafactory', form: 'messages', mask_history: config.mask_history as boolean, train_on_prompt: config.train_on_prompt as false };
    expect(settings).toEqual(trainerSettings('llamafactory', trainOn));
    expect(trainedBy(record, settings)).toEqual(expected);
    // Arguments are objects: LLaMA-Factory's function formatter and the Qwen templates dump them as JSON once.
    expect(((record.messages as Array<{ tool_calls?: Array<{ function: { arguments: unknown } }> }>)[2]!.tool_calls![0]!.function.arguments)).toEqual({ query: 'x' });
  });

  it('axolotl: a chat_template dataset reading weight per message', () => {
    const { record, text } = written('axolotl', trainOn);
    const { result, out, args } = runWrapper('axolotl', trainOn, [text]);
    expect(result.status, result.stderr).toBe(0);
    expect(args()).toEqual(['train', path.join(out, 'axolotl.yaml')]);
    const config = parseYaml(readFileSync(path.join(out, 'axolotl.yaml'), 'utf8')) as { chat_template: string; sequence_len: number; datasets: Array<Record<string, unknown>> };
    expect(config.chat_template).toBe('tokenizer_default');
    const [ds] = config.datasets;
    expect(ds).toMatchObject({ type: 'chat_template', field_messages: 'messages', field_tools: 'tools' });
    const settings = { backend: 'axolotl', form: 'messages', weights: trainOn, message_field_training: ds!.message_field_training, roles_to_train: ds!.roles_to_train, train_on_eos: ds!.train_on_eos } as TrainerSettings;
    expect(settings).toEqual(trainerSettings('axolotl', trainOn));
    expect(trainedBy(record, settings)).toEqual(expected);
    if (trainOn === 'assistant') {
      const refused = runWrapper('axolotl', 'assistant', [written('axolotl', 'target').text]);
      expect(refused.result.status).toBe(2);
      expect(refused.result.stderr).toContain('weight-0');
    }
  });
});

describe('what a trainer does without being told (why the flags matter)', () => {
  it('TRL on messages without assistant_only_loss trains the whole sequence; LLaMA-Factory without mask_history trains the history', () => {
    expect(trainedBy(shapeLine(LINE, 'trl', 'assistant'), { backend: 'trl', form: 'messages', assistant_only_loss: false, completion_only_loss: false })).toBe('all');
    expect(trainedBy(shapeLine(LINE, 'llamafactory', 'target'), { backend: 'llamafactory', form: 'messages', mask_history: false, train_on_prompt: false })).toEqual([2, 4]);
  });

  it('LLaMA-Factory skips a line with a second system message (a trajectory-unit line)', () => {
    const twoSystems: CanonicalLine = { messages: [...LINE.messages, { role: 'system', content: 'Workflow step: EditCode' }, { role: 'user', content: 'edit' }, { role: 'assistant', content: 'done', weight: 1 }] };
    expect(trainedBy(shapeLine(twoSystems, 'llamafactory', 'assistant'), trainerSettings('llamafactory', 'assistant'))).toMatch(/system message at position/);
  });
});

describe.each(POLICIES)('train_on %s: a line that retried (an invalid reply answered by a retry prompt) goes through every wrapper without loss on the invalid reply', (trainOn) => {
  // LINE's target preceded by an invalid tool call and the tool message telling the model so.
  const retried: CanonicalLine = {
    ...LINE,
    messages: [
      ...LINE.messages.slice(0, 4),
      { role: 'assistant', content: '', weight: 0, tool_calls: [{ id: 'c2', type: 'function', function: { name: 'Search', arguments: '{"bogus":1}' } }] },
      { role: 'tool', content: 'Your last reply was not a valid action: unknown field bogus. Reply again with a valid Search action.', tool_call_id: 'c2' },
      LINE.messages[4]!,
    ],
  };
  const expected = trainOn === 'assistant' ? ['{"query":"x"}', '{"action":"finish"}'] : ['{"action":"finish"}'];

  it.each(['trl', 'llamafactory', 'axolotl'] as const)('%s', (backend) => {
    const record = shapeLine(retried, backend, trainOn);
    const text = serializeLine(SftLineSchema.parse(record));
    const { result } = runWrapper(backend, trainOn, [text]);
    expect(result.status, result.stderr).toBe(0);
    const trained = trainedBy(record, trainerSettings(backend, trainOn));
    expect(Array.isArray(trained)).toBe(true);
    const messages = [...((record.messages ?? record.prompt) as CanonicalLine['messages']), ...((record.completion ?? []) as CanonicalLine['messages'])];
    const said = (i: number) => {
      const m = messages[i]!;
      const args = m.tool_calls?.[0]?.function.arguments;
      return args === undefined ? m.content : typeof args === 'string' ? args : JSON.stringify(args);
    };
    expect((trained as number[]).map(said)).toEqual(expected);
    expect(JSON.stringify(record).includes('bogus')).toBe(!(trainOn === 'assistant' && backend !== 'axolotl'));
  });
});
