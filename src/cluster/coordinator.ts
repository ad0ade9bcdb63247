import { mkdirSync } from 'node:fs';
import type { SlurmCluster } from '../recipe/schema.js';
import { writeFileAtomic } from '../store/atomic.js';
import type { SlurmFarEnd } from './far-end.js';
import { appendShardEvent, decideShards, readShardEvents, shardFinished, shardLayout, shardProgress, type ShardProgress } from './shards.js';
import { isLive, jobScript, sbatchArgs, type TaskState } from './slurm.js';

export interface ShardedPhaseInput {
  /** The phase's ledger folder (iter-<k>/): the shards write beneath it. */
  phaseDir: string;
  /** The phase as state.json and messages name it (iter-<k>/sample). */
  phase: string;
  jobName: string;
  cluster: SlurmCluster;
  /** How many shards the phase is split into (the worker command carries the same --shards). */
  shards: number;
  /** The worker command without --shard. */
  worker: readonly string[];
  farEnd: SlurmFarEnd;
  log: (message: string) => void;
  warn: (message: string) => void;
  stopping: () => boolean;
  /** Waits between looks (tests pass a fast one); resolves early when the user stops. */
  sleep: (ms: number) => Promise<void>;
}

export interface ShardedPhaseResult {
  complete: boolean;
  reason: string | null;
}

/**
 * Runs one phase as a Slurm job array and waits for it: submits the shards not finished, looks at
 * the queue every poll_s, resubmits a shard whose job ended before it finished (scancel,
 * preemption, time limit, node lost, a worker that failed) while it has attempts left, and tells
 * each shard's progress from its ledgers. A resumed coordinator finds submissions it made before
 * in shards/jobs.jsonl and waits for those still queued instead of submitting them again. On a
 * stop it returns at once: queued jobs go on, and a resume waits for them.
 */
export async function runShardedPhase(input: ShardedPhaseInput): Promise<ShardedPhaseResult> {
  const { phaseDir, cluster, shards } = input;
  mkdirSync(shardLayout.logs(phaseDir), { recursive: true });
  const script = shardLayout.script(phaseDir);
  writeFileAtomic(script, jobScript({ cluster, jobName: input.jobName, logDir: shardLayout.logs(phaseDir), worker: input.worker }));

  // The latest submission of each shard of this split, and which ends were already recorded.
  const latest = new Map<number, string>();
  const endedSeen = new Set<string>();
  for (const e of readShardEvents(phaseDir)) {
    if (e.event === 'submitted' && e.shards === shards) latest.set(e.shard, e.job);
    if (e.event === 'ended') endedSeen.add(`${e.job}_${e.shard}`);
  }
  // Attempts count this coordinator's submissions: `rft resume` gives every shard max_attempts again.
  const attempts = new Map<number, number>();
  const all = Array.from({ length: shards }, (_, i) => i);
  let lastProgress = '';

  for (;;) {
    if (input.stopping()) return { complete: false, reason: 'stopped by the user; submitted shard jobs keep running and a resume waits for them' };
    let states: TaskState[];
    try {
      states = await input.farEnd.states([...new Set(latest.values())]);
    } catch (err) {
      input.warn(`${input.phase}: asking Slurm about the shard jobs failed (asked again in ${cluster.poll_s} s): ${(err as Error).message}`);
      await input.sleep(cluster.poll_s * 1000);
      continue;
    }
    const stateOf = (shard: number): string | null => {
      const job = latest.get(shard);
      return job === undefined ? null : (states.find((t) => t.job === job && t.task === shard)?.state ?? null);
    };
    const views = all.map((shard) => {
      const state = stateOf(shard);
      const finished = shardFinished(phaseDir, shard, shards);
      const live = state !== null && isLive(state);
      const job = latest.get(shard);
      if (job !== undefined && !live && !endedSeen.has(`${job}_${shard}`)) {
        // Slurm no longer runs it: say how it ended (sacct's state when there is one).
        endedSeen.add(`${job}_${shard}`);
        appendShardEvent(phaseDir, { event: 'ended', shard, job, state: state ?? 'GONE', at: new Date().toISOString() });
        if (!finished) input.warn(`${input.phase}: shard ${shard} (job ${job}_${shard}) ended ${state ?? '(no longer queued)'} before it finished: what it recorded is kept, the rest is submitted again`);
      }
      return { shard, finished, live, attempts: attempts.get(shard) ?? 0 };
    });
    const decision = decideShards(views, cluster.max_attempts);

    const progress = formatShardProgress(shardProgress(phaseDir));
    if (progress !== lastProgress) input.log(`${input.phase}: ${progress}`);
    lastProgress = progress;

    if (decision.finished.length === shards) return { complete: true, reason: null };
    if (decision.exhausted.length > 0 && decision.waiting.length === 0 && decision.submit.length === 0) {
      return { complete: false, reason: `${input.phase}: shard(s) ${decision.exhausted.join(', ')} ended unfinished ${cluster.max_attempts} time(s) (see ${shardLayout.logs(phaseDir)}); rft resume submits them again` };
    }
    if (decision.submit.length > 0) {
      const job = await input.farEnd.submit(sbatchArgs(cluster, decision.submit, script));
      const at = new Date().toISOString();
      for (const shard of decision.submit) {
        const attempt = (attempts.get(shard) ?? 0) + 1;
        attempts.set(shard, attempt);
        latest.set(shard, job);
        appendShardEvent(phaseDir, { event: 'submitted', shard, shards, job, attempt, at });
      }
      input.log(`${input.phase}: submitted shard(s) ${decision.submit.join(', ')} of ${shards} as Slurm job array ${job}`);
      continue; // look at once: a task that fails at start is seen without waiting a poll
    }
    await input.sleep(cluster.poll_s * 1000);
  }
}

/** `shard 0: 8 sampled, 8 verified, done · shard 1: …` */
export function formatShardProgress(shards: readonly ShardProgress[]): string {
  return shards
    .map((s) => `shard ${s.shard}: ${s.trajectories} sampled, ${s.verdicts} verified${s.finished ? ', done' : s.attempts > 1 ? `, attempt ${s.attempts}` : ''}`)
    .join(' · ');
}
