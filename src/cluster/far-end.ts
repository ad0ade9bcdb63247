import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parseSbatch, parseScontrolJobs, parseTaskStates, type TaskState } from './slurm.js';

const run = promisify(execFile);

/**
 * The cluster as the coordinator uses it: submit an array, ask what its tasks are doing. Behind
 * this interface so unit tests can play the far end (a queue that kills, preempts, times out).
 */
export interface SlurmFarEnd {
  /** Runs sbatch with these arguments; returns the array job's id. */
  submit(args: readonly string[]): Promise<string>;
  /** What Slurm knows of these array jobs' tasks (a task it no longer lists is missing). */
  states(jobs: readonly string[]): Promise<TaskState[]>;
}

/** The Slurm commands on PATH: squeue for tasks in the queue, sacct for ended ones where accounting (or a completion log) keeps them. */
export class SlurmCommands implements SlurmFarEnd {
  async submit(args: readonly string[]): Promise<string> {
    const { stdout } = await run('sbatch', [...args], { timeout: 60_000 }).catch((err: { stderr?: string; message: string }) => {
      throw new Error(`sbatch ${args.join(' ')} failed: ${(err.stderr ?? err.message).trim()}`);
    });
    return parseSbatch(stdout);
  }

  async states(jobs: readonly string[]): Promise<TaskState[]> {
    if (jobs.length === 0) return [];
    const ids = jobs.join(',');
    // -r: one line per array task, pending ones included. A job Slurm forgot makes squeue fail with
    // "Invalid job id": nothing of it is live. Any other failure (the controller not answering) is
    // thrown: the coordinator asks again rather than resubmitting shards that may be running.
    const queued = await run('squeue', ['-h', '-r', '-j', ids, '-o', '%i|%T'], { timeout: 60_000 }).then(
      (r) => parseTaskStates(r.stdout),
      (err: { stderr?: string; message: string }) => {
        if (/invalid job id/i.test(err.stderr ?? '')) return [] as TaskState[];
        throw new Error(`squeue failed: ${(err.stderr ?? err.message).trim()}`);
      },
    );
    // Ended tasks' states say why (CANCELLED, TIMEOUT, PREEMPTED, NODE_FAIL): sacct where there is
    // accounting, else scontrol while the controller still keeps the job. Only a message depends
    // on it: whether a shard runs again is decided by what it recorded.
    const ended = await run('sacct', ['-n', '-P', '-X', '-j', ids, '-o', 'JobID,State'], { timeout: 60_000 }).then(
      (r) => parseTaskStates(r.stdout),
      () => [] as TaskState[],
    );
    if (ended.length === 0) {
      for (const job of jobs) {
        ended.push(...(await run('scontrol', ['-o', 'show', 'job', job], { timeout: 60_000 }).then((r) => parseScontrolJobs(r.stdout), () => [] as TaskState[])));
      }
    }
    const seen = new Set(queued.map((t) => `${t.job}_${t.task}`));
    return [...queued, ...ended.filter((t) => !seen.has(`${t.job}_${t.task}`))];
  }
}
