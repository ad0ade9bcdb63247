import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { CRASH_POINTS, crashPoint } from './crash-points.js';

/**
 * A write of run state that failed on the system's side (a full disk, an I/O error): nothing was
 * replaced, no temp file is left. Printed plainly (its message says what to do), not as a stack.
 */
export class WriteFailedError extends Error {
  readonly code: string | undefined;
  constructor(
    readonly file: string,
    override readonly cause: unknown,
  ) {
    const code = (cause as NodeJS.ErrnoException | null)?.code;
    super(`${file}: could not write it (${describeSystemError(cause)}); the old file, if any, is unchanged: free space and resume`);
    this.name = 'WriteFailedError';
    this.code = code;
  }
}

/** ENOSPC, EIO, … as `CODE: what it means`, without the syscall details. */
export function describeSystemError(cause: unknown): string {
  const code = (cause as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOSPC') return 'ENOSPC: no space left on device';
  if (code === 'EDQUOT') return 'EDQUOT: disk quota exceeded';
  return (cause as Error | null)?.message ?? String(cause);
}

/** A write or fsync the system failed (it has an errno code): not a read, a bug or a bad input. */
export function isWriteError(err: unknown): err is NodeJS.ErrnoException {
  const { code, syscall } = err as NodeJS.ErrnoException;
  return err instanceof Error && typeof code === 'string' && (syscall === 'write' || syscall === 'fsync');
}

/**
 * Replaces a file so that a reader (or a process killed mid-write) sees either the old
 * content or the new, never a mix: write a temp file beside it, fsync, rename, fsync the folder.
 */
export function writeFileAtomic(file: string, data: string | Buffer): void {
  writeFileAtomicWith(file, (put) => put(typeof data === 'string' ? Buffer.from(data, 'utf8') : data));
}

/**
 * writeFileAtomic for content made piece by piece, so that it is never held whole: `fill` calls
 * `put` once a piece. If `fill` throws, the temp file is removed and the old file stays.
 */
export function writeFileAtomicWith(file: string, fill: (put: (data: Buffer) => void) => void): void {
  const { fd, temp } = openTempBeside(file);
  try {
    fill((data) => writeAll(fd, data));
    fsyncSync(fd);
  } catch (err) {
    abandonTemp(fd, temp);
    throw isWriteError(err) ? new WriteFailedError(file, err) : err;
  }
  installTemp(fd, temp, file);
}

/**
 * Writes all of `data`: a short write (a disk filling up writes what fits and returns the count)
 * is continued, and the write after it throws (ENOSPC). A write of nothing is a failure too, never
 * a loop. The caller undoes what did land (a temp file is removed, an append is cut back).
 */
export function writeAll(fd: number, data: Buffer, offset = 0, length = data.length - offset): void {
  const end = offset + length;
  for (let at = offset; at < end; ) {
    const wrote = writeSync(fd, data, at, end - at);
    if (wrote <= 0) throw Object.assign(new Error(`EIO: a write wrote 0 of ${end - at} bytes`), { code: 'EIO', syscall: 'write' });
    at += wrote;
  }
}

/** A new temp file beside `file` (same folder, so the rename that installs it is atomic). */
function openTempBeside(file: string): { fd: number; temp: string } {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  return { fd: openSync(temp, 'wx', 0o644), temp };
}

function abandonTemp(fd: number, temp: string): void {
  closeSync(fd);
  unlinkSync(temp);
}

/** Renames the fsync'd temp file over `file` and makes the rename durable. */
function installTemp(fd: number, temp: string, file: string): void {
  closeSync(fd);
  crashPoint(CRASH_POINTS.atomicBeforeRename, file);
  renameSync(temp, file);
  crashPoint(CRASH_POINTS.atomicBeforeDirSync, file);
  fsyncDir(path.dirname(file));
}

export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
}

/** Makes a rename or a file creation in `dir` durable. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * writeFileAtomic for content that arrives as a stream (a container's archive, say), written as
 * it comes so that it is never held whole. More than `maxBytes` fails, leaving no file behind.
 */
export async function writeStreamAtomic(file: string, body: AsyncIterable<Buffer>, maxBytes: number): Promise<void> {
  const { fd, temp } = openTempBeside(file);
  try {
    let total = 0;
    for await (const chunk of body) {
      total += chunk.length;
      if (total > maxBytes) throw new Error(`${path.basename(file)}: more than ${maxBytes} bytes`);
      writeAll(fd, chunk);
    }
    fsyncSync(fd);
  } catch (err) {
    abandonTemp(fd, temp);
    throw isWriteError(err) ? new WriteFailedError(file, err) : err;
  }
  installTemp(fd, temp, file);
}
