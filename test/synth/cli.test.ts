import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runLayout } from '../../src/loop/layout.js';
import { LABEL } from '../../src/sandbox/container.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import { readRecords } from '../../src/store/ledger.js';
import { readTrajectories } from '../../src/store/trajectories.js';
import { ledgerFile, synthRunLabel } from '../../src/synth/pipeline.js';
import { SynthRecordSchema } from '../../src/synth/records.js';
import { loadInstances } from '../../src/tasks/load.js';
import { ROOT } from '../cli/helpers.js';
import { MINIGYM_TASKS } from '../helpers/minigym.js';
import { startRft, waitFor } from '../loop/helpers.js';

/**
 * `rft tasks synth` as a user runs it, with the procedural strategy on one bundled repository:
 * killed mid-way and resumed it writes the same task file as an uninterrupted run; the tasks pass
 * `rft tasks validate`; `rft run` (SIMULATED policy) over them completes, once killed and resumed.
 */
const synthArgs = (out: string) => [
  'tasks', 'synth', '--from', MINIGYM_TASKS, '--instance-ids', 'minigym__unitkit-101', '--out', out,
  '--strategies', 'procedural', '--seed', '3', '--limit', '2', '--max-candidates', '6', '--timeout', '60', '--memory', '1g',
];
const candidatesIn = (out: string) => (existsSync(ledgerFile(out)) ? [...readRecords(ledgerFile(out), SynthRecordSchema)].filter((r) => r.type === 'candidate') : []);

describe('rft tasks synth from the command line', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-synth-cli-'));
  const uninterrupted = path.join(dir, 'a', 'tasks.jsonl');

  it('a run killed mid-way resumes from its ledger and writes the same task file as an uninterrupted one', async () => {
    const first = await startRft(synthArgs(uninterrupted)).done;
    expect(first.code).toBe(0);
    expect(first.stderr).toMatch(/ETA/);
    const tasks = loadInstances(uninterrupted);
    expect(tasks.length).toBeGreaterThan(0);
    expect(first.stdout).toContain(`${tasks.length} tasks written`);
    const report = JSON.parse(readFileSync(`${uninterrupted}.report.json`, 'utf8'));
    expect(report.by_strategy.procedural.valid).toBe(tasks.length);

    const killed = path.join(dir, 'b', 'tasks.jsonl');
    const run = startRft(synthArgs(killed));
    await waitFor(() => candidatesIn(killed).length >= 2, run, 'two candidates recorded');
    run.child.kill('SIGKILL');
    await run.done;
    const before = candidatesIn(killed).length;
    expect(before).toBeLessThan(candidatesIn(uninterrupted).length);
    expect(existsSync(killed)).toBe(false);

    const resumed = await startRft(synthArgs(killed)).done;
    expect(resumed.code).toBe(0);
    expect(resumed.stderr).toMatch(/resuming/);
    expect(readFileSync(killed, 'utf8')).toBe(readFileSync(uninterrupted, 'utf8'));
    // Each candidate was recorded once; the killed run's container was reaped.
    const indexes = candidatesIn(killed).map((r) => (r.type === 'candidate' ? r.index : -1));
    expect(new Set(indexes).size).toBe(indexes.length);
    const docker = await connectEngine();
    const left = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL.run}=${synthRunLabel(killed)}`] }) });
    expect(left).toHaveLength(0);
  }, 600_000);

  it('every synthesized task passes rft tasks validate', async () => {
    const count = loadInstances(uninterrupted).length;
    const result = await startRft(['tasks', 'validate', uninterrupted, '--image', 'synth', '--timeout', '120']).done;
    expect(result.stdout).toContain(`${count}/${count} tasks valid`);
    expect(result.code).toBe(0);
  }, 300_000);

  it('rft run over them with the SIMULATED policy completes, killed once and resumed', async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-synth-run-'));
    const args = ['run', path.join(ROOT, 'recipes/synth-demo.yaml'), '--runs-dir', runs, '--set', `tasks.train.path=${uninterrupted}`, '--set', `tasks.eval.path=${uninterrupted}`];
    const runDir = path.join(runs, 'synth-demo');
    const run = startRft(args);
    await waitFor(() => existsSync(runLayout.trajectories(runDir, 0)) && [...readTrajectories(runLayout.trajectories(runDir, 0))].length >= 2, run, 'sampling');
    run.child.kill('SIGKILL');
    await run.done;
    const resumed = await startRft(['resume', runDir]).done;
    expect(resumed.stderr).not.toMatch(/rft: /);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/run complete/);
    const trajectories = [...readTrajectories(runLayout.trajectories(runDir, 0))];
    const ids = new Set(loadInstances(uninterrupted).map((t) => t.instance_id));
    expect(trajectories.every((t) => ids.has(t.instance_id))).toBe(true);
    // The SIMULATED policy fixes synthesized tasks from their gold patches: some sample resolves.
    expect(resumed.stdout).toMatch(/M0\s+sim-base\s+[1-9]\d*\//);
  }, 900_000);
});
