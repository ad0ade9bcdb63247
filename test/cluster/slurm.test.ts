import { describe, expect, it } from 'vitest';
import { RecipeSchema, type SlurmCluster } from '../../src/recipe/schema.js';
import { arraySpec, isLive, jobScript, parseSbatch, parseScontrolJobs, parseTaskStates, sbatchArgs, shellQuote } from '../../src/cluster/slurm.js';

const cluster = (over: Partial<SlurmCluster> = {}): SlurmCluster => ({
  kind: 'slurm',
  partition: null,
  account: null,
  time_limit: null,
  cpus_per_task: null,
  mem: null,
  shards: 4,
  array_width: null,
  max_attempts: 3,
  poll_s: 5,
  sbatch_args: [],
  ...over,
});

describe('the job script', () => {
  it('carries the recipe keys as #SBATCH lines and execs the worker with the array task index as its shard', () => {
    const text = jobScript({
      cluster: cluster({ partition: 'cpu', account: 'lab', time_limit: '2:00:00', cpus_per_task: 8, mem: '16G' }),
      jobName: 'rft-demo-iter-0',
      logDir: '/runs/demo/iter-0/shards/logs',
      worker: ['/usr/bin/node', '/opt/rft/dist/cli/main.js', 'worker', '--run', "/runs/it's here", '--iteration', '0', '--shards', '4'],
    });
    const lines = text.split('\n');
    expect(lines[0]).toBe('#!/bin/bash');
    expect(lines.filter((l) => l.startsWith('#SBATCH '))).toEqual([
      '#SBATCH --job-name=rft-demo-iter-0',
      '#SBATCH --output=/runs/demo/iter-0/shards/logs/%A_%a.out',
      '#SBATCH --partition=cpu',
      '#SBATCH --account=lab',
      '#SBATCH --time=2:00:00',
      '#SBATCH --cpus-per-task=8',
      '#SBATCH --mem=16G',
    ]);
    expect(text).toContain(`exec /usr/bin/node /opt/rft/dist/cli/main.js worker --run '/runs/it'\\''s here' --iteration 0 --shards 4 --shard "$SLURM_ARRAY_TASK_ID"`);
  });

  it('leaves out keys the recipe does not set', () => {
    const text = jobScript({ cluster: cluster(), jobName: 'j', logDir: '/l', worker: ['rft', 'worker'] });
    expect(text).not.toMatch(/--partition|--account|--time|--cpus-per-task|--mem/);
  });

  it('quotes words a shell would split or expand', () => {
    expect(shellQuote('http://127.0.0.1:8000/v1')).toBe('http://127.0.0.1:8000/v1');
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote('$HOME')).toBe("'$HOME'");
  });
});

describe('sbatch arguments', () => {
  it('submits only the shards asked for, as ranges, with the array width and extra arguments', () => {
    expect(arraySpec([0, 1, 2, 5, 7, 8])).toBe('0-2,5,7-8');
    expect(arraySpec([3])).toBe('3');
    expect(sbatchArgs(cluster({ array_width: 2, sbatch_args: ['--qos=low'] }), [2, 0, 1], '/s/job.sh')).toEqual(['--parsable', '--array=0-2%2', '--qos=low', '/s/job.sh']);
    expect(sbatchArgs(cluster(), [1], '/s/job.sh')).toEqual(['--parsable', '--array=1', '/s/job.sh']);
  });

  it('reads the job id sbatch --parsable prints, and refuses anything else', () => {
    expect(parseSbatch('1234\n')).toBe('1234');
    expect(parseSbatch('1234;cluster-a\n')).toBe('1234');
    expect(() => parseSbatch('sbatch: error: Batch job submission failed\n')).toThrow(/no job id/);
  });
});

describe('squeue, sacct and scontrol output', () => {
  it('reads one state per array task, pending ranges expanded, other jobs passed over', () => {
    const squeue = '12_0|RUNNING\n12_[2-3%2]|PENDING\n13|RUNNING\n';
    expect(parseTaskStates(squeue)).toEqual([
      { job: '12', task: 0, state: 'RUNNING' },
      { job: '12', task: 2, state: 'PENDING' },
      { job: '12', task: 3, state: 'PENDING' },
    ]);
    const sacct = '12_0|COMPLETED\n12_1|CANCELLED by 0\n12_2|TIMEOUT\n12_3|PREEMPTED\n12_4|NODE_FAIL\n';
    expect(parseTaskStates(sacct).map((t) => t.state)).toEqual(['COMPLETED', 'CANCELLED', 'TIMEOUT', 'PREEMPTED', 'NODE_FAIL']);
  });

  it('reads scontrol -o show job lines (one per task, a pending rest as a range)', () => {
    const text = [
      'JobId=14 ArrayJobId=13 ArrayTaskId=0 JobName=rft UserId=root(0) JobState=CANCELLED Reason=None',
      'JobId=13 ArrayJobId=13 ArrayTaskId=2-3%2 JobName=rft JobState=PENDING Reason=JobArrayTaskLimit',
      'JobId=20 JobName=other JobState=RUNNING',
    ].join('\n');
    expect(parseScontrolJobs(text)).toEqual([
      { job: '13', task: 0, state: 'CANCELLED' },
      { job: '13', task: 2, state: 'PENDING' },
      { job: '13', task: 3, state: 'PENDING' },
    ]);
  });

  it('counts pending, running and requeued tasks as live, ended ones not', () => {
    for (const s of ['PENDING', 'RUNNING', 'REQUEUED', 'COMPLETING', 'SUSPENDED']) expect(isLive(s)).toBe(true);
    for (const s of ['COMPLETED', 'CANCELLED', 'TIMEOUT', 'PREEMPTED', 'NODE_FAIL', 'FAILED', 'OUT_OF_MEMORY']) expect(isLive(s)).toBe(false);
  });
});

describe('the recipe key', () => {
  const base = { name: 'r', tasks: { train: { path: 't.jsonl' } }, policy: { kind: 'simulated', model: 'm' }, finetune: { backend: 'command', command: 'true', base_model: 'm', output_model_file: 'x' } };
  it('is absent by default (local), and fills the Slurm defaults', () => {
    expect(RecipeSchema.parse(base).cluster).toBeUndefined();
    const c = RecipeSchema.parse({ ...base, cluster: { kind: 'slurm', shards: 3 } }).cluster;
    expect(c).toMatchObject({ kind: 'slurm', shards: 3, array_width: null, max_attempts: 3, sbatch_args: [] });
  });
  it('refuses a malformed time limit, naming the field', () => {
    const r = RecipeSchema.safeParse({ ...base, cluster: { kind: 'slurm', time_limit: 'two hours' } });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.path).toEqual(['cluster', 'time_limit']);
  });
});
