import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { appendDurably, dropTornTail, LedgerCorruptError } from './ledger.js';

/**
 * A content-addressed text store beside a ledger: each blob is one line holding a JSON string
 * (JSON, so that any JavaScript string — lone surrogates included — comes back exactly), and is
 * referred to by where it lies: [offset, length] in bytes. Append-only like a ledger: blobs are
 * written and fsynced before any record that refers to them, so a record on disk never points at
 * bytes that are not; a crash between the two leaves unreferenced blobs at the tail, harmless.
 */

/** Flat [offset, length, offset, length, …] of the blobs that make up one text, in order. */
export type BlobRefs = number[];

/** Texts at least this long are cut into chunks at content-defined line boundaries. */
const CHUNK_MIN_CHARS = 128;
const CHUNK_MAX_CHARS = 16 * 1024;
/** A line ends a chunk when its hash has these bits clear: chunks of ~1 KB of code. */
const BOUNDARY_MASK = 15;

/**
 * Cuts a text into chunks whose boundaries depend only on the lines around them (a hash of each
 * line decides whether a chunk ends after it), so a prompt that grows by a file inserted in the
 * middle shares every chunk but the few around the insertion with the prompt before it.
 */
export function chunkText(text: string): string[] {
  if (text.length < 2 * CHUNK_MIN_CHARS) return [text];
  const chunks: string[] = [];
  let start = 0;
  let h = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) {
      if (i + 1 - start >= CHUNK_MIN_CHARS && (h & BOUNDARY_MASK) === 0) {
        chunks.push(text.slice(start, i + 1));
        start = i + 1;
      }
      h = 0;
      continue;
    }
    h = (Math.imul(h, 31) + c) | 0;
    if (i + 1 - start >= CHUNK_MAX_CHARS) {
      // A very long line: cut by length, never between the halves of a surrogate pair.
      let end = i + 1;
      if (c >= 0xd800 && c <= 0xdbff) end -= 1;
      if (end > start) {
        chunks.push(text.slice(start, end));
        start = end;
      }
    }
  }
  if (start < text.length) chunks.push(text.slice(start));
  return chunks;
}

/** Texts remembered for dedup (whole texts and chunks): bounded, least recently used out. */
const REMEMBERED = 400_000;

export class BlobWriter {
  private fd: number;
  private end: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly known = new Map<string, BlobRefs>();

  constructor(readonly file: string) {
    mkdirSync(path.dirname(file), { recursive: true });
    dropTornTail(file);
    this.fd = openSync(file, 'a', 0o644);
    this.end = fstatSync(this.fd).size;
  }

  /** The blobs of one text (written by the next flush unless stored before). */
  put(text: string): BlobRefs {
    const whole = digest(text);
    const seen = this.recall(whole);
    if (seen) return seen;
    const refs: BlobRefs = [];
    for (const chunk of chunkText(text)) {
      const key = chunk.length === text.length ? whole : digest(chunk);
      const ref = (chunk.length === text.length ? undefined : this.recall(key)) ?? this.add(key, chunk);
      refs.push(ref[0]!, ref[1]!);
    }
    this.remember(whole, refs);
    return refs;
  }

  private add(key: string, chunk: string): BlobRefs {
    const line = Buffer.from(`${JSON.stringify(chunk)}\n`, 'utf8');
    const ref: BlobRefs = [this.end + this.pendingBytes, line.length - 1];
    this.pending.push(line);
    this.pendingBytes += line.length;
    this.remember(key, ref);
    return ref;
  }

  /** Writes the blobs put since the last flush and fsyncs them. */
  flush(): void {
    if (this.pendingBytes === 0) return;
    const size = fstatSync(this.fd).size;
    if (size !== this.end) throw new Error(`${this.file} changed under its writer (${size} bytes, expected ${this.end}): is another process writing this run?`);
    this.fd = appendDurably(this.file, this.fd, Buffer.concat(this.pending, this.pendingBytes));
    this.end += this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** Forgets what was put but not flushed (the record that needed it was not written). */
  discard(): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.known.clear();
  }

  close(): void {
    closeSync(this.fd);
  }

  private recall(key: string): BlobRefs | undefined {
    const refs = this.known.get(key);
    if (refs !== undefined) {
      this.known.delete(key);
      this.known.set(key, refs);
    }
    return refs;
  }

  private remember(key: string, refs: BlobRefs): void {
    this.known.set(key, refs);
    if (this.known.size > REMEMBERED) this.known.delete(this.known.keys().next().value!);
  }
}

function digest(text: string): string {
  return createHash('sha256').update(text).digest('base64');
}

/** Reads of blob groups closer than this are merged into one read. */
const MERGE_GAP = 64 * 1024;
const MAX_READ = 8 * 1024 * 1024;

/** Reads blobs back by reference; the blobs of one record are read in a few large reads. */
export class BlobReader {
  private fd: number | null = null;
  private buf = Buffer.allocUnsafe(1024 * 1024);

  constructor(readonly file: string) {}

  /** The texts of every blob in `refs` (flat offset/length pairs), by offset. `line` names the referring record in errors. */
  readAll(refs: readonly number[], refFile: string, line: number): Map<number, string> {
    const out = new Map<number, string>();
    if (refs.length === 0) return out;
    if (this.fd === null) {
      if (!existsSync(this.file)) throw new LedgerCorruptError(refFile, line, `refers to message texts in ${this.file}, which does not exist`);
      this.fd = openSync(this.file, 'r');
    }
    const pairs: [number, number][] = [];
    const seen = new Set<number>();
    for (let i = 0; i < refs.length; i += 2) {
      if (seen.has(refs[i]!)) continue;
      seen.add(refs[i]!);
      pairs.push([refs[i]!, refs[i + 1]!]);
    }
    pairs.sort((a, b) => a[0] - b[0]);
    let i = 0;
    while (i < pairs.length) {
      const start = pairs[i]![0];
      let end = start + pairs[i]![1];
      let j = i + 1;
      while (j < pairs.length && pairs[j]![0] <= end + MERGE_GAP && pairs[j]![0] + pairs[j]![1] - start <= MAX_READ) {
        end = Math.max(end, pairs[j]![0] + pairs[j]![1]);
        j += 1;
      }
      const length = end - start;
      if (length > this.buf.length) this.buf = Buffer.allocUnsafe(Math.max(length, this.buf.length * 2));
      let got = 0;
      while (got < length) {
        const read = readSync(this.fd, this.buf, got, length - got, start + got);
        if (read === 0) throw new LedgerCorruptError(refFile, line, `refers to bytes ${start + got}.. past the end of ${this.file}`);
        got += read;
      }
      for (let p = i; p < j; p++) {
        const [offset, len] = pairs[p]!;
        const text = this.buf.toString('utf8', offset - start, offset - start + len);
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          value = undefined;
        }
        if (typeof value !== 'string') throw new LedgerCorruptError(refFile, line, `refers to ${this.file} bytes ${offset}+${len}, which are not a stored text`);
        out.set(offset, value);
      }
      i = j;
    }
    return out;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }
}
