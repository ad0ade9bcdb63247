import { describe, expect, it } from 'vitest';
import { PhaseProgress } from '../../src/loop/progress.js';
import { makeTrajectory, makeVerdict, patchFor } from '../sft/records.js';

function sink(isTTY = false) {
  const lines: string[] = [];
  return { out: { isTTY, write: (s: string) => (lines.push(s), true) }, lines };
}

describe('phase progress: one unit per figure', () => {
  it('counts resolved trajectories, not patches; patches verified of queued; recorded work apart from new; the rate over new work only', () => {
    let now = 1_000_000;
    const { out, lines } = sink();
    const p = new PhaseProgress('iter-0/sample', 12, out, 60_000, () => now);
    // Recorded before the resume: a#0 and a#1 share a patch (resolved), b#0 unresolved, b#1 not verified yet.
    const shared = patchFor('shared');
    const recorded = [
      makeTrajectory({ instance_id: 'a', sample_index: 0, patch: shared }),
      makeTrajectory({ instance_id: 'a', sample_index: 1, patch: shared }),
      makeTrajectory({ instance_id: 'b', sample_index: 0 }),
      makeTrajectory({ instance_id: 'b', sample_index: 1 }),
      makeTrajectory({ instance_id: 'c', sample_index: 0, outcome: { status: 'error', reason: 'endpoint down', fault: 'infrastructure' } }),
    ];
    const verdicts = [makeVerdict('a', shared, 'resolved'), makeVerdict('b', recorded[2]!.patch, 'unresolved'), makeVerdict('b', recorded[3]!.patch, 'error')];
    p.recorded(recorded, verdicts, () => ({ llmCallsInFlight: 3, containersRunning: 2 }));
    expect(p.counts()).toMatchObject({ recordedBefore: 4, recordedNew: 0, resolvedTrajectories: 2, patchesVerified: 2, patchesQueued: 3, rate: null, etaSeconds: null });

    // After the resume: two new trajectories in 4 s, one of them sharing the resolved patch.
    now += 4000;
    p.trajectory(makeTrajectory({ instance_id: 'a', sample_index: 2, patch: shared }));
    p.trajectory(makeTrajectory({ instance_id: 'c', sample_index: 0 }));
    p.verdict(makeVerdict('b', recorded[3]!.patch, 'resolved'));
    const c = p.counts();
    expect(c).toMatchObject({ recordedBefore: 4, recordedNew: 2, resolvedTrajectories: 4, patchesVerified: 3, patchesQueued: 4, llmCallsInFlight: 3, containersRunning: 2 });
    expect(c.rate).toBeCloseTo(0.5);
    expect(c.etaSeconds).toBeCloseTo(12);
    expect(p.line(false)).toBe(
      '6/12 trajectories (4 recorded before, 2 new), 4 resolved, patches verified 3/4, 3 LLM calls in flight, 2 containers running, 0.50 new trajectories/s, ETA 12s',
    );
    p.error();
    now += 2000;
    p.finish();
    expect(lines).toEqual(['[iter-0/sample] 6/12 trajectories (4 recorded before, 2 new), 4 resolved, patches verified 3/4, 1 infrastructure errors (retried on resume), 0.33 new trajectories/s, took 6s\n']);
  });

  it('a fresh phase says nothing of recorded work, and a finished one has no ETA left', () => {
    let now = 0;
    const p = new PhaseProgress('eval/m0', 1, sink().out, 60_000, () => now);
    p.recorded([], []);
    expect(p.line(false)).toBe('0/1 trajectories, 0 resolved, patches verified 0/0, 0 LLM calls in flight, 0 containers running, no new trajectories yet, ETA ?');
    now = 1000;
    p.trajectory(makeTrajectory({ instance_id: 'a' }));
    expect(p.counts().etaSeconds).toBe(0);
    p.finish();
  });

  it('on a terminal: one line redrawn in place', () => {
    const { out, lines } = sink(true);
    const p = new PhaseProgress('iter-1/sample', 2, out, 60_000, () => 0);
    p.finish();
    expect(lines[0]).toMatch(/^\r\x1b\[2K\[iter-1\/sample\] ░{20} 0\/2 trajectories · 0 resolved · patches verified 0\/0 · no new trajectories yet · took 0s$/);
    expect(lines[1]).toBe('\n');
  });
});
