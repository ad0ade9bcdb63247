import { describe, expect, it } from 'vitest';
import { actionJsonSchema } from '../../src/agent/actions.js';
import { TrajectorySchema } from '../../src/agent/trajectory.js';
import { poolFromRecords, trajectoryKey, type PoolEntry } from '../../src/select/pool.js';
import { selectTrajectories } from '../../src/select/select.js';
import { capComparisonRow } from '../../src/select/compare.js';
import { accumulate, buildExamples, examplesPerTrajectory, lineMessages, SftLineSchema, type SftExample, type TrainingMessage } from '../../src/sft/examples.js';
import { toolForState } from '../../src/agent/actions.js';
import { keyOfTrajectory, makeTrajectory, makeVerdict } from './records.js';

const CALL = { unit: 'call', max_tokens: 10240, tokenizer: 'cl100k_base', train_on: 'target' } as const;
const TRAJ = { unit: 'trajectory', max_tokens: 10240, tokenizer: 'cl100k_base', train_on: 'target' } as const;

const targets = (messages: TrainingMessage[]) => messages.filter((m) => m.role === 'assistant' && m.weight === 1);
const where = (e: SftExample) => [e.source.sample_index, e.source.call_index];

describe('buildExamples, unit call (SWE-Gym): one example per valid LLM call', () => {
  it('is the call\'s messages followed by its completion, the completion the only target', () => {
    const t = makeTrajectory({ instance_id: 'a', sample_index: 2 });
    const r = buildExamples([t], CALL);
    expect(r.examples).toHaveLength(6);
    r.examples.forEach((example, i) => {
      const call = t.calls[i]!;
      expect(example.source).toEqual({ iteration: 0, instance_id: 'a', sample_index: 2, call_index: i, state: call.state });
      expect(example.tokens).toBe(t.tokens.per_call[i]);
      expect(example.line).toEqual({
        messages: [...call.messages, { role: 'assistant', content: call.completion.content, weight: 1 }],
      });
      expect(example.line.tools).toBeUndefined(); // json protocol: the schema is in the system prompt
    });
    expect(r.counts).toMatchObject({ trajectories: 1, calls: 6, invalid_call: 0, valid_calls: 6, candidates: 6, over_max_tokens: 0, examples: 6 });
    expect(r.counts.tokens_total).toBe(100 + 101 + 102 + 103 + 104 + 105);
    expect(r.counts.tokens_max).toBe(105);
    expect(r.counts.tokens_mean).toBeCloseTo(102.5, 12);
  });

  it('drops invalid calls; the retry call keeps the invalid answer as weight-0 context and trains on the corrected one', () => {
    const t = makeTrajectory({
      instance_id: 'a',
      calls: [{ state: 'SearchCode', invalid: 'not JSON' }, { state: 'SearchCode', invalid: 'unknown field bogus' }, 'SearchCode', 'IdentifyCode', 'PlanToCode'],
    });
    const r = buildExamples([t], CALL);
    expect(r.examples.map(where)).toEqual([
      [0, 2],
      [0, 3],
      [0, 4],
    ]);
    expect(r.dropped.map((d) => [d.source.call_index, d.reason])).toEqual([
      [0, 'invalid_call'],
      [1, 'invalid_call'],
    ]);
    const retry = lineMessages(r.examples[0]!.line);
    expect(retry.map((m) => `${m.role}${m.role === 'assistant' ? m.weight : ''}`)).toEqual([
      'system',
      'user',
      'assistant0',
      'user',
      'assistant0',
      'user',
      'assistant1',
    ]);
    expect(retry[2]).toMatchObject({ content: '{"call":0}', weight: 0 });
    expect(retry[4]).toMatchObject({ content: '{"call":1}', weight: 0 });
    expect(targets(retry)).toEqual([{ role: 'assistant', content: '{"call":2}', weight: 1 }]);
    expect(r.counts).toMatchObject({ calls: 5, invalid_call: 2, valid_calls: 3, candidates: 3, examples: 3 });
  });

  it('tools protocol: structured calls carry the state\'s tool, EditCode none; a tool call has content \'\'', () => {
    const t = makeTrajectory({ instance_id: 'a', protocol: 'tools', calls: [{ state: 'PlanToCode', invalid: 'missing field file_path' }, 'PlanToCode', 'EditCode'] });
    const r = buildExamples([t], CALL);
    const [plan, edit] = r.examples;
    expect(plan!.line.tools).toEqual([toolForState('PlanToCode')]);
    expect(plan!.line.tools![0]!.function.name).toBe('ApplyChange');
    expect(edit!.line.tools).toBeUndefined();
    // The target: the tool call, content '' instead of null.
    expect(lineMessages(plan!.line).at(-1)).toEqual({
      role: 'assistant',
      content: '',
      tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'ApplyChange', arguments: '{"call":1}' } }],
      weight: 1,
    });
    // The retry context: the invalid tool call (weight 0) and the tool message answering it.
    expect(lineMessages(plan!.line).slice(2, 4)).toEqual([
      { role: 'assistant', content: '', tool_calls: [{ id: 'call_0', type: 'function', function: { name: 'ApplyChange', arguments: '{"call":0}' } }], weight: 0 },
      { role: 'tool', tool_call_id: 'call_0', content: 'Your last reply was not a valid action: missing field file_path.' },
    ]);
    expect(lineMessages(edit!.line).at(-1)).toEqual({ role: 'assistant', content: '<replace>\ncall 2\n</replace>', weight: 1 });
  });

  it('drops examples above max_tokens using the recorded per-call counts and reports them', () => {
    const t = makeTrajectory({
      instance_id: 'a',
      calls: [
        { state: 'SearchCode', tokens: 100 },
        { state: 'IdentifyCode', tokens: 10240 }, // exactly at the limit: kept
        { state: 'DecideRelevance', tokens: 10241 },
        { state: 'PlanToCode', tokens: 20000, invalid: 'bad' }, // invalid first: not a candidate at all
        { state: 'PlanToCode', tokens: 500 },
      ],
    });
    const r = buildExamples([t], CALL);
    expect(r.examples.map((e) => e.tokens)).toEqual([100, 10240, 500]);
    expect(r.dropped.map((d) => [d.source.call_index, d.reason, d.tokens])).toEqual([
      [2, 'over_max_tokens', 10241],
      [3, 'invalid_call', 20000],
    ]);
    const c = r.counts;
    expect(c).toMatchObject({ calls: 5, invalid_call: 1, valid_calls: 4, candidates: 4, over_max_tokens: 1, examples: 3, tokens_max: 10240 });
    expect(c.valid_calls).toBe(c.calls - c.invalid_call);
    expect(c.examples).toBe(c.candidates - c.over_max_tokens);
    // A smaller limit drops more; the counts are never recounted from the text.
    expect(buildExamples([t], { ...CALL, max_tokens: 100 }).examples.map((e) => e.tokens)).toEqual([100]);
  });

  it('refuses trajectories counted with another encoding, or with a per-call count missing', () => {
    const o200k = makeTrajectory({ instance_id: 'a', encoding: 'o200k_base' });
    expect(() => buildExamples([o200k], CALL)).toThrow(/o200k_base.*cl100k_base/);
    expect(buildExamples([o200k], { ...CALL, tokenizer: 'o200k_base' }).examples).toHaveLength(6);
    const t = makeTrajectory({ instance_id: 'a' });
    const short = TrajectorySchema.parse({ ...t, tokens: { ...t.tokens, per_call: t.tokens.per_call.slice(1) } });
    expect(() => buildExamples([short], CALL)).toThrow(/6 calls but 5 per-call/);
    expect(() => buildExamples([t, t], CALL)).toThrow(/given twice/);
  });

  it('orders examples by instance, iteration, sample, call whatever the input order', () => {
    const ts = [
      makeTrajectory({ instance_id: 'b', sample_index: 0, calls: ['SearchCode', 'PlanToCode'] }),
      makeTrajectory({ instance_id: 'a', sample_index: 1, calls: ['SearchCode', 'PlanToCode'] }),
      makeTrajectory({ instance_id: 'a', sample_index: 0, iteration: 1, calls: ['SearchCode'] }),
    ];
    const order = (r: ReturnType<typeof buildExamples>) => r.examples.map((e) => [e.source.instance_id, e.source.iteration, e.source.sample_index, e.source.call_index]);
    expect(order(buildExamples(ts, CALL))).toEqual([
      ['a', 0, 1, 0],
      ['a', 0, 1, 1],
      ['a', 1, 0, 0],
      ['b', 0, 0, 0],
      ['b', 0, 0, 1],
    ]);
    expect(buildExamples([...ts].reverse(), CALL)).toEqual(buildExamples(ts, CALL));
  });
});

describe('buildExamples, unit trajectory: one example per trajectory', () => {
  it('concatenates the valid calls, each its messages then its completion; only completions are targets', () => {
    const t = makeTrajectory({ instance_id: 'a', calls: [{ state: 'SearchCode', invalid: 'x', tokens: 40 }, 'SearchCode', 'PlanToCode', 'EditCode'] });
    const r = buildExamples([t], TRAJ);
    expect(r.examples).toHaveLength(1);
    const [example] = r.examples;
    expect(example!.source).toEqual({ iteration: 0, instance_id: 'a', sample_index: 0, call_index: null, state: null });
    const valid = t.calls.slice(1);
    expect(lineMessages(example!.line)).toEqual(
      valid.flatMap((call) => [
        ...call.messages.map((m) => (m.role === 'assistant' ? { role: 'assistant', content: m.content, weight: 0 } : m)),
        { role: 'assistant', content: call.completion.content, weight: 1 },
      ]),
    );
    expect(targets(lineMessages(example!.line))).toHaveLength(3);
    expect(lineMessages(example!.line).filter((m) => m.role === 'system')).toHaveLength(3);
    // The sum of the valid calls' recorded counts.
    expect(example!.tokens).toBe(t.tokens.per_call[1]! + t.tokens.per_call[2]! + t.tokens.per_call[3]!);
    expect(r.dropped).toEqual([{ source: { iteration: 0, instance_id: 'a', sample_index: 0, call_index: 0, state: 'SearchCode' }, reason: 'invalid_call', tokens: 40 }]);
    expect(r.counts).toMatchObject({ trajectories: 1, calls: 4, invalid_call: 1, valid_calls: 3, candidates: 1, over_max_tokens: 0, examples: 1 });
  });

  it('drops a trajectory whose valid calls add up to more than max_tokens', () => {
    const small = makeTrajectory({ instance_id: 'a', sample_index: 0, calls: [{ state: 'SearchCode', tokens: 5000 }, { state: 'PlanToCode', tokens: 5240 }] });
    const big = makeTrajectory({ instance_id: 'a', sample_index: 1, calls: [{ state: 'SearchCode', tokens: 5000 }, { state: 'PlanToCode', tokens: 5241 }] });
    // An invalid call's tokens do not count: it is not in the example.
    const spared = makeTrajectory({ instance_id: 'a', sample_index: 2, calls: [{ state: 'SearchCode', tokens: 9000, invalid: 'x' }, { state: 'SearchCode', tokens: 5000 }] });
    const r = buildExamples([small, big, spared], TRAJ);
    expect(r.examples.map((e) => [e.source.sample_index, e.tokens])).toEqual([
      [0, 10240],
      [2, 5000],
    ]);
    expect(r.dropped.map((d) => [d.source.sample_index, d.source.call_index, d.reason, d.tokens])).toEqual([
      [1, null, 'over_max_tokens', 10241],
      [2, 0, 'invalid_call', 9000],
    ]);
    expect(r.counts).toMatchObject({ trajectories: 3, candidates: 3, over_max_tokens: 1, examples: 2, trajectories_with_examples: 2 });
  });

  it('tools protocol: the tools of the states it visited, in order of first use', () => {
    const t = makeTrajectory({ instance_id: 'a', protocol: 'tools', calls: ['SearchCode', 'IdentifyCode', 'PlanToCode', 'EditCode', 'PlanToCode'] });
    const [example] = buildExamples([t], TRAJ).examples;
    expect(example!.line.tools!.map((tool) => tool.function.name)).toEqual(['Search', 'Identify', 'ApplyChange']);
  });
});

describe('toolForState', () => {
  it('is the action schema as a function tool, without title and description in the parameters', () => {
    const tool = toolForState('SearchCode')!;
    const { title, description, ...parameters } = actionJsonSchema('SearchCode');
    expect(tool).toEqual({ type: 'function', function: { name: title, description, parameters } });
    expect(Object.keys(tool.function.parameters)).not.toContain('title');
    expect(toolForState('EditCode')).toBeNull();
  });
});

describe('every example is a valid OpenAI chat line', () => {
  it('passes the line schema, and a line that does not end in a target fails it', () => {
    const ts = [
      makeTrajectory({ instance_id: 'a', protocol: 'tools', calls: [{ state: 'SearchCode', invalid: 'x' }, 'SearchCode', 'EditCode'] }),
      makeTrajectory({ instance_id: 'b' }),
    ];
    for (const options of [CALL, TRAJ]) {
      for (const example of buildExamples(ts, options).examples) expect(SftLineSchema.safeParse(example.line).success).toBe(true);
    }
    expect(SftLineSchema.safeParse({ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y', weight: 0 }] }).success).toBe(false);
    expect(SftLineSchema.safeParse({ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: null, weight: 1 }] }).success).toBe(false);
    expect(SftLineSchema.safeParse({ messages: [{ role: 'user', content: 'x' }, { role: 'assistant', content: 'y', weight: 1 }], id: 3 }).success).toBe(false);
  });
});

describe('accumulate', () => {
  const it0 = [makeTrajectory({ instance_id: 'a', sample_index: 0 }), makeTrajectory({ instance_id: 'b', sample_index: 1 })];
  const it1 = [makeTrajectory({ instance_id: 'a', sample_index: 0, iteration: 1 }), makeTrajectory({ instance_id: 'a', sample_index: 3, iteration: 1 })];
  const pool0 = poolFromRecords(it0, it0.map((t) => makeVerdict(t.instance_id, t.patch, 'resolved')), keyOfTrajectory);
  const pool1 = poolFromRecords(it1, it1.map((t) => makeVerdict(t.instance_id, t.patch, 'resolved')), keyOfTrajectory);
  const kept0 = selectTrajectories(pool0, { cap: 1, seed: 0 }).kept;
  const kept1 = selectTrajectories(pool1, { cap: 1, seed: 0 }).kept;

  it('merges the kept trajectories of iterations 0..k in (instance, iteration, sample) order', () => {
    const merged = accumulate([
      { iteration: 1, kept: kept1, trajectories: it1 },
      { iteration: 0, kept: kept0, trajectories: it0 },
    ]);
    expect(kept1).toHaveLength(1); // the cap applies per iteration
    expect(merged.map((t) => [t.instance_id, t.iteration, t.sample_index])).toEqual([
      ['a', 0, 0],
      [kept1[0]!.instance_id, 1, kept1[0]!.sample_index],
      ['b', 0, 1],
    ]);
    expect(merged[0]).toBe(it0[0]); // the records themselves, not copies
    expect(accumulate([{ iteration: 0, kept: kept0, trajectories: it0 }])).toEqual(it0);
  });

  it('throws on a repeated iteration, a kept entry without its trajectory, or an entry under the wrong iteration', () => {
    expect(() => accumulate([{ iteration: 0, kept: kept0, trajectories: it0 }, { iteration: 0, kept: [], trajectories: [] }])).toThrow(/given twice/);
    expect(() => accumulate([{ iteration: 0, kept: kept0, trajectories: it0.slice(1) }])).toThrow(/not among the trajectories/);
    expect(() => accumulate([{ iteration: 1, kept: kept0, trajectories: it0 }])).toThrow(/listed under iteration 1/);
  });
});

describe('examplesPerTrajectory feeds the cap comparison', () => {
  it('counts examples per kept trajectory', () => {
    const ts = [
      makeTrajectory({ instance_id: 'a', sample_index: 0, calls: ['SearchCode', { state: 'PlanToCode', invalid: 'x' }, 'PlanToCode'] }),
      makeTrajectory({ instance_id: 'a', sample_index: 1, calls: ['SearchCode', { state: 'PlanToCode', tokens: 99999 }] }),
    ];
    const pool = poolFromRecords(ts, ts.map((t) => makeVerdict(t.instance_id, t.patch, 'resolved')), keyOfTrajectory);
    const kept = selectTrajectories(pool, { cap: null, seed: 0 }).kept;
    const perTrajectory = examplesPerTrajectory(buildExamples(accumulate([{ iteration: 0, kept, trajectories: ts }]), CALL));
    expect([...perTrajectory.entries()]).toEqual([
      [trajectoryKey(ts[0]!), 2],
      [trajectoryKey(ts[1]!), 1],
    ]);
    const row = capComparisonRow(null, pool, kept, (e: PoolEntry) => perTrajectory.get(trajectoryKey(e)) ?? 0);
    expect(row.examples).toBe(3);
  });
});
