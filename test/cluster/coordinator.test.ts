import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runShardedPhase } from '../../src/cluster/coordinator.js';
import type { SlurmFarEnd } from '../../src/cluster/far-end.js';
import { appendShardEvent, decideShards, readShardEvents, shardLayout, shardMembers, writeShardDone } from '../../src/cluster/shards.js';
import type { TaskState } from '../../src/cluster/slurm.js';
import type { SlurmCluster } from '../../src/recipe/schema.js';

const cluster: SlurmCluster = { kind: 'slurm', partition: null, account: null, time_limit: null, cpus_per_task: null, mem: null, shards: 3, array_width: null, max_attempts: 3, poll_s: 1, sbatch_args: [] };

/**
 * A far end that plays the queue: a submitted task is PENDING, then RUNNING, then ends as its
 * script says — `done` (the worker finished: its done.json is written) or a Slurm state for a task
 * that ended unfinished (killed, preempted, timed out, node lost).
 */
class FakeSlurm implements SlurmFarEnd {
  submitted: number[][] = [];
  private next = 100;
  private readonly tasks = new Map<string, { job: string; task: number; steps: string[] }>();
  failQueries = 0;

  constructor(
    private readonly phaseDir: string,
    /** Per shard, how each successive attempt ends. */
    private readonly fates: Record<number, string[]>,
  ) {}

  async submit(args: readonly string[]): Promise<string> {
    const spec = /^--array=([^%]+)/.exec(args.find((a) => a.startsWith('--array='))!)![1]!;
    const shards = spec.split(',').flatMap((p) => {
      const [a, b] = p.split('-').map(Number);
      return Array.from({ length: (b ?? a!) - a! + 1 }, (_, i) => a! + i);
    });
    this.submitted.push(shards);
    const job = String(this.next++);
    for (const s of shards) {
      const fate = this.fates[s]!.shift() ?? 'done';
      this.tasks.set(`${job}_${s}`, { job, task: s, steps: ['PENDING', 'RUNNING', fate] });
    }
    return job;
  }

  async states(jobs: readonly string[]): Promise<TaskState[]> {
    if (this.failQueries > 0) {
      this.failQueries -= 1;
      throw new Error('squeue failed: slurm_load_jobs error: Unable to contact slurm controller');
    }
    const out: TaskState[] = [];
    for (const t of this.tasks.values()) {
      if (!jobs.includes(t.job)) continue;
      const step = t.steps.length > 1 ? t.steps.shift()! : t.steps[0]!;
      if (step === 'done') {
        writeShardDone(this.phaseDir, { shard: t.task, shards: 3, instances: 1, finished_at: 'now' });
        out.push({ job: t.job, task: t.task, state: 'COMPLETED' });
      } else out.push({ job: t.job, task: t.task, state: step });
    }
    return out;
  }
}

function phase(fates: Record<number, string[]>) {
  const phaseDir = mkdtempSync(path.join(tmpdir(), 'rft-coord-'));
  const far = new FakeSlurm(phaseDir, fates);
  const warnings: string[] = [];
  const logs: string[] = [];
  let looks = 0;
  const input = {
    phaseDir,
    phase: 'iter-0/sample',
    jobName: 'rft-t-iter-0',
    cluster,
    shards: 3,
    worker: ['rft', 'worker', '--run', '/r', '--iteration', '0', '--shards', '3'],
    farEnd: far,
    log: (m: string) => logs.push(m),
    warn: (m: string) => warnings.push(m),
    stopping: () => false,
    // A coordinator that never finishes would spin here: fail instead.
    sleep: async () => {
      if (++looks > 100) throw new Error('the coordinator is still waiting after 100 looks');
    },
  };
  return { phaseDir, far, warnings, logs, input };
}

describe('the coordinator of a sharded phase', () => {
  it('submits every shard once, and resubmits only the one that was killed', async () => {
    const { far, warnings, input, phaseDir } = phase({ 0: ['done'], 1: ['CANCELLED', 'done'], 2: ['done'] });
    const result = await runShardedPhase(input);
    expect(result).toEqual({ complete: true, reason: null });
    expect(far.submitted).toEqual([[0, 1, 2], [1]]);
    expect(warnings.join('\n')).toMatch(/shard 1 \(job 100_1\) ended CANCELLED before it finished/);
    const events = readShardEvents(phaseDir);
    expect(events.filter((e) => e.event === 'submitted').map((e) => [e.shard, e.attempt])).toEqual([[0, 1], [1, 1], [2, 1], [1, 2]]);
    expect(events.find((e) => e.event === 'ended' && e.shard === 1)).toMatchObject({ job: '100', state: 'CANCELLED' });
    expect(readFileSync(shardLayout.script(phaseDir), 'utf8')).toContain('--shard "$SLURM_ARRAY_TASK_ID"');
  });

  it('resubmits after a preemption, a time-out and a lost node alike', async () => {
    const { far, input } = phase({ 0: ['PREEMPTED', 'done'], 1: ['TIMEOUT', 'done'], 2: ['NODE_FAIL', 'done'] });
    expect((await runShardedPhase(input)).complete).toBe(true);
    expect(far.submitted).toEqual([[0, 1, 2], [0, 1, 2]]);
  });

  it('stops incomplete once a shard has ended unfinished max_attempts times, naming it', async () => {
    const { far, input } = phase({ 0: ['done'], 1: ['FAILED', 'FAILED', 'FAILED', 'done'], 2: ['done'] });
    const result = await runShardedPhase(input);
    expect(result.complete).toBe(false);
    expect(result.reason).toMatch(/shard\(s\) 1 ended unfinished 3 time\(s\).*rft resume/);
    expect(far.submitted).toEqual([[0, 1, 2], [1], [1]]);
  });

  it('a resumed coordinator waits for shards still queued and submits nothing finished', async () => {
    const { far, input, phaseDir } = phase({ 0: [], 1: ['done'], 2: [] });
    writeShardDone(phaseDir, { shard: 0, shards: 3, instances: 1, finished_at: 'before' });
    // Shard 2 of this split finished, shard 1 was submitted by the last coordinator (job 100) and runs still.
    writeShardDone(phaseDir, { shard: 2, shards: 3, instances: 1, finished_at: 'before' });
    await far.submit(['--parsable', '--array=1', 'job.sh']);
    far.submitted = [];
    appendShardEvent(phaseDir, { event: 'submitted', shard: 1, shards: 3, job: '100', attempt: 1, at: 'before' });
    expect((await runShardedPhase(input)).complete).toBe(true);
    expect(far.submitted).toEqual([]);
  });

  it('a done marker of another split does not count as finished', async () => {
    const { far, input, phaseDir } = phase({ 0: ['done'], 1: ['done'], 2: ['done'] });
    writeShardDone(phaseDir, { shard: 0, shards: 2, instances: 2, finished_at: 'before' });
    expect((await runShardedPhase(input)).complete).toBe(true);
    expect(far.submitted).toEqual([[0, 1, 2]]);
  });

  it('when Slurm does not answer, asks again instead of resubmitting', async () => {
    const { far, warnings, input } = phase({ 0: ['done'], 1: ['done'], 2: ['done'] });
    far.failQueries = 0;
    const first = far.submit.bind(far);
    far.submit = async (args) => {
      const job = await first(args);
      far.failQueries = 2;
      return job;
    };
    expect((await runShardedPhase(input)).complete).toBe(true);
    expect(far.submitted).toEqual([[0, 1, 2]]);
    expect(warnings.filter((w) => /asking Slurm about the shard jobs failed/.test(w))).toHaveLength(2);
  });

  it('returns at once when the user stops, submitting nothing', async () => {
    const { far, input } = phase({ 0: [], 1: [], 2: [] });
    const result = await runShardedPhase({ ...input, stopping: () => true });
    expect(result.complete).toBe(false);
    expect(far.submitted).toEqual([]);
  });
});

describe('shard decisions and membership', () => {
  it('finished shards never run again, live ones are waited for, others resubmitted while attempts last', () => {
    const d = decideShards(
      [
        { shard: 0, finished: true, live: false, attempts: 1 },
        { shard: 1, finished: false, live: true, attempts: 1 },
        { shard: 2, finished: false, live: false, attempts: 1 },
        { shard: 3, finished: false, live: false, attempts: 3 },
        { shard: 4, finished: false, live: false, attempts: 0 },
      ],
      3,
    );
    expect(d).toEqual({ finished: [0], waiting: [1], submit: [2, 4], exhausted: [3] });
  });

  it('splits instances into disjoint shards that cover them all, the same way every time', () => {
    const ids = Array.from({ length: 10 }, (_, i) => `i${i}`);
    const shards = [0, 1, 2].map((s) => shardMembers(ids, s, 3));
    expect(shards[1]).toEqual(['i1', 'i4', 'i7']);
    expect(shards.flat().sort()).toEqual([...ids].sort());
  });
});
