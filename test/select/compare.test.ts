import { describe, expect, it } from 'vitest';
import { capComparisonRow, CapComparisonRowSchema, easiestInstances } from '../../src/select/compare.js';
import { PoolEntrySchema, type PoolEntry } from '../../src/select/pool.js';
import { selectTrajectories } from '../../src/select/select.js';
import { patchHash } from '../../src/verify/patch.js';

function entry(instance: string, sample: number, llmCalls: number, tokens: number, verdict: 'resolved' | 'unresolved' = 'resolved'): PoolEntry {
  return PoolEntrySchema.parse({
    iteration: 0,
    instance_id: instance,
    sample_index: sample,
    llm_calls: llmCalls,
    tokens_total: tokens,
    max_example_tokens: Math.floor(tokens / 2),
    patch_hash: patchHash(`${instance}-${sample}`),
    outcome_status: 'finished',
    verdict,
  });
}

/** e1 is easy (5 successes); e2, e3 have 3; e4, e5 one; f none. */
const POOL: PoolEntry[] = [
  ...[2, 3, 4, 5, 6].map((calls, i) => entry('e1', i, calls, 100 * calls)),
  entry('e2', 0, 3, 300),
  entry('e2', 1, 3, 310),
  entry('e2', 2, 4, 400),
  entry('e3', 0, 2, 200),
  entry('e3', 1, 5, 500),
  entry('e3', 2, 5, 500),
  entry('e4', 0, 4, 400),
  entry('e5', 0, 6, 600),
  entry('f', 0, 2, 200, 'unresolved'),
];

/** One example per LLM call (the call unit with nothing dropped). */
const examplesOf = (e: PoolEntry) => e.llm_calls;

function row(cap: number | null) {
  const kept = selectTrajectories(POOL, { cap, order: 'fewest_calls', dedup: false, seed: 0 }).kept;
  return capComparisonRow(cap, POOL, kept, examplesOf);
}

describe('capComparisonRow', () => {
  it('cap 1', () => {
    expect(row(1)).toEqual({
      cap: 1,
      trajectories: 5,
      examples: 2 + 3 + 2 + 4 + 6,
      instances_covered: 5,
      instances_with_success: 5,
      mean_llm_calls: 17 / 5,
      mean_tokens: (200 + 300 + 200 + 400 + 600) / 5,
      max_tokens: 600,
      max_example_tokens: 300,
      easiest_instances: 1,
      easiest_share: 2 / 17,
    });
  });

  it('cap 2', () => {
    const r = row(2);
    expect(r).toMatchObject({ cap: 2, trajectories: 8, examples: 28, instances_covered: 5, max_tokens: 600, easiest_instances: 1 });
    expect(r.mean_llm_calls).toBeCloseTo(28 / 8, 12);
    expect(r.mean_tokens).toBeCloseTo((200 + 300 + 300 + 310 + 200 + 500 + 400 + 600) / 8, 12);
    expect(r.easiest_share).toBeCloseTo(5 / 28, 12);
  });

  it('no cap: the easy instance\'s share of the data grows', () => {
    const r = row(null);
    expect(r).toMatchObject({ cap: null, trajectories: 13, examples: 52, instances_covered: 5 });
    expect(r.easiest_share).toBeCloseTo(20 / 52, 12);
    expect(r.easiest_share!).toBeGreaterThan(row(2).easiest_share!);
    expect(row(2).easiest_share!).toBeGreaterThan(row(1).easiest_share!);
    expect(CapComparisonRowSchema.parse(r)).toEqual(r);
  });

  it('an empty selection gives nulls, not NaN', () => {
    const r = capComparisonRow(1, POOL, [], examplesOf);
    expect(r).toMatchObject({ trajectories: 0, examples: 0, mean_llm_calls: null, mean_tokens: null, max_tokens: null, easiest_share: null });
  });
});

describe('easiestInstances', () => {
  it('takes ceil(20%) of the instances with a success, most successes first', () => {
    expect(easiestInstances(POOL)).toEqual(['e1']);
    // 6 instances with a success → ceil(1.2) = 2: e1, then e2 and e3 tie at 3 and e2 comes first.
    expect(easiestInstances([...POOL, entry('g', 0, 1, 10)])).toEqual(['e1', 'e2']);
  });

  it('breaks ties by instance id, whatever the pool order', () => {
    const pool = [entry('q', 0, 1, 1), entry('q', 1, 1, 1), entry('p', 0, 1, 1), entry('p', 1, 1, 1), entry('r', 0, 1, 1)];
    expect(easiestInstances(pool)).toEqual(['p']);
    expect(easiestInstances([...pool].reverse())).toEqual(['p']);
  });
});
