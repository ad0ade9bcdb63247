import { closeSync, openSync, readFileSync, renameSync, unlinkSync, writeSync, fsyncSync } from 'node:fs';
import { hostname } from 'node:os';
import { z } from 'zod';

export const LockInfoSchema = z.object({
  pid: z.number().int(),
  host: z.string(),
  /** Kernel start time of the process (Linux), so a recycled pid is not mistaken for the owner. */
  start_ticks: z.string().nullable(),
  acquired_at: z.string(),
});
export type LockInfo = z.infer<typeof LockInfoSchema>;

export class RunLockedError extends Error {
  constructor(
    readonly lockFile: string,
    readonly holder: LockInfo,
  ) {
    super(
      `another rft process (pid ${holder.pid} on ${holder.host}, since ${holder.acquired_at}) is driving this run; ` +
        `wait for it or stop it (lock: ${lockFile})`,
    );
    this.name = 'RunLockedError';
  }
}

export interface RunLock {
  readonly file: string;
  release(): void;
}

/**
 * Takes the run's lock so that two processes cannot drive one run. A lock left by a process
 * that no longer exists is taken over, with a warning.
 */
export function acquireLock(file: string, warn: (message: string) => void = () => {}): RunLock {
  const mine: LockInfo = { pid: process.pid, host: hostname(), start_ticks: processStartTicks(process.pid), acquired_at: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    if (tryCreate(file, mine)) return heldLock(file, mine);
    const holder = readHolder(file);
    if (holder === null) continue; // vanished or half-written by a racing taker: look again
    if (isAlive(holder)) throw new RunLockedError(file, holder);
    warn(`taking over the stale lock of pid ${holder.pid} (that process is gone): ${file}`);
    // Rename first, so that of two processes taking over the same stale lock only one succeeds.
    try {
      renameSync(file, `${file}.stale-${holder.pid}`);
      unlinkSync(`${file}.stale-${holder.pid}`);
    } catch {
      // another process took it over first; the next attempt sees its lock
    }
  }
  const holder = readHolder(file);
  if (holder) throw new RunLockedError(file, holder);
  throw new Error(`could not take the lock ${file}`);
}

function tryCreate(file: string, info: LockInfo): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    writeSync(fd, `${JSON.stringify(info)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Who holds a run's lock, read without taking it (rft status): null when nobody does — no lock
 * file, an unreadable one, or the lock of a process that is gone (a crashed or killed rft).
 */
export function liveLockHolder(file: string): LockInfo | null {
  const holder = readHolder(file);
  return holder !== null && isAlive(holder) ? holder : null;
}

function readHolder(file: string): LockInfo | null {
  try {
    return LockInfoSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  } catch {
    return null;
  }
}

function isAlive(holder: LockInfo): boolean {
  // A lock from another host cannot be checked from here: treat it as held.
  if (holder.host !== hostname()) return true;
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  // An exited process nobody reaped (a zombie: where init does not reap, as in containers) holds nothing.
  if (processState(holder.pid) === 'Z') return false;
  const ticks = processStartTicks(holder.pid);
  return holder.start_ticks === null || ticks === null || ticks === holder.start_ticks;
}

/** Field 3 of /proc/<pid>/stat: R, S, D, Z (zombie), …; null when unreadable. */
function processState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

/** Field 22 of /proc/<pid>/stat: when the process started, in clock ticks since boot. */
export function processStartTicks(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses; fields resume after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19] ?? null;
  } catch {
    return null;
  }
}

function heldLock(file: string, mine: LockInfo): RunLock {
  let held = true;
  const release = (): void => {
    if (!held) return;
    held = false;
    process.off('exit', release);
    const holder = readHolder(file);
    if (holder && holder.pid === mine.pid && holder.acquired_at === mine.acquired_at) {
      try {
        unlinkSync(file);
      } catch {
        // already gone
      }
    }
  };
  process.on('exit', release);
  return { file, release };
}
