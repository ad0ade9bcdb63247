import { closeSync, existsSync, fstatSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { writeFileAtomic } from './atomic.js';
import { CRASH_POINTS, crashArmed, crashPoint } from './crash-points.js';

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

export interface OpenedLedger<T> {
  ledger: Ledger<T>;
  records: T[];
  /** Bytes of a torn last line that were cut off on open (0 when the file was whole). */
  droppedTornBytes: number;
}

/**
 * An append-only JSONL file: a record is written once, fully, with fsync, then never edited.
 * A write interrupted by a crash can only leave a last line without its newline; opening the
 * ledger cuts that line off (its writer never returned, so its work is redone on resume).
 */
export class Ledger<T> {
  private fd: number | null;

  private constructor(
    readonly file: string,
    private readonly schema: z.ZodType<T>,
    fd: number,
  ) {
    this.fd = fd;
  }

  static open<T>(file: string, schema: z.ZodType<T>, onTorn?: (bytes: number) => void): OpenedLedger<T> {
    mkdirSync(path.dirname(file), { recursive: true });
    const { records, validBytes, totalBytes } = readLedgerFile(file, schema);
    let droppedTornBytes = 0;
    if (validBytes < totalBytes) unshare(file);
    const fd = openSync(file, existsSync(file) ? 'r+' : 'a+', 0o644);
    if (validBytes < totalBytes) {
      droppedTornBytes = totalBytes - validBytes;
      ftruncateSync(fd, validBytes);
      fsyncSync(fd);
      onTorn?.(droppedTornBytes);
    }
    closeSync(fd);
    const ledger = new Ledger(file, schema, openSync(file, 'a', 0o644));
    return { ledger, records, droppedTornBytes };
  }

  /** Validates and appends one record; returns once it is on disk. */
  append(record: T): void {
    if (this.fd === null) throw new Error(`ledger ${this.file} is closed`);
    const checked = this.schema.parse(record);
    if (fstatSync(this.fd).nlink > 1) {
      // Shared with another run by a hard link (rft fork): write to a copy of our own.
      closeSync(this.fd);
      this.fd = null;
      unshare(this.file);
      this.fd = openSync(this.file, 'a', 0o644);
    }
    const line = Buffer.from(`${JSON.stringify(checked)}\n`, 'utf8');
    if (crashArmed(CRASH_POINTS.ledgerMidLine, this.file)) {
      // Test-only fault injection (crash-points.ts): the line in two writes, killed between them.
      const half = Math.floor(line.length / 2);
      writeSync(this.fd, line, 0, half);
      crashPoint(CRASH_POINTS.ledgerMidLine, this.file);
      writeSync(this.fd, line, half);
    } else {
      writeSync(this.fd, line);
    }
    crashPoint(CRASH_POINTS.ledgerBeforeFsync, this.file);
    fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}

/**
 * Gives a file hard-linked from another run (rft fork shares ledgers that way) an inode of its
 * own — a copy renamed over the link — so that changing it cannot change the other run's file.
 */
export function unshare(file: string): void {
  if (!existsSync(file) || statSync(file).nlink <= 1) return;
  writeFileAtomic(file, readFileSync(file));
}

/** Reads a ledger without changing it: the records, and how many leading bytes are whole lines. */
export function readLedgerFile<T>(file: string, schema: z.ZodType<T>): { records: T[]; validBytes: number; totalBytes: number } {
  if (!existsSync(file)) return { records: [], validBytes: 0, totalBytes: 0 };
  const buffer = readFileSync(file);
  const lastNewline = buffer.lastIndexOf(0x0a);
  const validBytes = lastNewline + 1;
  const body = buffer.subarray(0, validBytes).toString('utf8');
  const lines = body.length === 0 ? [] : body.slice(0, -1).split('\n');
  const records = lines.map((text, i) => parseLine(file, i + 1, text, schema));
  return { records, validBytes, totalBytes: buffer.length };
}

function parseLine<T>(file: string, lineNo: number, text: string, schema: z.ZodType<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new LedgerCorruptError(file, lineNo, `not valid JSON (${(err as Error).message})`);
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new LedgerCorruptError(file, lineNo, `field ${issue.path.map(String).join('.') || '(record)'}: ${issue.message}`);
  }
  return result.data;
}
