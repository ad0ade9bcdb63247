import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeJsonAtomic } from '../store/atomic.js';
import { countLines, Ledger, readRecords, SHARDS_DIR, shardLedgerFile } from '../store/ledger.js';

/**
 * The records of a sharded phase, in its ledger folder (e.g. iter-<k>/):
 *
 *   shards/jobs.jsonl          every submission of a shard and every end the coordinator saw (append-only)
 *   shards/job.sh              the batch script (written by the coordinator, atomically)
 *   shards/logs/%A_%a.out      each array task's output
 *   shards/<i>/trajectories.jsonl, verdicts.jsonl   shard i's own part of the phase's ledgers
 *   shards/<i>/done.json       written once shard i's worker recorded every sample and final verdict
 *
 * Instance j of the phase (in instances.json order) belongs to shard j mod shards.
 */

export const ShardEventSchema = z.discriminatedUnion('event', [
  z.strictObject({ event: z.literal('submitted'), shard: z.number().int().nonnegative(), shards: z.number().int().positive(), job: z.string(), attempt: z.number().int().positive(), at: z.string() }),
  z.strictObject({ event: z.literal('ended'), shard: z.number().int().nonnegative(), job: z.string(), state: z.string(), at: z.string() }),
]);
export type ShardEvent = z.infer<typeof ShardEventSchema>;

export const ShardDoneSchema = z.strictObject({ shard: z.number().int().nonnegative(), shards: z.number().int().positive(), instances: z.number().int().nonnegative(), finished_at: z.string() });
export type ShardDone = z.infer<typeof ShardDoneSchema>;

export const shardLayout = {
  dir: (phaseDir: string) => path.join(phaseDir, SHARDS_DIR),
  shardDir: (phaseDir: string, shard: number) => path.join(phaseDir, SHARDS_DIR, String(shard)),
  jobs: (phaseDir: string) => path.join(phaseDir, SHARDS_DIR, 'jobs.jsonl'),
  script: (phaseDir: string) => path.join(phaseDir, SHARDS_DIR, 'job.sh'),
  logs: (phaseDir: string) => path.join(phaseDir, SHARDS_DIR, 'logs'),
  done: (phaseDir: string, shard: number) => path.join(phaseDir, SHARDS_DIR, String(shard), 'done.json'),
  lock: (phaseDir: string, shard: number) => path.join(phaseDir, SHARDS_DIR, String(shard), 'worker.lock'),
};

/** The shard's own instances: every `shards`-th of the phase's, from the shard's index. */
export function shardMembers<T>(members: readonly T[], shard: number, shards: number): T[] {
  return members.filter((_, j) => j % shards === shard);
}

export function readShardEvents(phaseDir: string): ShardEvent[] {
  return [...readRecords(shardLayout.jobs(phaseDir), ShardEventSchema)];
}

export function appendShardEvent(phaseDir: string, event: ShardEvent): void {
  mkdirSync(shardLayout.dir(phaseDir), { recursive: true });
  const { ledger } = Ledger.open(shardLayout.jobs(phaseDir), ShardEventSchema);
  try {
    ledger.append(event);
  } finally {
    ledger.close();
  }
}

/** Shard `shard` finished (of a split into `shards`: a marker of another split does not count). */
export function shardFinished(phaseDir: string, shard: number, shards: number): boolean {
  const file = shardLayout.done(phaseDir, shard);
  if (!existsSync(file)) return false;
  const done = ShardDoneSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  return done.success && done.data.shards === shards;
}

export function writeShardDone(phaseDir: string, done: ShardDone): void {
  mkdirSync(shardLayout.shardDir(phaseDir, done.shard), { recursive: true });
  writeJsonAtomic(shardLayout.done(phaseDir, done.shard), done);
}

/** What each shard recorded so far (for progress lines and rft status): whole ledger lines, nothing parsed. */
export interface ShardProgress {
  shard: number;
  trajectories: number;
  verdicts: number;
  finished: boolean;
  /** Submissions so far, and Slurm's last word on the latest one (null while none ended). */
  attempts: number;
  job: string | null;
  last_state: string | null;
}

export function shardProgress(phaseDir: string): ShardProgress[] {
  const events = existsSync(shardLayout.jobs(phaseDir)) ? readShardEvents(phaseDir) : [];
  const byShard = new Map<number, ShardProgress>();
  let shards = 0;
  for (const e of events) {
    const p = byShard.get(e.shard) ?? { shard: e.shard, trajectories: 0, verdicts: 0, finished: false, attempts: 0, job: null, last_state: null };
    if (e.event === 'submitted') {
      shards = e.shards;
      Object.assign(p, { attempts: p.attempts + 1, job: `${e.job}_${e.shard}`, last_state: null });
    } else if (p.job === `${e.job}_${e.shard}`) p.last_state = e.state;
    byShard.set(e.shard, p);
  }
  return [...byShard.values()]
    .sort((a, b) => a.shard - b.shard)
    .map((p) => ({
      ...p,
      trajectories: countLines(shardLedgerFile(path.join(phaseDir, 'trajectories.jsonl'), p.shard)),
      verdicts: countLines(shardLedgerFile(path.join(phaseDir, 'verdicts.jsonl'), p.shard)),
      finished: shardFinished(phaseDir, p.shard, shards),
    }));
}

/** The coordinator's view of one shard at a look, and what it decides. */
export interface ShardView {
  shard: number;
  finished: boolean;
  /** Slurm still holds a task of it (pending, running, requeued). */
  live: boolean;
  attempts: number;
}

export interface ShardDecision {
  /** Submit (again): never submitted, or its job ended (killed, preempted, timed out, node lost, failed) before it finished. */
  submit: number[];
  /** Ended unfinished with no submission left (cluster.max_attempts): the phase stops incomplete. */
  exhausted: number[];
  waiting: number[];
  finished: number[];
}

/**
 * Pure: what to do with each shard. A finished shard is never run again; a live one is waited
 * for (Slurm may requeue it itself); any other is (re)submitted while it has attempts left. What
 * it had recorded stays and its worker skips it, so a resubmission redoes only what is missing.
 */
export function decideShards(views: readonly ShardView[], maxAttempts: number): ShardDecision {
  const d: ShardDecision = { submit: [], exhausted: [], waiting: [], finished: [] };
  for (const v of views) {
    if (v.finished) d.finished.push(v.shard);
    else if (v.live) d.waiting.push(v.shard);
    else if (v.attempts < maxAttempts) d.submit.push(v.shard);
    else d.exhausted.push(v.shard);
  }
  return d;
}
