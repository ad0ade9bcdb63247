import { closeSync, copyFileSync, existsSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readdirSync, readSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import type { z } from 'zod';
import { describeSystemError, fsyncDir, writeAll } from './atomic.js';
import { CRASH_POINTS, crashArmed, crashPoint } from './crash-points.js';

/**
 * Append-only JSONL ledgers and the ONE way to read them: record by record, memory bounded by a
 * read chunk plus the largest record, never by the ledger (design §8: at SWE-Gym size a ledger is
 * gigabytes; V8 cannot hold a string over ~512 MB).
 */

/** A ledger line that is neither valid JSON nor a valid record: the file needs a human. */
export class LedgerCorruptError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly detail: string,
  ) {
    super(`${file}:${line}: ${detail} (the ledger is append-only; fix or remove this line by hand, nothing was changed)`);
    this.name = 'LedgerCorruptError';
  }
}

/** Where one record's line lies in its ledger (bytes, without the newline). */
export interface LedgerLocation {
  offset: number;
  length: number;
  /** 1-based line number, for messages. */
  line: number;
  /** The part the line is in, when it is a shard's ledger rather than the one named (see ledgerParts). */
  file?: string;
}

/** One whole line of a ledger. `bytes` is a view into the reader's buffer: valid only until the next line is asked for. */
export interface LedgerLine extends LedgerLocation {
  bytes: Buffer;
}

const CHUNK_BYTES = 8 * 1024 * 1024;

/** Where the shards of a cluster run keep their own ledgers: `<dir>/shards/<i>/<name>` beside `<dir>/<name>`. */
export const SHARDS_DIR = 'shards';

/** Shard `shard`'s own part of the ledger `file` (a worker appends there; readers of `file` see it). */
export function shardLedgerFile(file: string, shard: number): string {
  return path.join(path.dirname(file), SHARDS_DIR, String(shard), path.basename(file));
}

/**
 * The files that make up a ledger: the one named, then each shard's part that exists, by shard
 * number. Shards write disjoint records (each its own instances), and every reader orders records
 * by their keys, never by where they were found, so which shard finished first changes nothing.
 */
export function ledgerParts(file: string): string[] {
  const dir = path.join(path.dirname(file), SHARDS_DIR);
  if (!existsSync(dir)) return [file];
  const shards = readdirSync(dir)
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .sort((a, b) => a - b);
  return [file, ...shards.map((i) => shardLedgerFile(file, i)).filter((part) => existsSync(part))];
}

/**
 * Every whole line of a ledger, in order: the file named, then its shards' parts (ledgerParts;
 * a line of a part carries `file`). A last line without its newline is a torn write (or one being
 * written by a live shard) and is not yielded (Ledger.open cuts it off). `from` resumes within
 * the named file only. Memory: one chunk plus the longest line.
 */
export function* ledgerLines(file: string, chunkBytes = CHUNK_BYTES, from?: { offset: number; line: number }): Generator<LedgerLine> {
  if (from !== undefined) {
    yield* fileLines(file, chunkBytes, from);
    return;
  }
  for (const part of ledgerParts(file)) {
    if (part === file) yield* fileLines(file, chunkBytes, { offset: 0, line: 0 });
    else for (const line of fileLines(part, chunkBytes, { offset: 0, line: 0 })) yield Object.assign(line, { file: part });
  }
}

function* fileLines(file: string, chunkBytes: number, from: { offset: number; line: number }): Generator<LedgerLine> {
  if (!existsSync(file)) return;
  const fd = openSync(file, 'r');
  let buf = Buffer.allocUnsafe(chunkBytes);
  // `from`: resume after lines already read (an index extended with what was appended since).
  let base = from.offset; // file offset of buf[0]
  let len = 0; // valid bytes in buf
  let lineNo = from.line;
  try {
    for (;;) {
      if (len === buf.length) {
        const bigger = Buffer.allocUnsafe(buf.length * 2);
        buf.copy(bigger, 0, 0, len);
        buf = bigger;
      }
      const read = readSync(fd, buf, len, buf.length - len, base + len);
      if (read === 0) break;
      const searchFrom = len;
      len += read;
      let start = 0;
      let nl = buf.indexOf(0x0a, searchFrom);
      while (nl !== -1 && nl < len) {
        lineNo += 1;
        yield { bytes: buf.subarray(start, nl), offset: base + start, length: nl - start, line: lineNo };
        start = nl + 1;
        nl = buf.indexOf(0x0a, start);
      }
      if (start > 0) {
        buf.copy(buf, 0, start, len);
        base += start;
        len -= start;
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Parses and validates one line; errors name the file, the line and the field. */
export function parseLedgerLine<T>(file: string, lineNo: number, text: string, schema: z.ZodType<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new LedgerCorruptError(file, lineNo, `not valid JSON (${(err as Error).message})`);
  }
  return checkRecord(file, lineNo, value, schema);
}

export function checkRecord<T>(file: string, lineNo: number, value: unknown, schema: z.ZodType<T>): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new LedgerCorruptError(file, lineNo, `field ${issue.path.map(String).join('.') || '(record)'}: ${issue.message}`);
  }
  return result.data;
}

/** The records of a ledger, one at a time, each validated (a missing file has none). */
export function* readRecords<T>(file: string, schema: z.ZodType<T>): Generator<T> {
  for (const line of ledgerLines(file)) yield parseLedgerLine(line.file ?? file, line.line, line.bytes.toString('utf8'), schema);
}

/** How many whole lines a ledger holds (no record is parsed). */
export function countLines(file: string): number {
  let n = 0;
  for (const _ of ledgerLines(file)) n += 1;
  return n;
}

/** How many leading bytes of a file are whole lines, found from its end (the file is not read). */
export function wholeLinesEnd(file: string): { validBytes: number; totalBytes: number } {
  if (!existsSync(file)) return { validBytes: 0, totalBytes: 0 };
  const fd = openSync(file, 'r');
  try {
    const totalBytes = fstatSync(fd).size;
    const buf = Buffer.allocUnsafe(64 * 1024);
    let end = totalBytes;
    while (end > 0) {
      const start = Math.max(0, end - buf.length);
      const read = readSync(fd, buf, 0, end - start, start);
      const nl = buf.subarray(0, read).lastIndexOf(0x0a);
      if (nl !== -1) return { validBytes: start + nl + 1, totalBytes };
      end = start;
    }
    return { validBytes: 0, totalBytes };
  } finally {
    closeSync(fd);
  }
}

export interface OpenedLedger<T> {
  ledger: Ledger<T>;
  /** Bytes of a torn last line that were cut off on open (0 when the file was whole). */
  droppedTornBytes: number;
}

export interface LedgerOptions<T> {
  onTorn?: (bytes: number) => void;
  /**
   * What is written for a record (after validation): the record itself by default. A compact
   * layout writes its side files here, durably, before the line that refers to them.
   */
  encode?: (record: T) => unknown;
  /**
   * false: no fsync per record, one at close — for bulk writers that are redone whole if
   * interrupted (a generated benchmark pool, a conversion into a new file), never for run state.
   */
  fsyncEach?: boolean;
}

/**
 * An append-only JSONL file: a record is written once, fully, with fsync, then never edited.
 * A write interrupted by a crash can only leave a last line without its newline; opening the
 * ledger cuts that line off (its writer never returned, so its work is redone on resume).
 * Opening reads nothing but the file's tail: read records with readRecords (or a typed reader).
 */
export class Ledger<T> {
  private fd: number | null;

  private constructor(
    readonly file: string,
    private readonly schema: z.ZodType<T>,
    private readonly encode: ((record: T) => unknown) | undefined,
    fd: number,
    private readonly fsyncEach = true,
  ) {
    this.fd = fd;
  }

  static open<T>(file: string, schema: z.ZodType<T>, options: LedgerOptions<T> | ((bytes: number) => void) = {}): OpenedLedger<T> {
    const opts = typeof options === 'function' ? { onTorn: options } : options;
    mkdirSync(path.dirname(file), { recursive: true });
    const droppedTornBytes = dropTornTail(file);
    if (droppedTornBytes > 0) opts.onTorn?.(droppedTornBytes);
    const ledger = new Ledger(file, schema, opts.encode, openSync(file, 'a', 0o644), opts.fsyncEach ?? true);
    return { ledger, droppedTornBytes };
  }

  /**
   * Validates and appends one record; returns once it is on disk. If the append fails (a full
   * disk) the file is left whole (see appendDurably) and this ledger may append again later.
   */
  append(record: T): void {
    if (this.fd === null) throw new Error(`ledger ${this.file} is closed${this.broken ? ` (${this.broken})` : ''}`);
    const checked = this.schema.parse(record);
    const stored = this.encode ? this.encode(checked) : checked;
    this.fd = ownedFd(this.file, this.fd);
    try {
      appendDurably(this.file, this.fd, Buffer.from(`${JSON.stringify(stored)}\n`, 'utf8'), this.fsyncEach);
    } catch (err) {
      // Not cut back: a torn line may end the file; never append after it (reopening cuts it).
      if (err instanceof AppendError && !err.cutBack) this.closeBroken(err.message);
      throw err;
    }
  }

  private broken: string | null = null;

  private closeBroken(reason: string): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    this.broken = reason;
  }

  close(): void {
    if (this.fd !== null) {
      if (!this.fsyncEach) fsyncSync(this.fd);
      closeSync(this.fd);
    }
    this.fd = null;
  }
}

/**
 * An append that failed (a full disk, an I/O error). `cutBack` says whether the file was cut back
 * to where it ended before the append (it then holds whole lines only, and the same writer may
 * append again once the cause is gone); when not, the writer is closed and the next open of the
 * file cuts the torn line. `code` is the system error's (ENOSPC, EIO, …).
 */
export class AppendError extends Error {
  readonly code: string | undefined;
  constructor(
    readonly file: string,
    readonly bytes: number,
    readonly cutBack: boolean,
    override readonly cause: unknown,
  ) {
    const code = (cause as NodeJS.ErrnoException | null)?.code;
    const why = describeSystemError(cause);
    super(
      `${file}: could not append ${bytes} bytes (${why}); ` +
        (cutBack
          ? 'the file was cut back to its last whole line: nothing recorded before is lost; free space and resume'
          : 'the torn line is cut off when the file is next opened: nothing recorded before is lost; free space and resume'),
    );
    this.name = 'AppendError';
    this.code = code;
  }
}

/**
 * The fd to append to `file` with: `fd` itself, or a new one when the file is shared with another
 * run by a hard link (rft fork) and is first given an inode of its own (`fd` is then closed).
 */
export function ownedFd(file: string, fd: number): number {
  if (fstatSync(fd).nlink <= 1) return fd;
  unshare(file); // if this fails (a full disk), `fd` stays open and usable: the next append tries again
  const own = openSync(file, 'a', 0o644);
  closeSync(fd);
  return own;
}

/**
 * Appends bytes to an open append-only file (opened by ownedFd) and fsyncs: all of them, or none.
 * A short write is continued; a write or fsync that fails cuts the file back to its size before
 * the append (ftruncate, fsync) and throws an AppendError: a full disk never leaves a partial line
 * for the next append to be glued onto.
 */
export function appendDurably(file: string, fd: number, bytes: Buffer, fsync = true): void {
  const before = fstatSync(fd).size;
  try {
    if (crashArmed(CRASH_POINTS.ledgerMidLine, file)) {
      // Test-only fault injection (crash-points.ts): the bytes in two writes, killed between them.
      const half = Math.floor(bytes.length / 2);
      writeAll(fd, bytes, 0, half);
      crashPoint(CRASH_POINTS.ledgerMidLine, file);
      writeAll(fd, bytes, half);
    } else {
      writeAll(fd, bytes);
    }
    crashPoint(CRASH_POINTS.ledgerBeforeFsync, file);
    if (fsync) fsyncSync(fd);
  } catch (err) {
    let cutBack = true;
    try {
      ftruncateSync(fd, before);
      fsyncSync(fd);
    } catch {
      cutBack = false;
    }
    throw new AppendError(file, bytes.length, cutBack, err);
  }
}

/** Cuts a torn last line off an append-only file (unsharing it first); returns the bytes cut. */
export function dropTornTail(file: string): number {
  const { validBytes, totalBytes } = wholeLinesEnd(file);
  if (validBytes === totalBytes) return 0;
  unshare(file);
  const fd = openSync(file, 'r+');
  try {
    ftruncateSync(fd, validBytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return totalBytes - validBytes;
}

/**
 * Gives a file hard-linked from another run (rft fork shares ledgers that way) an inode of its
 * own — a copy renamed over the link — so that changing it cannot change the other run's file.
 * The copy is made by the kernel (no size limit, nothing held in memory).
 */
export function unshare(file: string): void {
  if (!existsSync(file) || statSync(file).nlink <= 1) return;
  const dir = path.dirname(file);
  const temp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    copyFileSync(file, temp);
    const fd = openSync(temp, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    if (existsSync(temp)) unlinkSync(temp);
    throw err;
  }
  renameSync(temp, file);
  fsyncDir(dir);
}
