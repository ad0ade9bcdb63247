import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, lstatSync, openSync, readFileSync, readlinkSync, renameSync, statSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
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
 * How long an empty or unreadable lock file may be young enough to be one being written. rft
 * itself never shows a half-written lock (it writes a private file, then links it into place), so
 * such a lock is an older rft's or a damaged disk's; once older than this (by mtime) it is stale.
 */
export const LOCK_GRACE_MS = 10_000;

/** A run's lock as read without taking it: the one judgement acquireLock, `rft gc` and `rft status` share. */
export type LockState =
  | { state: 'free'; why: string }
  | { state: 'held'; holder: LockInfo | null; why: string }
  | { state: 'stale'; holder: LockInfo | null; why: string };

/**
 * Reads a run's lock and judges it. Held: a live process on this host owns it, another host's
 * process does (it cannot be checked from here), or it is empty/unreadable and younger than
 * LOCK_GRACE_MS (perhaps being written). Stale: its process is gone, a zombie, or another process
 * under a recycled pid; or it is empty/unreadable and older than the grace period.
 */
export function lockState(file: string, now: number = Date.now()): LockState {
  let text: string;
  let mtimeMs: number;
  try {
    mtimeMs = statSync(file).mtimeMs;
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'free', why: 'no lock: nothing drives it' };
    return { state: 'held', holder: null, why: `its lock ${file} cannot be read (${(err as Error).message}): assumed held` };
  }
  return judge(file, text, mtimeMs, now);
}

function judge(file: string, text: string, mtimeMs: number, now: number): Exclude<LockState, { state: 'free' }> {
  const holder = parseHolder(text);
  if (holder === null) {
    const age = Math.max(0, now - mtimeMs);
    const what = text.length === 0 ? 'empty' : 'unreadable';
    if (age < LOCK_GRACE_MS) return { state: 'held', holder: null, why: `its lock ${file} is ${what} and ${(age / 1000).toFixed(1)} s old (perhaps being written): assumed held for ${LOCK_GRACE_MS / 1000} s` };
    return { state: 'stale', holder: null, why: `its lock is stale (${what} for ${(age / 1000).toFixed(0)} s: its writer is gone)` };
  }
  if (holder.host !== hostname()) return { state: 'held', holder, why: `locked by pid ${holder.pid} on ${holder.host}, which cannot be checked from here` };
  const gone = whyGone(holder);
  if (gone !== null) return { state: 'stale', holder, why: `its lock is stale (${gone})` };
  return { state: 'held', holder, why: `driven by pid ${holder.pid} since ${holder.acquired_at}` };
}

/**
 * Takes the run's lock so that two processes cannot drive one run. A stale lock (see lockState)
 * is taken over, with a warning; of any number of processes taking over the same stale lock at
 * once, exactly one wins (see takeOver for why).
 */
export function acquireLock(file: string, warn: (message: string) => void = () => {}): RunLock {
  const mine: LockInfo = { pid: process.pid, host: hostname(), start_ticks: processStartTicks(process.pid), acquired_at: new Date().toISOString() };
  const id = `${process.pid}-${randomBytes(6).toString('hex')}`;
  let last: LockState | null = null;
  for (let attempt = 0; attempt < 20; attempt++) {
    if (tryCreate(file, mine, id)) return heldLock(file, mine);
    let ino: number;
    try {
      ino = lstatSync(file).ino;
    } catch {
      continue; // released meanwhile: create again
    }
    last = lockState(file);
    if (last.state === 'free') continue;
    if (last.state === 'held') break;
    if (takeOver(file, ino, mine, id)) {
      warn(`taking over the stale lock${last.holder ? ` of pid ${last.holder.pid}` : ''} ${last.why.replace(/^its lock is stale /, '')}: ${file}`);
      return heldLock(file, mine);
    }
    // Another process took it over, or is taking it over now: look again.
  }
  if (last?.state === 'held' && last.holder) throw new RunLockedError(file, last.holder);
  const now = lockState(file);
  if (now.state === 'held' && now.holder) throw new RunLockedError(file, now.holder);
  throw new Error(`could not take the lock ${file}: ${now.why}`);
}

/**
 * The lock appears whole or not at all: the record is written and synced to a private file, then
 * linked under the lock's name (link fails if the name exists, like O_EXCL).
 */
function tryCreate(file: string, info: LockInfo, id: string): boolean {
  const temp = writePrivate(file, info, id);
  try {
    linkSync(temp, file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkQuiet(temp);
  }
}

function writePrivate(file: string, info: LockInfo, id: string): string {
  const temp = `${file}.new-${id}`;
  const fd = openSync(temp, 'w', 0o644);
  try {
    writeSync(fd, `${JSON.stringify(info)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return temp;
}

/** Who a takeover claim belongs to: the target of its symbolic link, so it is never half-written. */
const ClaimOwnerSchema = z.object({ pid: z.number().int(), host: z.string(), start_ticks: z.string().nullable() });

/**
 * Replaces the stale lock whose inode is `ino`; true if this process now holds the lock.
 *
 * Why exactly one of many racing processes wins. rename() replaces whatever the lock's name holds
 * when it runs, so a process that judged the lock stale must not rename over it unless nobody else
 * can have replaced it since. That right is a claim on the stale lock's inode:
 * 1. Pin the inode with a private hard link (the probe), check it is still the lock's inode and
 *    judge it stale again from the probe. While the probe exists the inode cannot be freed, so its
 *    number cannot come back as a newer lock's (no ABA).
 * 2. Claim it by creating the symbolic link `lock.claim-<ino>-<g>`, whose target names this
 *    process. symlink() fails if the name exists, so one process wins generation g. A claim whose
 *    owner is alive means "being taken over": give up. A claim whose owner is dead (it crashed
 *    mid-takeover) is skipped by claiming generation g+1; claims are never deleted while their
 *    inode is the lock, so no generation can be won twice.
 * 3. The winner checks that the lock's name still holds the inode. Nobody else can change it from
 *    here on: fresh takers fail (the name exists), other claimers of this inode lost their
 *    generation or are behind a live claim (this one), and earlier claimers are dead (dead
 *    processes do nothing) or lost. If a dead earlier claimer had already replaced it, the check
 *    fails and this process looks again. Then it renames its own whole record over the name.
 * No timing is assumed except for empty or unreadable locks (stale by age, LOCK_GRACE_MS).
 */
function takeOver(file: string, ino: number, mine: LockInfo, id: string): boolean {
  const probe = `${file}.probe-${id}`;
  try {
    linkSync(file, probe);
  } catch {
    return false; // the name is gone or changed: look again
  }
  const claims: string[] = []; // dead claimers' claims of this inode, then ours last
  let ours: string | null = null;
  let won = false;
  try {
    const st = lstatSync(probe);
    if (st.ino !== ino) return false;
    if (judge(file, readFileSync(probe, 'utf8'), st.mtimeMs, Date.now()).state !== 'stale') return false;
    const owner = JSON.stringify({ pid: mine.pid, host: mine.host, start_ticks: mine.start_ticks });
    for (let generation = 0; ; generation++) {
      const claim = `${file}.claim-${ino}-${generation}`;
      try {
        symlinkSync(owner, claim);
        ours = claim;
        claims.push(claim);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      let other: z.infer<typeof ClaimOwnerSchema>;
      try {
        other = ClaimOwnerSchema.parse(JSON.parse(readlinkSync(claim)));
      } catch {
        return false; // removed by a winner that finished (the lock is another inode now), or not ours to judge
      }
      if (other.host !== hostname() || whyGone({ ...other, acquired_at: '' }) === null) return false; // being taken over
      claims.push(claim); // a dead claimer's: removed with ours once the lock is replaced
    }
    if (lstatSync(file).ino !== ino) return false;
    const temp = writePrivate(file, mine, id);
    try {
      renameSync(temp, file);
    } catch (err) {
      unlinkQuiet(temp);
      throw err;
    }
    won = true;
    return true;
  } finally {
    // Claims go only once the lock's name holds another inode: after a win, or (a loss) our own
    // claim of a generation we won when the lock had already been replaced by someone else.
    if (won) for (const claim of claims) unlinkQuiet(claim);
    else if (ours !== null) {
      let replaced = false;
      try {
        replaced = lstatSync(file).ino !== ino;
      } catch {
        replaced = true;
      }
      if (replaced) unlinkQuiet(ours);
    }
    unlinkQuiet(probe);
  }
}

function unlinkQuiet(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // gone already
  }
}

/**
 * Who holds a run's lock, read without taking it (rft status): null when nobody does — no lock
 * file, or a stale one (see lockState). An empty lock in its grace period has no holder to show.
 */
export function liveLockHolder(file: string): LockInfo | null {
  const state = lockState(file);
  return state.state === 'held' ? state.holder : null;
}

function parseHolder(text: string): LockInfo | null {
  try {
    return LockInfoSchema.parse(JSON.parse(text));
  } catch {
    return null;
  }
}

function readHolder(file: string): LockInfo | null {
  try {
    return parseHolder(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

/** Why a lock holder on this host no longer holds anything, or null while it is alive. */
function whyGone(holder: LockInfo): string | null {
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return `pid ${holder.pid} is gone`;
  }
  // An exited process nobody reaped (a zombie: where init does not reap, as in containers) holds nothing.
  const state = processState(holder.pid);
  if (state === 'Z' || state === 'X') return `pid ${holder.pid} has exited`;
  const ticks = processStartTicks(holder.pid);
  if (holder.start_ticks !== null && ticks !== null && ticks !== holder.start_ticks) return `pid ${holder.pid} is another process now`;
  return null;
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
