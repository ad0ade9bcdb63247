import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, readSync, fstatSync } from 'node:fs';
import { processStartTicks } from '../store/lock.js';

/**
 * Long-lived helper processes (trainers, model servers): started detached in their own process
 * group so that they outlive an rft process that is killed (a resumed run re-attaches to them)
 * and so that the whole group (the shell, the trainer, its workers) can be stopped at once.
 */

export interface DetachedProcess {
  child: ChildProcess;
  pid: number;
  /** Kernel start time of the pid, to tell it from a later process that reuses the number. */
  startTicks: string | null;
}

export interface SpawnDetachedOptions {
  /** stdout and stderr are appended here. */
  logFile: string;
  cwd: string;
  env?: NodeJS.ProcessEnv;
}

/** Runs `script` with /bin/sh -c as the leader of a new process group (setsid), output appended to a log. */
export async function spawnDetached(script: string, options: SpawnDetachedOptions): Promise<DetachedProcess> {
  const fd = openSync(options.logFile, 'a', 0o644);
  let child: ChildProcess;
  try {
    child = spawn('/bin/sh', ['-c', script], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  // The parent must be free to exit while the child runs on (re-attached by a later run).
  child.unref();
  const pid = child.pid!;
  return { child, pid, startTicks: processStartTicks(pid) };
}

interface ProcStat {
  state: string;
  pgrp: number;
}

function readProcStat(pid: number | string): ProcStat | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0] ?? '?', pgrp: Number(rest[2]) };
  } catch {
    return null;
  }
}

const procAvailable = (() => {
  try {
    readFileSync('/proc/self/stat', 'utf8');
    return true;
  } catch {
    return false;
  }
})();

/**
 * Whether `pid` is still the running process that was recorded: it exists, is not a zombie (an
 * orphan whose exit nobody reaped, which happens when PID 1 does not reap), and, when start
 * ticks were recorded, started at the same time.
 */
export function isProcessAlive(pid: number, startTicks: string | null): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (!procAvailable) return true;
  const stat = readProcStat(pid);
  if (stat === null) return false;
  if (stat.state === 'Z' || stat.state === 'X') return false;
  if (startTicks !== null && processStartTicks(pid) !== startTicks) return false;
  return true;
}

/** Live (non-zombie) members of process group `pgid`. */
export function groupMembers(pgid: number): number[] {
  if (!procAvailable) {
    try {
      process.kill(-pgid, 0);
      return [pgid];
    } catch {
      return [];
    }
  }
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readProcStat(entry);
    if (stat && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X') members.push(Number(entry));
  }
  return members;
}

export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

export interface KillGroupOptions {
  /** Time between SIGTERM and SIGKILL. */
  graceMs?: number;
  pollMs?: number;
}

/**
 * Stops a whole process group: SIGTERM, then SIGKILL to what is left after the grace period.
 * Resolves true once no live member remains (false if some survive even SIGKILL, e.g. stuck in
 * the kernel).
 */
export async function killGroup(pgid: number, options: KillGroupOptions = {}): Promise<boolean> {
  const graceMs = options.graceMs ?? 10_000;
  const pollMs = options.pollMs ?? 100;
  if (groupMembers(pgid).length === 0) return true;
  signalGroup(pgid, 'SIGTERM');
  if (await waitUntil(() => groupMembers(pgid).length === 0, graceMs, pollMs)) return true;
  signalGroup(pgid, 'SIGKILL');
  return waitUntil(() => groupMembers(pgid).length === 0, 5_000, pollMs);
}

async function waitUntil(done: () => boolean, limitMs: number, pollMs: number): Promise<boolean> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    if (done()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(pollMs);
  }
}

/** The last `lines` lines of a (possibly large) log file, read from its end; '' if it does not exist. */
export function tailFile(file: string, lines = 20, maxBytes = 64 * 1024): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = fstatSync(fd).size;
    const length = Math.min(size, maxBytes);
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    const text = buffer.toString('utf8').replace(/\s+$/, '');
    return text.split('\n').slice(-lines).join('\n');
  } finally {
    closeSync(fd);
  }
}

/** Sleeps `ms`; with a signal, rejects with its reason as soon as it is aborted. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const error = new Error(typeof reason === 'string' ? reason : 'aborted');
  error.name = 'AbortError';
  return error;
}
