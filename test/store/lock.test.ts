import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { acquireLock, processStartTicks, RunLockedError } from '../../src/store/lock.js';

function lockPath(): string {
  return path.join(mkdtempSync(path.join(tmpdir(), 'rft-lock-')), 'lock');
}

function fakeHolder(pid: number, startTicks: string | null): string {
  return JSON.stringify({ pid, host: hostname(), start_ticks: startTicks, acquired_at: '2026-01-01T00:00:00.000Z' });
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
    const other = spawn('true');
    const pid = other.pid!;
    await new Promise((resolve) => other.once('exit', resolve));
    writeFileSync(file, fakeHolder(pid, '1'));
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
});
