import { closeSync, existsSync, fstatSync, fsyncSync, mkdirSync, openSync, readSync } from 'node:fs';
import path from 'node:path';
import { AppendError, appendDurably, dropTornTail, LedgerCorruptError, ownedFd } from './ledger.js';

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
 * middle shares every chunk but the few around the insertion with the prompt before it. The hash
 * reads a line's length and its last 16 characters (code lines differ most at their ends; their
 * starts are mostly indentation), so cutting costs little more than finding the newlines.
 */
export function chunkText(text: string): string[] {
  if (text.length < 2 * CHUNK_MIN_CHARS) return [text];
  const chunks: string[] = [];
  let start = 0;
  let lineStart = 0;
  while (lineStart < text.length) {
    let nl = text.indexOf('\n', lineStart);
    if (nl === -1) nl = text.length;
    if (nl + 1 - start > CHUNK_MAX_CHARS) {
      // A very long line: cut by length, never between the halves of a surrogate pair.
      let end = Math.max(start + CHUNK_MAX_CHARS, lineStart);
      if (end > start && end < text.length) {
        const c = text.charCodeAt(end - 1);
        if (c >= 0xd800 && c <= 0xdbff) end -= 1;
      }
      if (end > start) {
        chunks.push(text.slice(start, end));
        start = end;
      }
      if (lineStart < start) lineStart = start;
      continue;
    }
    let h = nl - lineStart;
    for (let i = Math.max(lineStart, nl - 16); i < nl; i++) h = (Math.imul(h, 31) + text.charCodeAt(i)) | 0;
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
    if (nl < text.length && nl + 1 - start >= CHUNK_MIN_CHARS && (h & BOUNDARY_MASK) === 0) {
      chunks.push(text.slice(start, nl + 1));
      start = nl + 1;
    }
    lineStart = nl + 1;
  }
  if (start < text.length) chunks.push(text.slice(start));
  return chunks;
}

/**
 * Stored texts remembered for dedup, by their exact JSON (a flat copy, so a remembered chunk never
 * keeps the whole prompt it was cut from alive): bounded by characters, oldest out. Keys are the
 * texts themselves, so two texts are only ever merged when they are equal — no hash collisions.
 */
const REMEMBERED_CHARS = 48 * 1024 * 1024;

export class BlobWriter {
  private fd: number;
  private end: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly known = new Map<string, readonly [number, number]>();
  private knownChars = 0;
  /** Why appending stopped for good (a failed append that could not be cut back), or null. */
  private broken: string | null = null;

  constructor(
    readonly file: string,
    /** false: one fsync at close instead of one per flush (bulk writers only, see LedgerOptions). */
    private readonly fsyncEach = true,
  ) {
    mkdirSync(path.dirname(file), { recursive: true });
    dropTornTail(file);
    this.fd = openSync(file, 'a', 0o644);
    this.end = fstatSync(this.fd).size;
  }

  /** The blobs of one text (written by the next flush unless stored before). */
  put(text: string): BlobRefs {
    const refs: BlobRefs = [];
    for (const chunk of chunkText(text)) {
      const json = JSON.stringify(chunk);
      let ref = this.known.get(json);
      if (ref === undefined) {
        const line = Buffer.from(`${json}\n`, 'utf8');
        ref = [this.end + this.pendingBytes, line.length - 1];
        this.pending.push(line);
        this.pendingBytes += line.length;
        this.remember(json, ref);
      }
      refs.push(ref[0], ref[1]);
    }
    return refs;
  }

  /** Writes the blobs put since the last flush (and fsyncs them, unless bulk), all or none. */
  flush(): void {
    if (this.pendingBytes === 0) return;
    if (this.broken !== null) throw new Error(`${this.file}: cannot append after a failed write that could not be undone (${this.broken})`);
    const size = fstatSync(this.fd).size;
    if (size !== this.end) throw new Error(`${this.file} changed under its writer (${size} bytes, expected ${this.end}): is another process writing this run?`);
    this.fd = ownedFd(this.file, this.fd);
    try {
      appendDurably(this.file, this.fd, Buffer.concat(this.pending, this.pendingBytes), this.fsyncEach);
    } catch (err) {
      // Cut back (the file ends at `end` again): what was put is forgotten, the writer goes on.
      // Not cut back: the file is truncated to `end` on the next open, so this writer stops.
      if (err instanceof AppendError && !err.cutBack) this.broken = err.message;
      this.discard();
      throw err;
    }
    this.end += this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
  }

  /** Forgets what was put but not flushed (the record that needed it was not written). */
  discard(): void {
    this.pending = [];
    this.pendingBytes = 0;
    this.known.clear();
    this.knownChars = 0;
  }

  close(): void {
    if (!this.fsyncEach) fsyncSync(this.fd);
    closeSync(this.fd);
  }

  private remember(json: string, ref: readonly [number, number]): void {
    this.known.set(json, ref);
    this.knownChars += json.length;
    while (this.knownChars > REMEMBERED_CHARS) {
      const oldest = this.known.keys().next().value!;
      this.known.delete(oldest);
      this.knownChars -= oldest.length;
    }
  }
}

/** Reads of blob groups closer than this are merged into one read. */
const MERGE_GAP = 64 * 1024;
const MAX_READ = 8 * 1024 * 1024;

/** Reads blobs back by reference; the blobs of one record are read in a few large reads. */
export class BlobReader {
  private fd: number | null = null;
  private buf = Buffer.allocUnsafe(1024 * 1024);

  constructor(
    readonly file: string,
    /** false: one fsync at close instead of one per flush (bulk writers only, see LedgerOptions). */
    private readonly fsyncEach = true,
  ) {}

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
