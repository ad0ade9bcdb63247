import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runActivity } from '../../src/loop/gc.js';
import { acquireLock, liveLockHolder, lockState, processStartTicks, RunLockedError } from '../../src/store/lock.js';

function lockPath(): string {
  return path.join(mkdtempSync(path.join(tmpdir(), 'rft-lock-')), 'lock');
}

function fakeHolder(pid: number, startTicks: string | null): string {
  return JSON.stringify({ pid, host: hostname(), start_ticks: startTicks, acquired_at: '2026-01-01T00:00:00.000Z' });
}


/** Writes a lock held by a process that has exited (a stale lock): returns its pid. */
async function lockOfDeadProcess(file: string): Promise<number> {
  const other = spawn('true');
  const pid = other.pid!;
  await new Promise((resolve) => other.once('exit', resolve));
  writeFileSync(file, fakeHolder(pid, '1'));
  return pid;
}
describe('run lock', () => {
  it('is exclusive while held and free again once released', () => {
    const file = lockPath();
    const lock = acquireLock(file);
    expect(JSON.parse(readFileSync(file, 'utf8')).pid).toBe(process.pid);
    expect(() => acquireLock(file)).toThrow(RunLockedError);
    lock.release();
    expect(existsSync(file)).toBe(false);
    acquireLock(file).release();
  });

  it('refuses while another live process holds it', async () => {
    const file = lockPath();
    const other = spawn('sleep', ['30']);
    try {
      await new Promise((resolve) => other.once('spawn', resolve));
      writeFileSync(file, fakeHolder(other.pid!, processStartTicks(other.pid!)));
      expect(() => acquireLock(file)).toThrow(new RegExp(`pid ${other.pid}`));
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('takes over the lock of a dead process, with a warning', async () => {
    const file = lockPath();
    const pid = await lockOfDeadProcess(file);
    const warnings: string[] = [];
    const lock = acquireLock(file, (m) => warnings.push(m));
    expect(warnings).toEqual([expect.stringContaining(`stale lock of pid ${pid}`)]);
    expect(JSON.parse(readFileSync(file, 'utf8')).pid).toBe(process.pid);
    lock.release();
  });

  it('a live pid that started at another time is a recycled pid, so the lock is stale', () => {
    const file = lockPath();
    writeFileSync(file, fakeHolder(process.pid, 'not-my-start-time'));
    const warnings: string[] = [];
    acquireLock(file, (m) => warnings.push(m)).release();
    expect(warnings).toHaveLength(1);
  });

  it('an empty or unreadable lock is held during its grace period and stale after it, for acquire, gc and status alike', () => {
    for (const content of ['', '{"pid": 4']) {
      const file = lockPath();
      writeFileSync(file, content);
      expect(() => acquireLock(file)).toThrow(/could not take the lock .*(empty|unreadable).*perhaps being written/);
      expect(runActivity(path.dirname(file)).running).toBe(true);
      expect(lockState(file).state).toBe('held');
      const old = new Date(Date.now() - 11_000);
      utimesSync(file, old, old);
      expect(runActivity(path.dirname(file))).toEqual({ running: false, why: expect.stringMatching(/stale \((empty|unreadable) for 11 s/) });
      expect(liveLockHolder(file)).toBeNull();
      const warnings: string[] = [];
      const lock = acquireLock(file, (m) => warnings.push(m));
      expect(warnings).toEqual([expect.stringContaining('taking over the stale lock')]);
      expect(JSON.parse(readFileSync(file, 'utf8')).pid).toBe(process.pid);
      expect(runActivity(path.dirname(file)).running).toBe(true);
      expect(liveLockHolder(file)?.pid).toBe(process.pid);
      lock.release();
    }
  });

  it('a takeover left half-done by a dead process (its claim on the stale lock) does not block the next one', async () => {
    const file = lockPath();
    const pid = await lockOfDeadProcess(file);
    const ino = lstatSync(file).ino;
    // A claimer that died between claiming and replacing, and one of a lock that is long gone.
    symlinkSync(JSON.stringify({ pid, host: hostname(), start_ticks: '1' }), `${file}.claim-${ino}-0`);
    const lock = acquireLock(file);
    expect(JSON.parse(readFileSync(file, 'utf8')).pid).toBe(process.pid);
    expect(readdirSync(path.dirname(file))).toEqual(['lock']);
    lock.release();
  });

  it('a live claimer is left to finish its takeover', async () => {
    const file = lockPath();
    const pid = await lockOfDeadProcess(file);
    const ino = lstatSync(file).ino;
    symlinkSync(JSON.stringify({ pid: process.ppid, host: hostname(), start_ticks: processStartTicks(process.ppid) }), `${file}.claim-${ino}-0`);
    expect(() => acquireLock(file)).toThrow(/could not take the lock .*stale/);
    expect(JSON.parse(readFileSync(file, 'utf8')).pid).toBe(pid);
  });
});
