import { beforeAll, describe, expect, it } from 'vitest';
import { CodeIndex } from '../../src/agent/code-index.js';
import { PythonSpanParser } from '../../src/agent/python-spans.js';
import { runTrajectory } from '../../src/agent/run.js';
import type { ChatMessage } from '../../src/policy/types.js';
import { AgentSchema } from '../../src/recipe/schema.js';
import { buildExamples, lineMessages } from '../../src/sft/examples.js';
import type { Instance } from '../../src/tasks/instance.js';
import { ScriptedPolicy } from '../helpers/scripted-policy.js';

/**
 * Examples from a trajectory the real agent recorded (a scripted policy stands in for the model):
 * each call-unit example must be exactly what the model was sent — same messages, same tool —
 * plus the answer it gave.
 */

const FILES = new Map<string, string>([
  ['calc/__init__.py', ''],
  ['calc/ops.py', 'def add(a, b):\n    """Sum of a and b."""\n    return a - b\n'],
]);

const INSTANCE: Instance = {
  instance_id: 'demo__calc-1',
  repo: 'demo/calc',
  base_commit: 'abcdef0',
  problem_statement: 'add(1, 2) returns -1 instead of 3.',
  hints_text: '',
  patch: '',
  test_patch: '',
  FAIL_TO_PASS: [],
  PASS_TO_PASS: [],
  version: null,
  created_at: null,
  environment_setup_commit: null,
  test_cmd: null,
};

let index: CodeIndex;
let parser: PythonSpanParser;

beforeAll(async () => {
  parser = await PythonSpanParser.create();
  index = await CodeIndex.build(FILES, parser);
});

/** What the model saw, in the training format: content always a string, assistant turns as weight-0 context. */
function asContext(message: ChatMessage): unknown {
  if (message.role !== 'assistant') return message;
  return { role: 'assistant', content: message.content ?? '', ...(message.tool_calls?.length ? { tool_calls: message.tool_calls } : {}), weight: 0 };
}

describe('examples of a recorded tools-protocol trajectory', () => {
  it('carry exactly the messages and the tool the model was sent, and its answer as the target', async () => {
    const policy = new ScriptedPolicy([
      { tool: 'Search', args: { scratch_pad: 'find add', search_requests: [{ function_names: ['add'] }], complete: false } },
      { tool: 'Identify', args: { scratch_pad: 'x', identified_spans: [{ file_path: 'calc/ops.py', span_ids: ['nope'] }] } }, // invalid span
      { tool: 'Identify', args: { scratch_pad: 'this one', identified_spans: [{ file_path: 'calc/ops.py', span_ids: ['add'] }] } },
      { tool: 'Decide', args: { scratch_pad: 'enough', relevant: true, complete: true } },
      { tool: 'ApplyChange', args: { scratch_pad: 'fix', action: 'modify', file_path: 'calc/ops.py', span_id: 'add', instructions: 'Return the sum.' } },
      '<replace>\ndef add(a, b):\n    """Sum of a and b."""\n    return a + b\n',
      { tool: 'ApplyChange', args: { scratch_pad: 'done', action: 'finish', finish: 'add returns the sum' } },
    ], 'scripted', { cloneRequests: true });
    const t = await runTrajectory({
      ids: { run: 'r', iteration: 0, instance_id: INSTANCE.instance_id, sample_index: 0 },
      seed: 3,
      instance: INSTANCE,
      files: FILES,
      index,
      parser,
      policy,
      agent: { ...AgentSchema.parse({}), protocol: 'tools' },
      sampling: { temperature: 1, top_p: 1 },
    });
    expect(t.outcome.status).toBe('finished');
    expect(t.calls[1]!.invalid).not.toBeNull();

    const r = buildExamples([t], { unit: 'call', max_tokens: 10240, tokenizer: 'cl100k_base', train_on: 'target' });
    expect(r.dropped.map((d) => [d.source.call_index, d.reason])).toEqual([[1, 'invalid_call']]);
    expect(r.examples.map((e) => e.source.call_index)).toEqual([0, 2, 3, 4, 5, 6]);
    for (const example of r.examples) {
      const i = example.source.call_index!;
      const request = policy.requests[i]!;
      expect(example.line.tools).toEqual(request.tools);
      expect(JSON.stringify(example.line.tools)).toBe(JSON.stringify(request.tools)); // same key order too
      expect(lineMessages(example.line).slice(0, -1)).toEqual(request.messages.map(asContext));
      expect(lineMessages(example.line).at(-1)).toMatchObject({ role: 'assistant', weight: 1 });
      expect(example.tokens).toBe(t.tokens.per_call[i]);
    }
    // The retry call (index 2) was sent the invalid answer and the tool message naming the problem 
    const retry = lineMessages(r.examples[1]!.line);
    expect(retry.filter((m) => m.role === 'assistant').map((m) => m.role === 'assistant' && m.weight)).toEqual([0, 1]);
    expect(retry.find((m) => m.role === 'tool')?.content).toMatch(/^Your last reply was not a valid action: .*nope/);
  });
});
