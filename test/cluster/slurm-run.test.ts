import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readShardEvents, shardLayout } from '../../src/cluster/shards.js';
import { SHARD_LABEL } from '../../src/cluster/worker.js';
import { runLayout } from '../../src/loop/layout.js';
import { LABEL } from '../../src/sandbox/container.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import { ROOT } from '../cli/helpers.js';
import { startRft, waitFor } from '../loop/helpers.js';

/** The completion log scripts/setup-slurm.sh configures (JobCompType=jobcomp/filetxt). */
const JOBCOMP_LOG = '/var/log/slurm/jobcomp.log';
const DEMO = path.join(ROOT, 'recipes', 'demo.yaml');
/** The demo recipe, made small: 3 instances, 2 samples each, one iteration, no eval. */
const SMALL = ['--set', 'iterations=1', '--set', 'sampling.samples_per_task=2', '--set', 'tasks.eval=null', '--set', 'tasks.train.limit=3'];
const SLURM = ['--set', 'cluster.kind=slurm', '--set', 'cluster.shards=3', '--set', 'cluster.poll_s=1'];

describe('the demo recipe on a one-node Slurm cluster (scripts/setup-slurm.sh)', () => {
  it('runs as a 3-shard job array; a shard scancelled mid-verification is resubmitted; the dataset equals a local run byte for byte', async () => {
    const node = execFileSync('sinfo', ['-h', '-o', '%t'], { encoding: 'utf8' }).trim();
    expect(node, 'the one-node cluster of scripts/setup-slurm.sh answers').toMatch(/^(idle|mix|alloc)/);

    const runs = mkdtempSync(path.join(tmpdir(), 'rft-slurm-'));
    const runDir = path.join(runs, 'slurm-demo');
    const iterDir = runLayout.iterationDir(runDir, 0);
    const docker = await connectEngine();
    const run = startRft(['run', DEMO, '--runs-dir', runs, '--name', 'slurm-demo', ...SMALL, ...SLURM]);

    // Kill one shard's Slurm task while a verification container of that shard runs.
    let killed: { shard: number; job: string } | null = null;
    await waitFor(
      async () => {
        const events = existsSync(shardLayout.jobs(iterDir)) ? readShardEvents(iterDir) : [];
        for (const e of events) {
          if (e.event !== 'submitted') continue;
          const running = await docker.listContainers({ filters: JSON.stringify({ label: [`${SHARD_LABEL}=${runDir}#iter-0/${e.shard}`, `${LABEL.purpose}=verify`] }) });
          if (running.length === 0 || existsSync(shardLayout.done(iterDir, e.shard))) continue;
          execFileSync('scancel', [`${e.job}_${e.shard}`]);
          killed = { shard: e.shard, job: e.job };
          return true;
        }
        return false;
      },
      run,
      'a shard verifying',
    );
    const done = await run.done;
    expect(done.code, done.stderr.slice(-3000)).toBe(0);
    const { shard, job } = killed!;

    // The killed task ended CANCELLED and its shard was submitted again, alone; every shard finished.
    const events = readShardEvents(iterDir);
    expect(events.find((e) => e.event === 'ended' && e.shard === shard && e.job === job)).toMatchObject({ state: 'CANCELLED' });
    const submissions = events.filter((e) => e.event === 'submitted');
    expect(submissions.filter((e) => e.shard === shard).map((e) => e.attempt)).toEqual([1, 2]);
    expect(submissions.filter((e) => e.shard !== shard).map((e) => e.attempt)).toEqual([1, 1]);
    for (const s of [0, 1, 2]) expect(existsSync(shardLayout.done(iterDir, s))).toBe(true);
    expect(done.stderr).toMatch(new RegExp(`shard ${shard} \\(job ${job}_${shard}\\) ended CANCELLED before it finished`));

    // Slurm's own record: the completion log lists each shard task of both arrays, under the run's job name.
    const log = readFileSync(JOBCOMP_LOG, 'utf8').split('\n');
    for (const e of submissions) {
      const line = log.find((l) => l.includes(`ArrayJobId=${e.job} `) && l.includes(`ArrayTaskId=${e.shard} `));
      expect(line, `job ${e.job}_${e.shard} in ${JOBCOMP_LOG}`).toBeDefined();
      expect(line).toContain('Name=rft-slurm-demo-iter-0 ');
      expect(line).toContain(e.job === job && e.shard === shard ? 'JobState=CANCELLED' : 'JobState=COMPLETED');
    }

    // rft status shows each shard's progress.
    const status = execFileSync(process.execPath, [path.join(ROOT, 'dist/cli/main.js'), 'status', runDir], { encoding: 'utf8' });
    for (const s of [0, 1, 2]) expect(status).toMatch(new RegExp(`iter-0/sample shard ${s}\\s+done\\s+2 trajectories, \\d+ verdicts; job \\d+_${s}, attempt ${s === shard ? 2 : 1}`));

    // The same recipe on this machine alone gives the same dataset, byte for byte.
    const local = startRft(['run', DEMO, '--runs-dir', runs, '--name', 'local-demo', ...SMALL]);
    const localDone = await local.done;
    expect(localDone.code, localDone.stderr.slice(-3000)).toBe(0);
    const dataset = (dir: string) => readFileSync(path.join(runLayout.datasetDir(dir, 0, 2), 'train.jsonl'));
    const sharded = dataset(runDir);
    expect(sharded.length).toBeGreaterThan(0);
    expect(sharded.equals(dataset(path.join(runs, 'local-demo')))).toBe(true);
    // Nothing left running: no container of the run, no shard task in the queue.
    expect(await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL.run}=slurm-demo`] }) })).toEqual([]);
    expect(execFileSync('squeue', ['-h', '-n', 'rft-slurm-demo-iter-0'], { encoding: 'utf8' }).trim()).toBe('');
  }, 600_000);
});
