import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PoolEntrySchema, type PoolEntry } from '../../src/select/pool.js';
import { selectTrajectories, tieHash, type SelectionResult } from '../../src/select/select.js';
import type { Outcome } from '../../src/verify/verdict.js';

const hash = (text: string) => createHash('sha256').update(text).digest('hex');
const P = hash('patch P');
const Q = hash('patch Q');

function entry(
  instance: string,
  sample: number,
  llmCalls: number,
  tokens: number,
  extra: { patch?: string; status?: PoolEntry['outcome_status']; verdict?: Outcome | null; tampered?: true } = {},
): PoolEntry {
  return PoolEntrySchema.parse({
    iteration: 0,
    instance_id: instance,
    sample_index: sample,
    llm_calls: llmCalls,
    tokens_total: tokens,
    max_example_tokens: Math.min(tokens, 50),
    patch_hash: extra.patch ?? hash(`${instance}-${sample}`),
    outcome_status: extra.status ?? 'finished',
    verdict: extra.verdict === undefined ? 'resolved' : extra.verdict,
    ...(extra.tampered ? { tampered: true } : {}),
  });
}

/**
 * a: successes a0..a3 ranked a1 (3 calls, 300 tokens) < a2 (3, 400) < a3 (4, 100) < a0 (5, 500)
 *    (the seeded hash alone would put a2 before a1: tokens decide first),
 *    plus a4 unresolved, a5 resolved but rejected, a6 a model error with no verdict.
 * b: b3 (2 calls) first; b0, b1, b2 tie on calls and tokens, so the seeded hash ranks them.
 * c: no success (unresolved, empty patch).
 * d: d1 (2 calls, patch P) < d2 (3, Q) < d0 (6, P): d0 duplicates d1's patch.
 */
const POOL: PoolEntry[] = [
  entry('a', 0, 5, 500),
  entry('a', 1, 3, 300),
  entry('a', 2, 3, 400),
  entry('a', 3, 4, 100),
  entry('a', 4, 2, 50, { verdict: 'unresolved' }),
  entry('a', 5, 2, 50, { status: 'rejected' }),
  entry('a', 6, 1, 10, { status: 'error', verdict: null }),
  entry('b', 0, 4, 200),
  entry('b', 1, 4, 200),
  entry('b', 2, 4, 200),
  entry('b', 3, 2, 999),
  entry('c', 0, 3, 100, { verdict: 'unresolved' }),
  entry('c', 1, 3, 100, { verdict: 'empty_patch' }),
  entry('d', 0, 6, 100, { patch: P }),
  entry('d', 1, 2, 100, { patch: P }),
  entry('d', 2, 3, 100, { patch: Q }),
];

const ids = (entries: PoolEntry[]) => entries.map((e) => `${e.instance_id}${e.sample_index}`);
const droppedAs = (result: SelectionResult, reason: string) => ids(result.dropped.filter((d) => d.reason === reason).map((d) => d.entry));

/** The arithmetic every selection's counts obey. */
function expectCountsAddUp(result: SelectionResult, pool: PoolEntry[]) {
  const c = result.counts;
  expect(c.in).toBe(pool.length);
  expect(c.not_resolved + (c.tampering ?? 0) + c.not_finished + c.successes).toBe(c.in);
  expect(c.after_dedup).toBe(c.successes - c.duplicate_patch);
  expect(c.kept).toBe(c.after_dedup - c.over_cap);
  expect(result.kept.length + result.dropped.length).toBe(c.in);
  expect(Object.values(c.verdicts).reduce((a, b) => a + b, 0)).toBe(c.in);
  expect(c.resolved).toBe(c.verdicts.resolved);
}

describe('selectTrajectories: per-instance cap, fewest calls first', () => {
  it('cap 1 keeps the best success of each instance (a1: fewer tokens than a2, which the hash alone would pick)', () => {
    const r = selectTrajectories(POOL, { cap: 1, order: 'fewest_calls', dedup: false, seed: 0, require_finished: true });
    expect(ids(r.kept)).toEqual(['a1', 'b3', 'd1']);
    expect(droppedAs(r, 'over_cap')).toEqual(['a0', 'a2', 'a3', 'b0', 'b1', 'b2', 'd0', 'd2']);
    expect(droppedAs(r, 'not_resolved')).toEqual(['a4', 'a6', 'c0', 'c1']);
    expect(droppedAs(r, 'not_finished')).toEqual(['a5']);
    expect(droppedAs(r, 'duplicate_patch')).toEqual([]);
    expect(r.counts).toEqual({
      in: 16,
      verdicts: { resolved: 12, unresolved: 2, empty_patch: 1, apply_failed: 0, timeout: 0, error: 0, invalid_task: 0, missing: 1 },
      resolved: 12,
      finished: 14,
      not_resolved: 4,
      tampered: 0,
      tampering: 0,
      resolved_finished: 11,
      resolved_unfinished: 1,
      not_finished: 1,
      successes: 11,
      duplicate_patch: 0,
      after_dedup: 11,
      over_cap: 8,
      kept: 3,
      instances_in: 4,
      instances_with_success: 3,
      instances_kept: 3,
    });
    expectCountsAddUp(r, POOL);
  });

  it('cap 2: fewer calls first, equal calls by fewer tokens, equal tokens by the seeded hash', () => {
    const r = selectTrajectories(POOL, { cap: 2, order: 'fewest_calls', dedup: false, seed: 0, require_finished: true });
    // a: a1 and a2 tie on calls, a1 has fewer tokens; a3's 100 tokens do not beat a2's fewer calls.
    // b: b3 has the fewest calls; b0/b1/b2 tie on both, and seed 0's hash ranks b1 first.
    expect(ids(r.kept)).toEqual(['a1', 'a2', 'b1', 'b3', 'd1', 'd2']);
    expect(droppedAs(r, 'over_cap')).toEqual(['a0', 'a3', 'b0', 'b2', 'd0']);
    expect(r.counts.kept).toBe(6);
    expect(r.counts.over_cap).toBe(5);
    expectCountsAddUp(r, POOL);
  });

  it('cap none keeps every success', () => {
    const r = selectTrajectories(POOL, { cap: null, order: 'fewest_calls', dedup: false, seed: 0, require_finished: true });
    expect(ids(r.kept)).toEqual(['a0', 'a1', 'a2', 'a3', 'b0', 'b1', 'b2', 'b3', 'd0', 'd1', 'd2']);
    expect(r.counts.over_cap).toBe(0);
    expect(r.counts.kept).toBe(11);
    expectCountsAddUp(r, POOL);
  });

  it('the hash tie-break is stable across calls and shuffled input, and another seed breaks ties differently', () => {
    const pick = (seed: number, pool = POOL) =>
      ids(selectTrajectories(pool, { cap: 2, order: 'fewest_calls', dedup: false, seed, require_finished: true }).kept).filter((id) => id.startsWith('b'));
    expect(pick(0)).toEqual(['b1', 'b3']);
    expect(pick(0)).toEqual(['b1', 'b3']);
    expect(pick(0, [...POOL].reverse())).toEqual(['b1', 'b3']);
    expect(pick(7)).toEqual(['b2', 'b3']);
    expect(pick(2)).toEqual(['b0', 'b3']);
    // Platform-independent: sha256 of the canonical JSON of [seed, instance, sample].
    expect(tieHash(0, 'b', 1)).toBe('89966770b530ba6dc54319ba0884683bb062b42717d58995ec0da42d0646dd9d');
    expect(tieHash(0, 'b', 1)).toBe(hash(JSON.stringify([0, 'b', 1])));
  });

  it('outputs kept and dropped entries in (instance, sample) order whatever the pool order', () => {
    const shuffled = [POOL[9]!, POOL[0]!, POOL[15]!, POOL[4]!, ...POOL.slice(10, 15), ...POOL.slice(5, 9), POOL[1]!, POOL[2]!, POOL[3]!];
    expect(shuffled).toHaveLength(POOL.length);
    const a = selectTrajectories(POOL, { cap: 2, order: 'fewest_calls', dedup: true, seed: 3, require_finished: true });
    const b = selectTrajectories(shuffled, { cap: 2, order: 'fewest_calls', dedup: true, seed: 3, require_finished: true });
    expect(b).toEqual(a);
    expect(ids(a.dropped.map((d) => d.entry))).toEqual([...ids(a.dropped.map((d) => d.entry))].sort());
  });
});

describe('selectTrajectories: dedup', () => {
  it('keeps one success per (instance, patch): the first in the preference order', () => {
    const r = selectTrajectories(POOL, { cap: null, order: 'fewest_calls', dedup: true, seed: 0, require_finished: true });
    expect(droppedAs(r, 'duplicate_patch')).toEqual(['d0']); // d1 has P with fewer calls
    expect(ids(r.kept).filter((id) => id.startsWith('d'))).toEqual(['d1', 'd2']);
    expect(r.counts.duplicate_patch).toBe(1);
    expect(r.counts.after_dedup).toBe(10);
    expectCountsAddUp(r, POOL);
  });

  it('dedup runs before the cap, so a duplicate never takes a cap slot', () => {
    const r = selectTrajectories(POOL, { cap: 1, order: 'fewest_calls', dedup: true, seed: 0, require_finished: true });
    expect(ids(r.kept)).toEqual(['a1', 'b3', 'd1']);
    expect(droppedAs(r, 'duplicate_patch')).toEqual(['d0']);
    expect(droppedAs(r, 'over_cap')).toEqual(['a0', 'a2', 'a3', 'b0', 'b1', 'b2', 'd2']);
    expectCountsAddUp(r, POOL);
  });

  it('the same patch on two instances is not a duplicate', () => {
    const pool = [entry('x', 0, 2, 10, { patch: P }), entry('y', 0, 2, 10, { patch: P })];
    const r = selectTrajectories(pool, { cap: null, order: 'fewest_calls', dedup: true, seed: 0, require_finished: true });
    expect(ids(r.kept)).toEqual(['x0', 'y0']);
  });
});

describe('selectTrajectories: not_finished vs not_resolved', () => {
  it('an unresolved verdict is not_resolved whatever the outcome; a resolved one that did not finish is not_finished', () => {
    const pool = [
      entry('e', 0, 2, 10, { status: 'finished', verdict: 'unresolved' }),
      entry('e', 1, 2, 10, { status: 'rejected', verdict: 'unresolved' }),
      entry('e', 2, 2, 10, { status: 'rejected', verdict: 'resolved' }),
      entry('e', 3, 2, 10, { status: 'error', verdict: 'resolved' }),
      entry('e', 4, 2, 10, { status: 'finished', verdict: null }),
      entry('e', 5, 2, 10, { status: 'finished', verdict: 'timeout' }),
      entry('e', 6, 2, 10, { status: 'finished', verdict: 'resolved' }),
    ];
    const r = selectTrajectories(pool, { cap: null, order: 'fewest_calls', dedup: false, seed: 0, require_finished: true });
    expect(droppedAs(r, 'not_resolved')).toEqual(['e0', 'e1', 'e4', 'e5']);
    expect(droppedAs(r, 'not_finished')).toEqual(['e2', 'e3']);
    expect(ids(r.kept)).toEqual(['e6']);
    expect(r.counts).toMatchObject({ resolved: 3, finished: 4, successes: 1, not_resolved: 4, not_finished: 2, resolved_finished: 1, resolved_unfinished: 2 });
    expectCountsAddUp(r, pool);
  });

  it('by default (SWE-Gym) a success is any resolved run, rejected and errored ones included; the counts tell both apart', () => {
    const pool = [
      entry('e', 0, 2, 10, { status: 'finished', verdict: 'unresolved' }),
      entry('e', 2, 2, 10, { status: 'rejected', verdict: 'resolved' }),
      entry('e', 3, 2, 10, { status: 'error', verdict: 'resolved' }),
      entry('e', 6, 2, 10, { status: 'finished', verdict: 'resolved' }),
    ];
    const r = selectTrajectories(pool, { cap: null, order: 'fewest_calls', dedup: false, seed: 0 });
    expect(r.options.require_finished).toBe(false);
    expect(droppedAs(r, 'not_resolved')).toEqual(['e0']);
    expect(droppedAs(r, 'not_finished')).toEqual([]);
    expect(ids(r.kept)).toEqual(['e2', 'e3', 'e6']);
    expect(r.counts).toMatchObject({ resolved: 3, successes: 3, not_finished: 0, resolved_finished: 1, resolved_unfinished: 2 });
    expectCountsAddUp(r, pool);
  });
});

describe('selectTrajectories: order random', () => {
  it('ranks by the seeded hash alone, reproducibly per seed', () => {
    const run = (seed: number) => ids(selectTrajectories(POOL, { cap: 1, order: 'random', dedup: false, seed, require_finished: true }).kept);
    // Calls and tokens are ignored: a0..a3 are ranked by hash (seed 0: a2, a0, a1, a3).
    expect(run(0)).toEqual(['a2', 'b3', 'd0']);
    expect(run(0)).toEqual(run(0));
    expect(run(7)).toEqual(['a1', 'b2', 'd1']);
    expect(run(7)).not.toEqual(run(0));
  });

  it('with dedup the survivor of a patch is the first in the hash order', () => {
    // seed 0 ranks d0, d1, d2: d0 keeps P and d1 is the duplicate (fewest_calls would keep d1).
    const r = selectTrajectories(POOL, { cap: null, order: 'random', dedup: true, seed: 0, require_finished: true });
    expect(droppedAs(r, 'duplicate_patch')).toEqual(['d1']);
    expectCountsAddUp(r, POOL);
  });
});

describe('selectTrajectories: input checks', () => {
  it('rejects a cap below 1 and malformed entries', () => {
    expect(() => selectTrajectories(POOL, { cap: 0, order: 'fewest_calls', dedup: false, seed: 0, require_finished: true })).toThrow();
    expect(() => selectTrajectories(POOL, { cap: 1.5, order: 'fewest_calls', dedup: false, seed: 0, require_finished: true })).toThrow();
    expect(() => selectTrajectories([{ ...POOL[0]!, patch_hash: 'nope' }], { cap: 1, order: 'fewest_calls', dedup: false, seed: 0, require_finished: true })).toThrow();
  });

  it('an empty pool gives an empty selection', () => {
    const r = selectTrajectories([], { cap: 2, seed: 0 });
    expect(r.kept).toEqual([]);
    expect(r.counts).toMatchObject({ in: 0, kept: 0, instances_in: 0 });
    expect(r.options).toEqual({ cap: 2, order: 'fewest_calls', dedup: false, seed: 0, require_finished: false, allow_tampering: false });
  });
});

describe('selectTrajectories: tampering (src/verify/tampering.ts)', () => {
  // t0 and t1 are resolved with tampering, t2 is an honest success, t3 tampered and unresolved.
  const pool = [
    entry('t', 0, 1, 10, { tampered: true }),
    entry('t', 1, 2, 10, { tampered: true, status: 'rejected' }),
    entry('t', 2, 9, 90),
    entry('t', 3, 1, 10, { tampered: true, verdict: 'unresolved' }),
  ];

  it('drops a resolved run whose verdict carries tampering by default, ahead of cheaper ones, and counts it', () => {
    const r = selectTrajectories(pool, { cap: 1, seed: 0 });
    expect(ids(r.kept)).toEqual(['t2']);
    expect(droppedAs(r, 'tampering')).toEqual(['t0', 't1']);
    expect(droppedAs(r, 'not_resolved')).toEqual(['t3']);
    expect(r.counts).toMatchObject({ resolved: 3, tampered: 2, tampering: 2, successes: 1, kept: 1 });
    expectCountsAddUp(r, pool);
  });

  it('keeps it with allow_tampering, still counted as tampered', () => {
    const r = selectTrajectories(pool, { cap: 1, seed: 0, allow_tampering: true });
    expect(ids(r.kept)).toEqual(['t0']);
    expect(r.counts).toMatchObject({ tampered: 2, tampering: 0, successes: 3 });
    expectCountsAddUp(r, pool);
  });
});
