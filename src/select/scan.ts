import { closeSync, existsSync, openSync, readSync } from 'node:fs';
import { z } from 'zod';
import { TrajectorySchema, type Trajectory } from '../agent/trajectory.js';
import { LedgerCorruptError } from '../store/ledger.js';
import { VerdictSchema, type Verdict } from '../verify/verdict.js';
import { addVerdict, compareRefs, duplicateRecord, poolEntryOf, trajectoryKey, type PoolEntry, type VerdictKeyOf } from './pool.js';

/**
 * Streaming reads of the ledgers selection needs, for pools far bigger than memory (SWE-Gym
 * scale: 30 samples × thousands of tasks, tens of KB per trajectory, gigabytes per iteration).
 *
 * readLedgerFile loads a whole ledger as one string, which fails past V8's string limit (~512 MB)
 * and holds every call of every trajectory in memory. Selection needs only each trajectory's
 * metadata; the calls (≈ 95% of a record) matter only for the few kept trajectories, which are
 * read again, one at a time, from where the scan found them.
 */

/** Where one record's line lies in its ledger (bytes, without the newline). */
export interface LedgerLocation {
  offset: number;
  length: number;
  /** 1-based line number, for messages. */
  line: number;
}

/** A trajectory record without its calls: all selection reads. */
export type TrajectoryHead = Omit<Trajectory, 'calls'>;

const TrajectoryHeadSchema = TrajectorySchema.omit({ calls: true });

export interface ScannedPool {
  /** As poolFromRecords would give them: infrastructure errors left out, (instance_id, iteration, sample_index) order. */
  entries: PoolEntry[];
  /** Each entry's record, by trajectoryKey. */
  locations: Map<string, LedgerLocation>;
  /** Records of infrastructure errors (not in the pool). */
  infrastructure_records: number;
  lines: number;
  bytes: number;
  /** Lines read whole because their calls could not be cut out cheaply (see parseHead). */
  full_parses: number;
}

const CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * Calls `onLine` with every whole line of a JSONL file (a Buffer view, valid only during the
 * call), its byte offset and its 1-based number. A last line without its newline is a torn write
 * and is skipped, as readLedgerFile does. Memory: one chunk plus the longest line.
 */
export function forEachLine(file: string, onLine: (line: Buffer, offset: number, lineNo: number) => void, chunkBytes = CHUNK_BYTES): { lines: number; bytes: number } {
  if (!existsSync(file)) return { lines: 0, bytes: 0 };
  const fd = openSync(file, 'r');
  let buf = Buffer.allocUnsafe(chunkBytes);
  let base = 0; // file offset of buf[0]
  let len = 0; // valid bytes in buf
  let lineNo = 0;
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
        onLine(buf.subarray(start, nl), base + start, lineNo);
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
  return { lines: lineNo, bytes: base };
}

const CALLS_KEY = Buffer.from('"calls":[');
const AFTER_CALLS = Buffer.from('],"transitions":');

/**
 * A trajectory line's JSON without the contents of its `calls` array, when they can be cut out
 * without parsing them; else the whole line. Why the cut is safe: inside a JSON string every `"`
 * is escaped, so the bytes `"calls":[` and `],"transitions":` (a bare quote after a letter or a
 * comma) only ever occur as object keys, never inside message text. The record's `calls` key
 * opens the first; the `transitions` key that follows it closes the last. If a writer orders its
 * keys otherwise, the cut text does not parse and the whole line is parsed instead.
 */
function parseHead(line: Buffer): { value: unknown; cut: boolean } {
  const open = line.indexOf(CALLS_KEY);
  if (open !== -1) {
    const close = line.lastIndexOf(AFTER_CALLS);
    if (close > open) {
      try {
        return { value: JSON.parse(line.toString('utf8', 0, open + CALLS_KEY.length) + line.toString('utf8', close)), cut: true };
      } catch {
        // fall through to the whole line
      }
    }
  }
  return { value: JSON.parse(line.toString('utf8')), cut: false };
}

const REASON_KEY = Buffer.from(',"reason":');

/**
 * A verdict line's key and outcome without parsing its test map and report: the record as
 * written starts with instance_id, patch_hash, spec_hash and outcome (all strings), then
 * `"reason":` — a key, as the bytes `,"reason":` cannot occur inside a JSON string (see
 * parseHead). If the prefix does not parse or lacks one of the four, the whole line is parsed.
 */
function parseVerdictKey(line: Buffer): unknown {
  const at = line.indexOf(REASON_KEY);
  if (at !== -1) {
    try {
      const value = JSON.parse(`${line.toString('utf8', 0, at)}}`) as Record<string, unknown>;
      if (typeof value.instance_id === 'string' && typeof value.patch_hash === 'string' && typeof value.spec_hash === 'string' && typeof value.outcome === 'string') return value;
    } catch {
      // fall through to the whole line
    }
  }
  return JSON.parse(line.toString('utf8'));
}

function corrupt(file: string, lineNo: number, err: unknown): LedgerCorruptError {
  if (err instanceof SyntaxError) return new LedgerCorruptError(file, lineNo, `not valid JSON (${err.message})`);
  return new LedgerCorruptError(file, lineNo, (err as Error).message);
}

/** What the pool reads of a verdict: its cache key and outcome. */
export type VerdictOutcome = Pick<Verdict, 'instance_id' | 'patch_hash' | 'spec_hash' | 'outcome'>;
const { instance_id, patch_hash, spec_hash, outcome } = VerdictSchema.shape;
const VerdictOutcomeSchema = z.object({ instance_id, patch_hash, spec_hash, outcome });

/**
 * Reads a verdict ledger line by line. `full` validates each record as readLedgerFile does;
 * otherwise only the fields a pool reads are checked (key and outcome: a verdict's test map and
 * report are most of its bytes and of its validation time).
 */
export function readVerdictsStreaming(file: string, onVerdict: (verdict: VerdictOutcome) => void, options: { full?: boolean } = {}): void {
  const schema = options.full ? VerdictSchema : VerdictOutcomeSchema;
  forEachLine(file, (line, _offset, lineNo) => {
    let value: unknown;
    try {
      value = options.full ? JSON.parse(line.toString('utf8')) : parseVerdictKey(line);
    } catch (err) {
      throw corrupt(file, lineNo, err);
    }
    const result = schema.safeParse(value);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      throw new LedgerCorruptError(file, lineNo, `field ${issue.path.map(String).join('.') || '(record)'}: ${issue.message}`);
    }
    onVerdict(result.data);
  });
}

/**
 * The selection pool of one iteration, streamed from its ledgers: equal to
 * poolFromRecords(readLedgerFile(trajectories), readLedgerFile(verdicts), verdictKeyOf), plus
 * where each entry's record is, so the kept ones can be read back (readTrajectoriesAt). Memory
 * grows with the number of records (a few hundred bytes each), not with their size. Calls are
 * validated when a trajectory is read back, not here.
 */
export function scanPool(trajectoriesFile: string, verdictsFile: string, verdictKeyOf: VerdictKeyOf<TrajectoryHead>): ScannedPool {
  // Only the outcome of each verdict is needed: its test map and report would cost hundreds of MB.
  const byKey = new Map<string, Pick<Verdict, 'outcome'>>();
  readVerdictsStreaming(verdictsFile, (verdict) => addVerdict(byKey, verdict, (v) => ({ outcome: v.outcome })));

  const entries = new Map<string, PoolEntry>();
  const locations = new Map<string, LedgerLocation>();
  let infrastructure = 0;
  let fullParses = 0;
  const { lines, bytes } = forEachLine(trajectoriesFile, (line, offset, lineNo) => {
    let head: TrajectoryHead;
    try {
      const parsed = parseHead(line);
      if (!parsed.cut) fullParses += 1;
      const result = TrajectoryHeadSchema.safeParse(parsed.value);
      if (!result.success) {
        const issue = result.error.issues[0]!;
        throw new LedgerCorruptError(trajectoriesFile, lineNo, `field ${issue.path.map(String).join('.') || '(record)'}: ${issue.message}`);
      }
      head = result.data;
    } catch (err) {
      throw err instanceof LedgerCorruptError ? err : corrupt(trajectoriesFile, lineNo, err);
    }
    const entry = poolEntryOf(head, byKey, verdictKeyOf);
    if (entry === null) {
      infrastructure += 1;
      return;
    }
    const key = trajectoryKey(entry);
    if (entries.has(key)) throw duplicateRecord(entry);
    entries.set(key, entry);
    locations.set(key, { offset, length: line.length, line: lineNo });
  });
  return { entries: [...entries.values()].sort(compareRefs), locations, infrastructure_records: infrastructure, lines, bytes, full_parses: fullParses };
}

/**
 * Reads whole trajectory records back from a ledger, one at a time, in the order given (parsed
 * and validated like readLedgerFile). Memory: one record.
 */
export function* readTrajectoriesAt(file: string, locations: Iterable<LedgerLocation>): Generator<Trajectory> {
  const fd = openSync(file, 'r');
  let buf = Buffer.allocUnsafe(1024 * 1024);
  try {
    for (const { offset, length, line } of locations) {
      if (length > buf.length) buf = Buffer.allocUnsafe(Math.max(length, buf.length * 2));
      let got = 0;
      while (got < length) {
        const read = readSync(fd, buf, got, length - got, offset + got);
        if (read === 0) throw new LedgerCorruptError(file, line, 'the record ends early: the ledger changed after it was scanned');
        got += read;
      }
      let value: unknown;
      try {
        value = JSON.parse(buf.toString('utf8', 0, length));
      } catch (err) {
        throw new LedgerCorruptError(file, line, `not valid JSON (${(err as Error).message})`);
      }
      const result = TrajectorySchema.safeParse(value);
      if (!result.success) {
        const issue = result.error.issues[0]!;
        throw new LedgerCorruptError(file, line, `field ${issue.path.map(String).join('.') || '(record)'}: ${issue.message}`);
      }
      yield result.data;
    }
  } finally {
    closeSync(fd);
  }
}
