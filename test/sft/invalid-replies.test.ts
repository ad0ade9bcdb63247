import { describe, expect, it } from 'vitest';
import { ALL_BACKENDS, canonicalOf, POLICIES, readAs, trainerSettings, type LineMessage, type SftBackend, type TrainOn } from '../../src/sft/backends.js';
import { checkLines, formatCheckReport } from '../../src/sft/check.js';
import { buildExamples, lineMessages, type SftExample } from '../../src/sft/examples.js';
import { exampleTokenizer } from '../../src/sft/tokenizer.js';
import { makeTrajectory } from './records.js';

/**
 * Issue 21, deliverable 6: a reply that was not a valid action, and the retry prompt answering it,
 * never carry loss — whatever the backend, whatever sft.train_on. A trajectory that retried twice
 * in SearchCode (json and tools protocols): the retry call's example holds a valid history turn
 * ('{"earlier":2}', trained under `assistant` only) and both invalid replies ('{"call":0}',
 * '{"call":1}'), each followed by "Your last reply was not a valid action: …".
 */

const INVALID = ['{"call":0}', '{"call":1}'];
const RETRY = /^Your last reply was not a valid action:/;

function retried(protocol: 'json' | 'tools') {
  return makeTrajectory({
    instance_id: 'a',
    protocol,
    calls: [
      { state: 'SearchCode', invalid: 'not JSON', history: true },
      { state: 'SearchCode', invalid: 'unknown field bogus', history: true },
      { state: 'SearchCode', history: true },
      'IdentifyCode',
      'EditCode',
    ],
  });
}

/** What an assistant message says: its text, or its first tool call's arguments as written. */
function said(m: LineMessage): string {
  const args = m.tool_calls?.[0]?.function.arguments;
  return args === undefined ? m.content : typeof args === 'string' ? args : JSON.stringify(args);
}

/** The messages of an example the backend trains on, as it reads the line (src/sft/backends.ts). */
function trainedBy(example: SftExample, backend: SftBackend, trainOn: TrainOn): LineMessage[] {
  const reading = readAs(example.line as unknown as Record<string, unknown>, trainerSettings(backend, trainOn));
  expect(reading.skipped).toBeNull();
  expect(reading.trained).not.toBe('all');
  const messages = lineMessages(example.line) as LineMessage[];
  return (reading.trained as number[]).map((i) => messages[i]!);
}

describe.each(ALL_BACKENDS)('%s: an invalid reply and its retry prompt carry no loss', (backend) => {
  describe.each(POLICIES)('train_on %s', (trainOn) => {
    it.each(['json', 'tools'] as const)('unit call, %s protocol: the retry call trains the corrected answer only', (protocol) => {
      const r = buildExamples([retried(protocol)], { unit: 'call', max_tokens: 10240, tokenizer: 'cl100k_base', train_on: trainOn, backend });
      const leftOut = (backend === 'trl' || backend === 'llamafactory') && trainOn === 'assistant';
      expect(r.counts).toMatchObject({ calls: 5, invalid_call: 2, valid_calls: 3, examples: 3, invalid_replies: 2, invalid_replies_left_out: leftOut ? 2 : 0 });
      const retry = r.examples[0]!;
      expect(retry.source.call_index).toBe(2);
      const trained = trainedBy(retry, backend, trainOn);
      expect(trained.map(said)).toEqual(trainOn === 'assistant' ? ['{"earlier":2}', '{"call":2}'] : ['{"call":2}']);
      for (const m of trained) expect(m.role).toBe('assistant');
      const messages = lineMessages(retry.line) as LineMessage[];
      const invalid = messages.filter((m) => m.role === 'assistant' && INVALID.includes(said(m)));
      if (!leftOut) {
        // Kept as the context the model saw, never trained: weight 0 (OpenAI, axolotl), the prompt (TRL), the masked history (LLaMA-Factory).
        expect(invalid.map((m) => m.weight)).toEqual([0, 0]);
        expect(messages.filter((m) => RETRY.test(m.content))).toHaveLength(2);
      } else {
        // TRL and LLaMA-Factory under assistant-only loss train every assistant turn of a line: the pairs are left out.
        expect(invalid).toEqual([]);
        expect(messages.some((m) => RETRY.test(m.content))).toBe(false);
        // What is left is the visit's first prompt, token for token, and the valid answer.
        expect(messages.slice(0, -1)).toEqual(lineMessages(buildExamples([retried(protocol)], { unit: 'call', max_tokens: 10240, tokenizer: 'cl100k_base', train_on: 'target', backend: 'openai' }).examples[0]!.line).slice(0, 4).map((m) => (m.role === 'assistant' ? { ...m, weight: 1 } : m)));
        expect(messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant']);
      }
      // The tokens carrying loss are those of the trained messages alone.
      const tokenizer = exampleTokenizer('cl100k_base');
      const alone = tokenizer.count(trained);
      expect(retry.trained_tokens).toBe(alone.total);
    });

    if (!(backend === 'trl' && trainOn === 'target') && backend !== 'llamafactory') {
      it('unit trajectory: every valid completion trained, no invalid reply', () => {
        const r = buildExamples([retried('json')], { unit: 'trajectory', max_tokens: 10240, tokenizer: 'cl100k_base', train_on: trainOn, backend });
        expect(r.examples).toHaveLength(1);
        const trained = trainedBy(r.examples[0]!, backend, trainOn);
        const completions = ['{"call":2}', '{"call":3}', '<replace>\ncall 4\n</replace>'];
        expect(trained.map(said)).toEqual(trainOn === 'assistant' ? ['{"earlier":2}', ...completions] : completions);
      });
    }
  });
});

describe('rft sft check counts invalid replies and the loss they would get', () => {
  const tokenizer = exampleTokenizer('cl100k_base');
  const linesFor = (backend: SftBackend, trainOn: TrainOn) =>
    buildExamples([retried('json')], { unit: 'call', max_tokens: 10240, tokenizer: 'cl100k_base', train_on: trainOn, backend }).examples.map((e) => JSON.stringify(e.line));

  it('a file written by rft: 2 invalid replies, none trained by any backend under any policy', () => {
    const report = checkLines(linesFor('openai', 'assistant'), { tokenizer, backends: ['openai', 'axolotl'], max_length: 10240, train_on: 'assistant' });
    expect(report.errors).toEqual([]);
    expect(report.invalid_replies).toBe(2);
    for (const row of report.rows) expect([row.backend, row.train_on, row.invalid_trained]).toEqual([row.backend, row.train_on, 0]);
    for (const w of report.as_written) expect(w.invalid_trained).toBe(0);
    expect(formatCheckReport(report, 'train.jsonl')).toContain('invalid replies (each answered by a retry prompt): 2, not trained: 2');
  });

  it('a file whose invalid reply has weight 1 (as rft wrote it before): an error naming the line and the message', () => {
    const lines = linesFor('openai', 'assistant').map((text) => {
      const record = JSON.parse(text) as { messages: LineMessage[] };
      for (const m of record.messages) if (m.role === 'assistant') m.weight = 1;
      return JSON.stringify(record);
    });
    const report = checkLines(lines, { tokenizer, backends: ['openai'], max_length: 10240, train_on: 'assistant' });
    expect(report.as_written[0]!.invalid_trained).toBe(2);
    expect(report.errors.map((e) => `${e.line} ${e.message}`)).toContainEqual('1 trains the invalid replies at messages 4,6');
    // Read as TRL with assistant_only_loss, the file as written would train them too.
    const trl = checkLines(lines, { tokenizer, backends: ['trl'], max_length: 10240, train_on: 'assistant' });
    expect(trl.errors.map((e) => `${e.line} ${e.message}`)).toContainEqual('1 trains the invalid replies at messages 4,6');
    // Shaped again for each backend by the check's table, no backend trains them.
    expect(report.rows.every((row) => row.invalid_trained === 0)).toBe(true);
  });

  it('finds the pairs in a written line by the retry prompt that answers them', () => {
    const [text] = linesFor('axolotl', 'target');
    const found = canonicalOf(JSON.parse(text!) as Record<string, unknown>)!;
    expect(found.line.messages.filter((m) => RETRY.test(m.content))).toHaveLength(2);
  });
});
