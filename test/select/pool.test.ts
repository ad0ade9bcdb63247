import { describe, expect, it } from 'vitest';
import { isInfrastructureError, isSuccess, successTest, OutcomeStatusSchema, poolFromRecords, PoolEntrySchema, trajectoryKey } from '../../src/select/pool.js';
import { normalizePatch, patchHash } from '../../src/verify/patch.js';
import { keyOfTrajectory, makeTrajectory, makeVerdict, patchFor } from '../sft/records.js';

describe('poolFromRecords', () => {
  it('joins each trajectory to the verdict of its normalised patch and records what selection needs', () => {
    const patch = patchFor('fix');
    // Prose before the diff and CRLF line ends: the same normalised patch, so the same verdict.
    const messy = `I fixed it:\r\n${patch.replace(/\n/g, '\r\n')}\r\n\r\n`;
    const t = makeTrajectory({ instance_id: 'x__y-1', sample_index: 3, patch: messy, calls: [{ state: 'SearchCode', tokens: 120 }, { state: 'PlanToCode', tokens: 300 }] });
    const pool = poolFromRecords([t], [makeVerdict('x__y-1', patch, 'resolved')], keyOfTrajectory);
    expect(pool).toEqual([
      {
        iteration: 0,
        instance_id: 'x__y-1',
        sample_index: 3,
        llm_calls: 2,
        tokens_total: 420,
        max_example_tokens: 300,
        patch_hash: patchHash(normalizePatch(patch)),
        outcome_status: 'finished',
        verdict: 'resolved',
      },
    ]);
    expect(PoolEntrySchema.parse(pool[0])).toEqual(pool[0]);
  });

  it('leaves infrastructure errors out (they are not data) but keeps the model\'s own errors', () => {
    const infra = makeTrajectory({ instance_id: 'a', sample_index: 0, outcome: { status: 'error', fault: 'infrastructure', reason: 'endpoint down' } });
    const model = makeTrajectory({ instance_id: 'a', sample_index: 1, outcome: { status: 'error', fault: 'model', reason: 'retries exhausted' } });
    const rejected = makeTrajectory({ instance_id: 'a', sample_index: 2, outcome: { status: 'rejected', reason: 'cannot fix' } });
    expect(isInfrastructureError(infra)).toBe(true);
    expect(isInfrastructureError(model)).toBe(false);
    const pool = poolFromRecords([infra, model, rejected], [], keyOfTrajectory);
    expect(pool.map((e) => [e.sample_index, e.outcome_status])).toEqual([
      [1, 'error'],
      [2, 'rejected'],
    ]);
  });

  it('a retried infrastructure error and its real record make one entry', () => {
    const infra = makeTrajectory({ instance_id: 'a', sample_index: 0, outcome: { status: 'error', fault: 'infrastructure', reason: 'endpoint down' } });
    const real = makeTrajectory({ instance_id: 'a', sample_index: 0 });
    expect(poolFromRecords([infra, real], [], keyOfTrajectory)).toHaveLength(1);
  });

  it('prefers a final verdict over a retried error verdict, says error when only that exists, null when none', () => {
    const t0 = makeTrajectory({ instance_id: 'a', sample_index: 0 });
    const t1 = makeTrajectory({ instance_id: 'a', sample_index: 1 });
    const t2 = makeTrajectory({ instance_id: 'a', sample_index: 2 });
    const verdicts = [
      makeVerdict('a', t0.patch, 'error'),
      makeVerdict('a', t0.patch, 'resolved'),
      makeVerdict('a', t0.patch, 'unresolved'), // a later final verdict does not replace the first final one
      makeVerdict('a', t1.patch, 'error'),
    ];
    const pool = poolFromRecords([t0, t1, t2], verdicts, keyOfTrajectory);
    expect(pool.map((e) => e.verdict)).toEqual(['resolved', 'error', null]);
  });

  it('a verdict of another instance with the same patch does not match', () => {
    const t = makeTrajectory({ instance_id: 'a', patch: patchFor('same') });
    const pool = poolFromRecords([t], [makeVerdict('b', patchFor('same'), 'resolved')], keyOfTrajectory);
    expect(pool[0]!.verdict).toBeNull();
  });

  it('throws on a sample recorded twice instead of counting it twice', () => {
    const t = makeTrajectory({ instance_id: 'a', sample_index: 4 });
    expect(() => poolFromRecords([t, t], [], keyOfTrajectory)).toThrow(/recorded twice/);
  });

  it('orders entries by instance, iteration, sample index whatever the input order', () => {
    const ts = [
      makeTrajectory({ instance_id: 'b', sample_index: 0 }),
      makeTrajectory({ instance_id: 'a', sample_index: 10 }),
      makeTrajectory({ instance_id: 'a', sample_index: 2 }),
      makeTrajectory({ instance_id: 'a', sample_index: 2, iteration: 1 }),
    ];
    const pool = poolFromRecords(ts, [], keyOfTrajectory);
    expect(pool.map((e) => trajectoryKey(e))).toEqual([
      trajectoryKey({ iteration: 0, instance_id: 'a', sample_index: 2 }),
      trajectoryKey({ iteration: 0, instance_id: 'a', sample_index: 10 }),
      trajectoryKey({ iteration: 1, instance_id: 'a', sample_index: 2 }),
      trajectoryKey({ iteration: 0, instance_id: 'b', sample_index: 0 }),
    ]);
  });
});

describe('isSuccess', () => {
  it('is a resolved verdict whatever the outcome (SWE-Gym); with require_finished the outcome must be finished too', () => {
    expect(OutcomeStatusSchema.options).toEqual(['finished', 'rejected', 'error']);
    expect(isSuccess({ outcome_status: 'finished', verdict: 'resolved' })).toBe(true);
    expect(isSuccess({ outcome_status: 'rejected', verdict: 'resolved' })).toBe(true);
    expect(isSuccess({ outcome_status: 'error', verdict: 'resolved' })).toBe(true);
    const strict = successTest(true);
    expect(strict({ outcome_status: 'finished', verdict: 'resolved' })).toBe(true);
    expect(strict({ outcome_status: 'rejected', verdict: 'resolved' })).toBe(false);
    expect(strict({ outcome_status: 'error', verdict: 'resolved' })).toBe(false);
    expect(strict({ outcome_status: 'finished', verdict: 'unresolved' })).toBe(false);
    expect(isSuccess({ outcome_status: 'finished', verdict: 'unresolved' })).toBe(false);
    expect(isSuccess({ outcome_status: 'finished', verdict: null })).toBe(false);
    expect(isSuccess({ outcome_status: 'finished', verdict: 'error' })).toBe(false);
  });
});
