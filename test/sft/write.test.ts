import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Trajectory } from '../../src/agent/trajectory.js';
import { isInfrastructureError, poolFromRecords } from '../../src/select/pool.js';
import { selectTrajectories, type SelectOptionsInput } from '../../src/select/select.js';
import { accumulate, buildExamples, type ExampleOptionsInput } from '../../src/sft/examples.js';
import { buildManifest, DatasetManifestSchema, type DatasetManifest, type ManifestInput } from '../../src/sft/manifest.js';
import { DATASET_FILE, MANIFEST_FILE, renderJsonl, serializeLine, writeDataset } from '../../src/sft/write.js';
import type { Verdict } from '../../src/verify/verdict.js';
import { keyOfTrajectory, makeTrajectory, makeVerdict } from './records.js';

const RECIPE_HASH = createHash('sha256').update('recipe').digest('hex');
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-sft-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/**
 * Iteration 0: a0 (6 calls) and a1 (4 calls, one invalid) succeed; a2 unresolved; a3 resolved but
 * rejected; b0 succeeds with one call over the token limit, tools protocol; b1 is an
 * infrastructure error; c0 finished with an empty patch.
 * Iteration 1: a0 and c0 succeed.
 */
function records(): Array<{ iteration: number; trajectories: Trajectory[]; verdicts: Verdict[] }> {
  const it0 = [
    makeTrajectory({ instance_id: 'a', sample_index: 0 }),
    makeTrajectory({ instance_id: 'a', sample_index: 1, calls: ['SearchCode', { state: 'PlanToCode', invalid: 'missing field' }, 'PlanToCode', 'EditCode'] }),
    makeTrajectory({ instance_id: 'a', sample_index: 2 }),
    makeTrajectory({ instance_id: 'a', sample_index: 3, outcome: { status: 'rejected', reason: 'cannot' } }),
    makeTrajectory({ instance_id: 'b', sample_index: 0, protocol: 'tools', calls: ['SearchCode', { state: 'IdentifyCode', tokens: 20000 }, 'PlanToCode', 'EditCode', 'PlanToCode'] }),
    makeTrajectory({ instance_id: 'b', sample_index: 1, outcome: { status: 'error', fault: 'infrastructure', reason: 'endpoint down' } }),
    makeTrajectory({ instance_id: 'c', sample_index: 0, patch: '' }),
  ];
  const v0 = [
    makeVerdict('a', it0[0]!.patch, 'resolved'),
    makeVerdict('a', it0[1]!.patch, 'resolved'),
    makeVerdict('a', it0[2]!.patch, 'unresolved'),
    makeVerdict('a', it0[3]!.patch, 'resolved'),
    makeVerdict('b', it0[4]!.patch, 'resolved'),
    makeVerdict('c', '', 'empty_patch'),
  ];
  const it1 = [makeTrajectory({ instance_id: 'a', sample_index: 0, iteration: 1 }), makeTrajectory({ instance_id: 'c', sample_index: 0, iteration: 1 })];
  const v1 = it1.map((t) => makeVerdict(t.instance_id, t.patch, 'resolved'));
  return [
    { iteration: 0, trajectories: it0, verdicts: v0 },
    { iteration: 1, trajectories: it1, verdicts: v1 },
  ];
}

const SELECT: SelectOptionsInput = { cap: 1, order: 'fewest_calls', dedup: true, seed: 0, require_finished: true };
const SFT: ExampleOptionsInput = { unit: 'call', max_tokens: 10240, tokenizer: 'cl100k_base' };

/** What the loop will do for iteration `k` with accumulate on: select each iteration, merge, build examples. */
function datasetInput(k: number, options: { shuffle?: boolean; sft?: ExampleOptionsInput } = {}): ManifestInput {
  const perIteration = records()
    .filter((r) => r.iteration <= k)
    .map((r) => {
      const trajectories = options.shuffle ? [...r.trajectories].reverse() : r.trajectories;
      const verdicts = options.shuffle ? [...r.verdicts].reverse() : r.verdicts;
      const selection = selectTrajectories(poolFromRecords(trajectories, verdicts, keyOfTrajectory), SELECT);
      return { iteration: r.iteration, trajectories, selection, infrastructure_records: trajectories.filter(isInfrastructureError).length };
    });
  const ordered = options.shuffle ? [...perIteration].reverse() : perIteration;
  const kept = accumulate(ordered.map((p) => ({ iteration: p.iteration, kept: p.selection.kept, trajectories: p.trajectories })));
  return {
    recipe_hash: RECIPE_HASH,
    iteration: k,
    selections: ordered.map((p) => ({ iteration: p.iteration, selection: p.selection, infrastructure_records: p.infrastructure_records })),
    examples: buildExamples(options.shuffle ? [...kept].reverse() : kept, options.sft ?? SFT),
  };
}

/** An independent check of the OpenAI chat fine-tuning line shape (not our schema). */
function expectOpenAiChatLine(text: string) {
  const line = JSON.parse(text) as Record<string, unknown>;
  expect(Object.keys(line).every((k) => k === 'messages' || k === 'tools')).toBe(true);
  const messages = line.messages as Array<Record<string, unknown>>;
  expect(Array.isArray(messages) && messages.length >= 2).toBe(true);
  for (const m of messages) {
    expect(['system', 'user', 'assistant', 'tool']).toContain(m.role);
    expect(typeof m.content).toBe('string');
    if (m.role === 'assistant') {
      expect([0, 1]).toContain(m.weight);
      if (m.tool_calls !== undefined) {
        for (const call of m.tool_calls as Array<Record<string, any>>) {
          expect(call.type).toBe('function');
          expect(typeof call.id).toBe('string');
          expect(typeof call.function.name).toBe('string');
          expect(typeof call.function.arguments).toBe('string');
        }
      }
    } else {
      expect(m.weight).toBeUndefined();
      expect(m.tool_calls).toBeUndefined();
    }
    if (m.role === 'tool') expect(typeof m.tool_call_id).toBe('string');
    // Canonical key order inside messages.
    expect(Object.keys(m)).toEqual([...Object.keys(m)].sort());
  }
  expect(messages.at(-1)).toMatchObject({ role: 'assistant', weight: 1 });
  if (line.tools !== undefined) {
    for (const tool of line.tools as Array<Record<string, any>>) {
      expect(tool.type).toBe('function');
      expect(typeof tool.function.name).toBe('string');
      expect(tool.function.parameters.type).toBe('object');
    }
  }
  return line;
}

function expectCountsAddUp(m: DatasetManifest) {
  const c = m.counts;
  expect(c.trajectories_in).toBe(c.not_resolved + (c.tampering ?? 0) + c.not_finished + c.successes);
  expect(c.kept_after_dedup).toBe(c.successes - c.duplicate_patch);
  expect(c.kept_after_cap).toBe(c.kept_after_dedup - c.over_cap);
  expect(c.valid_calls).toBe(c.calls_in_kept - c.invalid_call);
  expect(c.examples).toBe(c.example_candidates - c.over_max_tokens);
  if (m.unit === 'call') expect(c.example_candidates).toBe(c.valid_calls);
  expect(c.examples).toBe(m.file.lines);
  expect(Object.values(m.verdicts).reduce((a, b) => a + b, 0)).toBe(c.trajectories_in);
  expect(m.dropped).toEqual({
    not_resolved: c.not_resolved,
    tampering: c.tampering,
    not_finished: c.not_finished,
    duplicate_patch: c.duplicate_patch,
    over_cap: c.over_cap,
    invalid_call: c.invalid_call,
    over_max_tokens: c.over_max_tokens,
  });
  for (const key of ['in', 'not_resolved', 'not_finished', 'successes', 'over_cap', 'kept'] as const) {
    expect(m.per_iteration.reduce((t, p) => t + p[key], 0)).toBe(
      { in: c.trajectories_in, not_resolved: c.not_resolved, not_finished: c.not_finished, successes: c.successes, over_cap: c.over_cap, kept: c.kept_after_cap }[key],
    );
  }
}

describe('writeDataset', () => {
  it('writes train.jsonl of OpenAI chat lines and a manifest whose counts add up', () => {
    const dir = path.join(tempDir(), 'iter-1', 'datasets', 'cap-1'); // created on demand
    const manifest = writeDataset(dir, datasetInput(1));
    const bytes = readFileSync(path.join(dir, DATASET_FILE));
    const lines = bytes.toString('utf8').split('\n');
    expect(lines.pop()).toBe(''); // newline-terminated
    lines.forEach(expectOpenAiChatLine);

    expect(DatasetManifestSchema.parse(JSON.parse(readFileSync(path.join(dir, MANIFEST_FILE), 'utf8')))).toEqual(manifest);
    expect(manifest.file).toEqual({ name: 'train.jsonl', sha256: sha256(bytes), bytes: bytes.length, lines: lines.length });
    expect(manifest).toMatchObject({
      recipe_hash: RECIPE_HASH,
      iteration: 1,
      iterations_included: [0, 1],
      cap: 1,
      order: 'fewest_calls',
      dedup: true,
      require_finished: true,
      allow_tampering: false,
      seed: 0,
      unit: 'call',
      max_tokens: 10240,
      tokenizer: 'cl100k_base',
    });
    expect(manifest).not.toHaveProperty('created_at');
    // Iteration 0 keeps a1 (4 calls beat a0's 6) and b0; iteration 1 keeps a0 and c0.
    expect(manifest.counts).toEqual({
      infrastructure_records: 1,
      trajectories_in: 8,
      resolved: 6,
      finished: 7,
      resolved_finished: 5,
      resolved_unfinished: 1,
      not_resolved: 2,
      tampered: 0,
      tampering: 0,
      not_finished: 1,
      successes: 5,
      duplicate_patch: 0,
      kept_after_dedup: 5,
      over_cap: 1,
      kept_after_cap: 4,
      calls_in_kept: 4 + 5 + 6 + 6,
      invalid_call: 1,
      valid_calls: 20,
      example_candidates: 20,
      over_max_tokens: 1,
      examples: 19,
    });
    expect(manifest.instances).toEqual({ in_pool: 3, with_success: 3, kept: 3, with_examples: 3 });
    expect(manifest.llm_calls.mean_per_kept_trajectory).toBe(21 / 4);
    expect(manifest.tokens.max_per_example).toBe(105);
    expect(manifest.per_iteration.map((p) => [p.iteration, p.kept, p.infrastructure_records])).toEqual([
      [0, 2, 1],
      [1, 2, 0],
    ]);
    expectCountsAddUp(manifest);

    // Lines in (instance, iteration, sample, call) order: a (it 0 s1 calls 0,2,3; it 1 s0 calls 0..5), b, c.
    const firstUsers = lines.map((l) => (JSON.parse(l).messages[1].content as string));
    expect(firstUsers.slice(0, 4)).toEqual([
      'Issue of a, sample 1, call 0',
      'Issue of a, sample 1, call 2',
      'Issue of a, sample 1, call 3',
      'Issue of a, sample 0, call 0',
    ]);
    // b0 used the tools protocol: its structured calls carry a tool, its EditCode call none.
    const b = lines.map((l) => JSON.parse(l)).filter((l) => String(l.messages[1].content).startsWith('Issue of b'));
    expect(b.map((l) => l.tools?.[0]?.function.name ?? null)).toEqual(['Search', 'ApplyChange', null, 'ApplyChange']);
  });

  it('gives byte-identical files when run twice, into another folder, or from shuffled input', () => {
    const first = tempDir();
    const again = tempDir();
    writeDataset(first, datasetInput(1));
    const before = [readFileSync(path.join(first, DATASET_FILE)), readFileSync(path.join(first, MANIFEST_FILE))];
    writeDataset(first, datasetInput(1)); // over itself: a resumed run redoing the step
    writeDataset(again, datasetInput(1, { shuffle: true }));
    for (const dir of [first, again]) {
      expect(readFileSync(path.join(dir, DATASET_FILE)).equals(before[0]!)).toBe(true);
      expect(readFileSync(path.join(dir, MANIFEST_FILE)).equals(before[1]!)).toBe(true);
    }
  });

  it('changes bytes when the data or settings change (the check above can fail)', () => {
    const a = tempDir();
    const b = tempDir();
    writeDataset(a, datasetInput(1));
    writeDataset(b, datasetInput(0));
    expect(readFileSync(path.join(a, DATASET_FILE)).equals(readFileSync(path.join(b, DATASET_FILE)))).toBe(false);
    const m = writeDataset(tempDir(), datasetInput(0, { sft: { ...SFT, unit: 'trajectory' } }));
    expect(m.unit).toBe('trajectory');
    expect(m.counts.example_candidates).toBe(m.counts.kept_after_cap);
    expectCountsAddUp(m);
  });

  it('writes an empty train.jsonl when nothing survives, with the counts that say why', () => {
    const m = writeDataset(tempDir(), datasetInput(0, { sft: { ...SFT, max_tokens: 50 } }));
    expect(m.file).toEqual({ name: 'train.jsonl', sha256: sha256(''), bytes: 0, lines: 0 });
    expect(m.counts.examples).toBe(0);
    expect(m.counts.over_max_tokens).toBe(m.counts.valid_calls);
    expect(m.tokens).toMatchObject({ total: 0, mean_per_example: null, max_per_example: null, trained_total: 0 });
    expect(m.tokens.length_distribution.every((b) => b.examples === 0)).toBe(true);
    expectCountsAddUp(m);
  });
});

describe('serializeLine and renderJsonl', () => {
  it('sorts message keys but keeps the tool spec in the order the agent sends it', () => {
    const line = {
      messages: [
        { role: 'user' as const, content: 'u' },
        { role: 'assistant' as const, content: '', tool_calls: [{ id: 'c', type: 'function' as const, function: { name: 'Search', arguments: '{}' } }], weight: 1 as const },
      ],
      tools: [{ type: 'function' as const, function: { name: 'Search', description: 'd', parameters: { type: 'object', properties: { z: {}, a: {} } } } }],
    };
    expect(serializeLine(line)).toBe(
      '{"messages":[{"content":"u","role":"user"},{"content":"","role":"assistant","tool_calls":[{"function":{"arguments":"{}","name":"Search"},"id":"c","type":"function"}],"weight":1}],' +
        '"tools":[{"type":"function","function":{"name":"Search","description":"d","parameters":{"type":"object","properties":{"z":{},"a":{}}}}}]}',
    );
    expect(renderJsonl([])).toBe('');
  });
});

describe('buildManifest checks its input', () => {
  const file = { name: 'train.jsonl', sha256: sha256(''), bytes: 0, lines: 0 };

  it('refuses selections made with different options, and examples that do not match', () => {
    const input = datasetInput(1);
    const other = { ...input.selections[1]!, selection: { ...input.selections[1]!.selection, options: { ...input.selections[1]!.selection.options, cap: 2 } } };
    expect(() => buildManifest({ ...input, selections: [input.selections[0]!, other] }, file)).toThrow(/different options/);
    expect(() => buildManifest({ ...input, selections: [input.selections[0]!] }, file)).toThrow(/not among the included/);
    expect(() => buildManifest({ ...input, iteration: 0, selections: [input.selections[0]!] }, file)).toThrow(/trajectories/);
    expect(() => buildManifest(input, file)).toThrow(/lines/);
  });
});
