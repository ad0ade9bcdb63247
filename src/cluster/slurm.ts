import type { SlurmCluster } from '../recipe/schema.js';

/**
 * Slurm's side of a sharded phase, as text: the job script the array runs, the sbatch arguments,
 * and what squeue/sacct print. Pure (no process is run here): src/cluster/far-end.ts runs the
 * commands, and unit tests feed these functions what the commands print.
 */

/** A shell word, single-quoted (any character may appear in a run path or URL). */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface JobScriptInput {
  cluster: SlurmCluster;
  /** Names the jobs in squeue and the completion log: `rft-<run>-iter<k>`. */
  jobName: string;
  /** Where each array task's output goes (%A: array job id, %a: task index). */
  logDir: string;
  /** The worker command without --shard (the script adds `--shard $SLURM_ARRAY_TASK_ID`). */
  worker: readonly string[];
}

/** The batch script of one phase's job array: one task per shard, each an `rft worker`. */
export function jobScript(input: JobScriptInput): string {
  const { cluster } = input;
  const directives: string[] = [`--job-name=${input.jobName}`, `--output=${input.logDir}/%A_%a.out`];
  if (cluster.partition !== null) directives.push(`--partition=${cluster.partition}`);
  if (cluster.account !== null) directives.push(`--account=${cluster.account}`);
  if (cluster.time_limit !== null) directives.push(`--time=${cluster.time_limit}`);
  if (cluster.cpus_per_task !== null) directives.push(`--cpus-per-task=${cluster.cpus_per_task}`);
  if (cluster.mem !== null) directives.push(`--mem=${cluster.mem}`);
  return [
    '#!/bin/bash',
    ...directives.map((d) => `#SBATCH ${d}`),
    '# Written by rft run (the coordinator) for this phase; a task resumes from what its shard recorded.',
    'set -euo pipefail',
    `exec ${input.worker.map(shellQuote).join(' ')} --shard "$SLURM_ARRAY_TASK_ID"`,
    '',
  ].join('\n');
}

/** `0-2,5`: the --array list of these task indices (sorted, runs of consecutive ones collapsed). */
export function arraySpec(indices: readonly number[]): string {
  const sorted = [...new Set(indices)].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j += 1;
    parts.push(i === j ? `${sorted[i]}` : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** The sbatch arguments submitting `shards` of the phase's array (the recipe's extra arguments go before the script). */
export function sbatchArgs(cluster: SlurmCluster, shards: readonly number[], script: string): string[] {
  const width = cluster.array_width !== null ? `%${cluster.array_width}` : '';
  return ['--parsable', `--array=${arraySpec(shards)}${width}`, ...cluster.sbatch_args, script];
}

/** `sbatch --parsable` prints `<job id>` or `<job id>;<cluster>`. */
export function parseSbatch(stdout: string): string {
  const id = stdout.trim().split(';')[0] ?? '';
  if (!/^\d+$/.test(id)) throw new Error(`sbatch printed no job id: ${JSON.stringify(stdout.trim().slice(0, 200))}`);
  return id;
}

/** What Slurm says of one array task: its array job id, index and state (first word, e.g. CANCELLED of `CANCELLED by 0`). */
export interface TaskState {
  job: string;
  task: number;
  state: string;
}

/**
 * Lines `<job>_<task>|<STATE>` as `squeue -h -r -o %i|%T` and `sacct -n -P -X -o JobID,State`
 * print them. A pending range (`12_[3-5%2]`, when not expanded) gives each of its tasks; lines of
 * jobs that are not array tasks are passed over.
 */
export function parseTaskStates(stdout: string): TaskState[] {
  const out: TaskState[] = [];
  for (const raw of stdout.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const [id, stateText = ''] = line.split('|');
    const state = stateText.trim().split(/\s+/)[0]!.replace(/\+$/, '');
    const single = /^(\d+)_(\d+)$/.exec(id!.trim());
    if (single) {
      out.push({ job: single[1]!, task: Number(single[2]), state });
      continue;
    }
    const range = /^(\d+)_\[([\d,\-]+)(?:%\d+)?\]$/.exec(id!.trim());
    if (!range) continue;
    for (const part of range[2]!.split(',')) {
      const [a, b] = part.split('-').map(Number);
      for (let t = a!; t <= (b ?? a!); t++) out.push({ job: range[1]!, task: t, state });
    }
  }
  return out;
}

/**
 * `scontrol -o show job <array job>`: one line per task (`ArrayJobId=12 ArrayTaskId=0 …
 * JobState=CANCELLED …`; a pending rest as `ArrayTaskId=3-5%2`). Slurm keeps ended jobs there for
 * MinJobAge seconds, which says how a task ended where sacct has no accounting to ask.
 */
export function parseScontrolJobs(stdout: string): TaskState[] {
  const out: TaskState[] = [];
  for (const line of stdout.split('\n')) {
    const job = /(?:^|\s)ArrayJobId=(\d+)/.exec(line)?.[1];
    const tasks = /(?:^|\s)ArrayTaskId=([\d,\-]+)/.exec(line)?.[1];
    const state = /(?:^|\s)JobState=([A-Z_]+)/.exec(line)?.[1];
    if (!job || !tasks || !state) continue;
    for (const part of tasks.split(',')) {
      const [a, b] = part.split('-').map(Number);
      for (let t = a!; t <= (b ?? a!); t++) out.push({ job, task: t, state });
    }
  }
  return out;
}

/** States in which a task may still run (or run again, as a requeued one): its shard is waited for, not resubmitted. */
const LIVE_STATES = new Set(['PENDING', 'CONFIGURING', 'RUNNING', 'COMPLETING', 'REQUEUED', 'REQUEUE_FED', 'REQUEUE_HOLD', 'RESIZING', 'SUSPENDED', 'STAGE_OUT', 'SIGNALING', 'STOPPED']);

export function isLive(state: string): boolean {
  return LIVE_STATES.has(state);
}
