import { closeSync, openSync, readSync } from 'node:fs';
import { TrajectorySchema, type Trajectory } from '../agent/trajectory.js';
import { BlobReader, BlobWriter, type BlobRefs } from './blobs.js';
import { checkRecord, Ledger, LedgerCorruptError, ledgerLines, type LedgerLocation } from './ledger.js';

/**
 * The trajectory ledger, compact: every message text (prompts, completions) is stored once in
 * the blob file beside the ledger (`<name>.blobs.jsonl`, see blobs.ts), and each call's messages
 * refer to it — `content: {"$b": [offset, length, …]}` in place of the string. The system prompt
 * and issue shared by an instance's samples, and each call's prompt that repeats the previous
 * call's plus a little, cost their bytes once. Readers get exactly the records that were appended
 * (the record schema is not changed; any field other than a message's string `content` is stored
 * as is). Lines written whole — older run directories — are read as they are.
 */

/** A trajectory record without its calls: what selection, status and reports read. */
export type TrajectoryHead = Omit<Trajectory, 'calls'>;
export const TrajectoryHeadSchema = TrajectorySchema.omit({ calls: true });

/** Message texts shorter than this stay inline. */
const INLINE_MAX_CHARS = 64;
const BLOB_KEY = '$b';

/** The blob file of a trajectory ledger: `trajectories.jsonl` → `trajectories.blobs.jsonl`. */
export function blobsFileOf(trajectoriesFile: string): string {
  return trajectoriesFile.replace(/(\.jsonl)?$/, '.blobs.jsonl');
}

/** Every file that makes up a trajectory ledger (for forks, sizes, removal). */
export function trajectoryLedgerFiles(trajectoriesFile: string): string[] {
  return [trajectoriesFile, blobsFileOf(trajectoriesFile)];
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function mapMessages(record: Json, f: (message: Json) => Json): Json {
  if (!Array.isArray(record.calls)) return record;
  const calls = record.calls.map((call: unknown) => {
    if (!isObject(call)) return call;
    const out: Json = { ...call };
    if (Array.isArray(call.messages)) out.messages = call.messages.map((m: unknown) => (isObject(m) ? f(m) : m));
    if (isObject(call.completion)) out.completion = f(call.completion);
    return out;
  });
  return { ...record, calls };
}

function blobRefsOf(message: Json): BlobRefs | null {
  const content = message.content;
  if (!isObject(content)) return null;
  const refs = content[BLOB_KEY];
  return Array.isArray(refs) && refs.every((n) => Number.isSafeInteger(n) && n >= 0) ? (refs as BlobRefs) : null;
}

/** Appends trajectories in the compact layout. */
export class TrajectoryLedger {
  private constructor(
    private readonly ledger: Ledger<Trajectory>,
    private readonly blobs: BlobWriter,
    readonly droppedTornBytes: number,
  ) {}

  /** `fsyncEach: false` is for bulk writers only (see LedgerOptions). */
  static open(file: string, onTorn?: (bytes: number) => void, options: { fsyncEach?: boolean } = {}): TrajectoryLedger {
    const blobs = new BlobWriter(blobsFileOf(file), options.fsyncEach ?? true);
    const encode = (record: Trajectory): unknown => {
      try {
        const stored = mapMessages(record as unknown as Json, (message) =>
          typeof message.content === 'string' && message.content.length >= INLINE_MAX_CHARS ? { ...message, content: { [BLOB_KEY]: blobs.put(message.content) } } : message,
        );
        blobs.flush(); // the texts are on disk before the record that refers to them
        return stored;
      } catch (err) {
        blobs.discard();
        throw err;
      }
    };
    const opened = Ledger.open(file, TrajectorySchema, { encode, fsyncEach: options.fsyncEach ?? true, ...(onTorn ? { onTorn } : {}) });
    return new TrajectoryLedger(opened.ledger, blobs, opened.droppedTornBytes);
  }

  /** Validates and appends one trajectory; returns once it (and its texts) are on disk. */
  append(trajectory: Trajectory): void {
    this.ledger.append(trajectory);
  }

  close(): void {
    this.ledger.close();
    this.blobs.close();
  }
}

const CALLS_KEY = Buffer.from('"calls":[');
const AFTER_CALLS = Buffer.from('],"transitions":');

/**
 * A trajectory line's JSON without its `calls`, cut out without parsing them when possible.
 * Why the cut is safe: inside a JSON string every `"` is escaped, so the bytes `"calls":[` and
 * `],"transitions":` only ever occur as object keys, never inside a text. The record's `calls`
 * key opens the first; the `transitions` key that follows it closes the last. If a writer orders
 * its keys otherwise, the cut text does not parse and the whole line is parsed instead.
 */
function parseHead(line: Buffer): unknown {
  const open = line.indexOf(CALLS_KEY);
  if (open !== -1) {
    const close = line.lastIndexOf(AFTER_CALLS);
    if (close > open) {
      try {
        return JSON.parse(line.toString('utf8', 0, open + CALLS_KEY.length) + line.toString('utf8', close));
      } catch {
        // fall through to the whole line
      }
    }
  }
  return JSON.parse(line.toString('utf8'));
}

function parseJson(file: string, line: number, parse: () => unknown): unknown {
  try {
    return parse();
  } catch (err) {
    throw new LedgerCorruptError(file, line, `not valid JSON (${(err as Error).message})`);
  }
}

/** Every record's head (calls left out, never read) and where its line is. Memory: one line. */
export function* readTrajectoryHeads(file: string, from?: { offset: number; line: number }): Generator<{ head: TrajectoryHead; at: LedgerLocation }> {
  for (const { bytes, offset, length, line, file: part } of ledgerLines(file, undefined, from)) {
    const where = part ?? file;
    const value = parseJson(where, line, () => parseHead(bytes));
    if (isObject(value)) delete value.calls;
    yield { head: checkRecord(where, line, value, TrajectoryHeadSchema), at: part === undefined ? { offset, length, line } : { offset, length, line, file: part } };
  }
}

/** Restores a stored record's message texts from the blob file. */
function decode(file: string, line: number, value: unknown, blobs: BlobReader): unknown {
  if (!isObject(value)) return value;
  const refs: number[] = [];
  mapMessages(value, (message) => {
    const r = blobRefsOf(message);
    if (r) for (const n of r) refs.push(n);
    return message;
  });
  if (refs.length === 0) return value;
  const texts = blobs.readAll(refs, file, line);
  return mapMessages(value, (message) => {
    const r = blobRefsOf(message);
    if (!r) return message;
    let content = '';
    for (let i = 0; i < r.length; i += 2) content += texts.get(r[i]!)!;
    return { ...message, content };
  });
}

/** Every trajectory of a ledger, whole and validated, one at a time. Memory: one record. */
export function* readTrajectories(file: string): Generator<Trajectory> {
  const parts = new PartFiles();
  try {
    for (const { bytes, line, file: part } of ledgerLines(file)) {
      const where = part ?? file;
      const value = parseJson(where, line, () => JSON.parse(bytes.toString('utf8')));
      yield checkRecord(where, line, decode(where, line, value, parts.blobs(where)), TrajectorySchema);
    }
  } finally {
    parts.close();
  }
}

/** The open files of a ledger's parts (the named file and its shards' parts), opened when first read. */
class PartFiles {
  private readonly open = new Map<string, { blobs: BlobReader; fd: number | null }>();

  private get(file: string): { blobs: BlobReader; fd: number | null } {
    let entry = this.open.get(file);
    if (!entry) {
      entry = { blobs: new BlobReader(blobsFileOf(file)), fd: null };
      this.open.set(file, entry);
    }
    return entry;
  }

  blobs(file: string): BlobReader {
    return this.get(file).blobs;
  }

  fd(file: string): number {
    const entry = this.get(file);
    entry.fd ??= openSync(file, 'r');
    return entry.fd;
  }

  close(): void {
    for (const { blobs, fd } of this.open.values()) {
      if (fd !== null) closeSync(fd);
      blobs.close();
    }
    this.open.clear();
  }
}

/** Whole trajectories read back from where readTrajectoryHeads found them, in the order given. Memory: one record. */
export function* readTrajectoriesAt(file: string, locations: Iterable<LedgerLocation>): Generator<Trajectory> {
  const parts = new PartFiles();
  let buf = Buffer.allocUnsafe(1024 * 1024);
  try {
    for (const { offset, length, line, file: part } of locations) {
      // A location found in a shard's part of the ledger names that part.
      const where = part ?? file;
      const fd = parts.fd(where);
      if (length > buf.length) buf = Buffer.allocUnsafe(Math.max(length, buf.length * 2));
      let got = 0;
      while (got < length) {
        const read = readSync(fd, buf, got, length - got, offset + got);
        if (read === 0) throw new LedgerCorruptError(where, line, 'the record ends early: the ledger changed after it was scanned');
        got += read;
      }
      const value = parseJson(where, line, () => JSON.parse(buf.toString('utf8', 0, length)));
      yield checkRecord(where, line, decode(where, line, value, parts.blobs(where)), TrajectorySchema);
    }
  } finally {
    parts.close();
  }
}
