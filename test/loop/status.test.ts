import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runLayout } from '../../src/loop/layout.js';
import { runStatus, type RunStatus } from '../../src/loop/status.js';
import { loadRecipe } from '../../src/recipe/load.js';
import { Ledger } from '../../src/store/ledger.js';
import { processStartTicks } from '../../src/store/lock.js';
import { RunDir } from '../../src/store/run-dir.js';
import { TrajectoryLedger } from '../../src/store/trajectories.js';
import { VerdictSchema } from '../../src/verify/verdict.js';
import { makeTrajectory, makeVerdict, patchFor } from '../sft/records.js';
import { LOOP_TASKS, writeLoopRecipe } from './helpers.js';

/** A run whose iteration 0 is sampled: two trajectories and their verdicts, the phase marked done in state.json. */
function sampledRun(): RunDir {
  const run = RunDir.open({ runsDir: mkdtempSync(path.join(tmpdir(), 'rft-status-')), loaded: loadRecipe(writeLoopRecipe(null, { name: 'status-test' })) });
  const trajectories = TrajectoryLedger.open(runLayout.trajectories(run.dir, 0));
  const verdicts = Ledger.open(runLayout.verdicts(run.dir, 0), VerdictSchema).ledger;
  for (const [s, id] of [LOOP_TASKS[0]!, LOOP_TASKS[1]!].entries()) {
    const patch = patchFor(`p${s}`);
    trajectories.append(makeTrajectory({ instance_id: id, sample_index: 0, patch }));
    verdicts.append(makeVerdict(id, patch, 'resolved'));
  }
  trajectories.close();
  verdicts.close();
  run.writeState({ ...run.readState(), phases: { 'iter-0/sample': { status: 'done', updated_at: 'x', note: null } } });
  return run;
}

const phase = (status: RunStatus, name: string) => status.phases.find((p) => p.phase === name)!;

describe('rft status tells the truth', () => {
  it('a phase is running only while a live rft process holds the lock; stopped once it is gone', async () => {
    const run = sampledRun();
    // Begun but not finished (what a killed rft leaves): state says running.
    run.writeState({ ...run.readState(), phases: { ...run.readState().phases, 'iter-1/sample': { status: 'running', updated_at: 'x', note: null } } });

    // This process holds the lock (RunDir.open took it).
    const held = runStatus(run.dir);
    expect(held.driver).toMatchObject({ pid: process.pid, host: hostname() });
    expect(phase(held, 'iter-1/sample').status).toBe('running');
    expect(phase(held, 'iter-0/sample').status).toBe('done');

    run.close();
    const released = runStatus(run.dir);
    expect(released.driver).toBeNull();
    expect(phase(released, 'iter-1/sample').status).toBe('stopped');
    expect(released.complete).toBe(false);

    // A lock left by a process that is gone (rft killed with SIGKILL): nobody runs the run.
    const gone = spawn('true');
    await new Promise((resolve) => gone.once('exit', resolve));
    writeFileSync(path.join(run.dir, 'lock'), JSON.stringify({ pid: gone.pid, host: hostname(), start_ticks: '1', acquired_at: 'x' }));
    expect(phase(runStatus(run.dir), 'iter-1/sample').status).toBe('stopped');

    // …while a live one's lock (pid and start time match) means running.
    const live = spawn('sleep', ['30']);
    try {
      await new Promise((resolve) => live.once('spawn', resolve));
      writeFileSync(path.join(run.dir, 'lock'), JSON.stringify({ pid: live.pid, host: hostname(), start_ticks: processStartTicks(live.pid!), acquired_at: 'x' }));
      const driven = runStatus(run.dir);
      expect(driven.driver?.pid).toBe(live.pid);
      expect(phase(driven, 'iter-1/sample').status).toBe('running');
    } finally {
      live.kill('SIGKILL');
    }
  });

  it('a ledger ending in a torn line: that line is not recorded, and the phase is not done whatever state.json says', () => {
    const run = sampledRun();
    run.close();
    expect(phase(runStatus(run.dir), 'iter-0/sample')).toMatchObject({ status: 'done', detail: '2 trajectories, 2 verdicts' });

    // A third trajectory cut off mid-write (no newline): resume and select do not read it.
    const cut = '{"instance_id":"minigym__unitkit-101","sample_index":0,"pat';
    appendFileSync(runLayout.trajectories(run.dir, 0), cut);
    const torn = phase(runStatus(run.dir), 'iter-0/sample');
    expect(torn.status).toBe('stopped');
    expect(torn.detail).toMatch(/^2 trajectories, 2 verdicts; iter-0\/trajectories\.jsonl ends in a torn line of (\d+) bytes, not recorded/);
    expect(/of (\d+) bytes/.exec(torn.detail)![1]).toBe(String(cut.length));
    expect(runStatus(run.dir).complete).toBe(false);
  });

  it('a torn verdict line is not counted either', () => {
    const run = sampledRun();
    run.close();
    appendFileSync(runLayout.verdicts(run.dir, 0), '{"instance_id":"x","patch_hash":"');
    const torn = phase(runStatus(run.dir), 'iter-0/sample');
    expect(torn).toMatchObject({ status: 'stopped' });
    expect(torn.detail).toMatch(/^2 trajectories, 2 verdicts; iter-0\/verdicts\.jsonl ends in a torn line/);
  });
});
