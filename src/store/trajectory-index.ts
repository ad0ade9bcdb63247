import { appendFileSync, closeSync, existsSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { isInfrastructureError } from '../select/pool.js';
import { fsyncDir } from './atomic.js';
import { ledgerLines, ledgerParts, wholeLinesEnd, type LedgerLocation } from './ledger.js';
import { readTrajectoryHeads } from './trajectories.js';

/**
 * Where each trajectory of a ledger is: (instance id, sample index) → byte offset, length and line
 * of its record, so `rft show` of one trajectory reads one record instead of scanning the ledger
 * (GBs at SWE-Gym size). Kept beside the ledger (`trajectories.index.jsonl`), built on the first
 * look-up and extended on later ones with what was appended since — append-only, one line per
 * record. Only whole ledger lines are indexed (a torn tail is not a record); a torn index line is
 * cut before the next append. The index is a cache: if it does not match the ledger (the ledger
 * is shorter than what it covers, its last entry does not point at a record, a line does not
 * parse) it is built again from the ledger. Memory: one index line at a time, whatever the size.
 */
export const IndexEntrySchema = z
  .object({
    instance_id: z.string(),
    sample_index: z.number().int().nonnegative(),
    offset: z.number().int().nonnegative(),
    length: z.number().int().nonnegative(),
    line: z.number().int().positive(),
  })
  .strict();
export type IndexEntry = z.infer<typeof IndexEntrySchema>;

export function indexFileOf(trajectoriesFile: string): string {
  return trajectoriesFile.replace(/\.jsonl$/, '') + '.index.jsonl';
}

const entryLine = (e: IndexEntry) => `${JSON.stringify(e)}\n`;

/** The index's entries for the ledger lines from `from` on (infrastructure errors are not data: left out). */
function* entriesFrom(trajectoriesFile: string, from: { offset: number; line: number }): Generator<{ entry: IndexEntry | null; end: number; line: number }> {
  for (const { head, at } of readTrajectoryHeads(trajectoriesFile, from)) {
    const entry = isInfrastructureError(head) ? null : { instance_id: head.instance_id, sample_index: head.sample_index, offset: at.offset, length: at.length, line: at.line };
    yield { entry, end: at.offset + at.length + 1, line: at.line };
  }
}

/** Coverage of an index: the ledger bytes and lines it has read (from its `covered` lines). */
interface Covered {
  offset: number;
  line: number;
}

const CoveredSchema = z.object({ covered: z.object({ offset: z.number().int().nonnegative(), line: z.number().int().nonnegative() }).strict() }).strict();

/** How far into the ledger an index line reaches (null: not an index line). */
function coverageOf(bytes: Buffer): Covered | null {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch {
    return null;
  }
  const entry = IndexEntrySchema.safeParse(value);
  if (entry.success) return { offset: entry.data.offset + entry.data.length + 1, line: entry.data.line };
  // A `covered` line records ledger lines read that hold no entry (infrastructure errors at the end).
  const c = CoveredSchema.safeParse(value);
  return c.success ? c.data.covered : null;
}

/** The index's last whole line: lines are appended in ledger order, so it says how far the index reaches. */
function lastCoverage(file: string, validBytes: number): Covered | null {
  if (validBytes === 0) return { offset: 0, line: 0 };
  const fd = openSync(file, 'r');
  try {
    const size = Math.min(validBytes, 64 * 1024);
    const buf = Buffer.alloc(size);
    readSync(fd, buf, 0, size, validBytes - size);
    const text = buf.subarray(0, size - 1);
    const start = text.lastIndexOf(0x0a) + 1;
    if (start === 0 && size < validBytes) return null;
    return coverageOf(text.subarray(start));
  } finally {
    closeSync(fd);
  }
}

/** Streams the index's whole lines to `visit`; false when a line is not an index line (the index is rebuilt). */
function readIndex(file: string, validBytes: number, visit: (e: IndexEntry) => void, needle: Buffer | null): boolean {
  for (const { bytes, offset } of ledgerLines(file)) {
    if (offset >= validBytes) break;
    // Lines of other instances are passed over unparsed (a line is one entry; its id is JSON-quoted).
    if (needle !== null && bytes.indexOf(needle) === -1) continue;
    let value: unknown;
    try {
      value = JSON.parse(bytes.toString('utf8'));
    } catch {
      return false;
    }
    const entry = IndexEntrySchema.safeParse(value);
    if (entry.success) visit(entry.data);
    else if (!CoveredSchema.safeParse(value).success) return false;
  }
  return true;
}

/** Does the ledger still hold, at the end of what the index covers, the end of a record? */
function ledgerMatches(trajectoriesFile: string, covered: Covered): boolean {
  if (covered.offset === 0) return true;
  const fd = openSync(trajectoriesFile, 'r');
  try {
    if (fstatSync(fd).size < covered.offset) return false;
    const byte = Buffer.alloc(1);
    return readSync(fd, byte, 0, 1, covered.offset - 1) === 1 && byte[0] === 0x0a;
  } finally {
    closeSync(fd);
  }
}

/** Builds the index from the whole ledger into a temp file, renamed over the index (atomic). */
function rebuild(trajectoriesFile: string, file: string, visit: (e: IndexEntry) => void): void {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = openSync(temp, 'w');
  try {
    let pending: string[] = [];
    let last = { end: 0, line: 0, entry: true };
    for (const { entry, end, line } of entriesFrom(trajectoriesFile, { offset: 0, line: 0 })) {
      if (entry) {
        visit(entry);
        pending.push(entryLine(entry));
      }
      last = { end, line, entry: entry !== null };
      if (pending.length >= 4096) {
        writeSync(fd, pending.join(''));
        pending = [];
      }
    }
    if (!last.entry) pending.push(`${JSON.stringify({ covered: { offset: last.end, line: last.line } })}\n`);
    if (pending.length > 0) writeSync(fd, pending.join(''));
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw err;
  }
  closeSync(fd);
  renameSync(temp, file);
  fsyncDir(path.dirname(file));
}

/**
 * Calls `visit` with every index entry of the ledger (in ledger order; an entry may come more than
 * once — a rebuild after a bad index line visits again from the start, two appenders may both
 * have added it — so `visit` must be idempotent per key: the last of a key wins), after bringing
 * the index up to date with the ledger's whole lines. With `onlyInstance`, the index lines of other
 * instances are not parsed (entries the index is extended with are all visited).
 */
export function forEachIndexEntry(trajectoriesFile: string, visit: (e: IndexEntry) => void, restart: () => void = () => {}, onlyInstance?: string): void {
  if (!existsSync(trajectoriesFile)) return;
  const file = indexFileOf(trajectoriesFile);
  const { validBytes, totalBytes } = wholeLinesEnd(file);
  const covered = existsSync(file) ? lastCoverage(file, validBytes) : null;
  if (covered === null || !ledgerMatches(trajectoriesFile, covered)) {
    rebuild(trajectoriesFile, file, visit);
    return;
  }
  const needle = onlyInstance === undefined ? null : Buffer.from(`"instance_id":${JSON.stringify(onlyInstance)}`);
  if (!readIndex(file, validBytes, visit, needle)) {
    restart();
    rebuild(trajectoriesFile, file, visit);
    return;
  }
  const read = { covered, validBytes, totalBytes };
  const ledgerEnd = wholeLinesEnd(trajectoriesFile).validBytes;
  if (ledgerEnd <= read.covered.offset) return;
  // A fork shares its parent's files by hard link (src/loop/fork.ts): appending would change the
  // parent's index too, so a shared index is replaced (rename) instead of grown.
  if (statSync(file).nlink > 1) {
    restart();
    rebuild(trajectoriesFile, file, visit);
    return;
  }
  if (read.totalBytes > read.validBytes) truncateSync(file, read.validBytes);
  const added: string[] = [];
  let last = { end: 0, line: 0, entry: true };
  for (const { entry, end, line } of entriesFrom(trajectoriesFile, read.covered)) {
    if (end > ledgerEnd) break;
    if (entry) {
      visit(entry);
      added.push(entryLine(entry));
    }
    last = { end, line, entry: entry !== null };
  }
  if (!last.entry) added.push(`${JSON.stringify({ covered: { offset: last.end, line: last.line } })}\n`);
  if (added.length > 0) appendFileSync(file, added.join(''));
}

/** Where each record of one instance is, by sample index (the last record of a sample wins). */
export function locateInstance(trajectoriesFile: string, instanceId: string): Map<number, LedgerLocation> {
  const at = new Map<number, LedgerLocation>();
  forEachIndexEntry(
    trajectoriesFile,
    (e) => {
      if (e.instance_id === instanceId) at.set(e.sample_index, { offset: e.offset, length: e.length, line: e.line });
    },
    () => at.clear(),
    instanceId,
  );
  // A cluster run's shard parts are not indexed (offsets are the named file's): scanned, record heads only.
  for (const part of ledgerParts(trajectoriesFile).slice(1)) {
    for (const { head, at: where } of readTrajectoryHeads(part)) {
      if (head.instance_id === instanceId && !isInfrastructureError(head)) at.set(head.sample_index, { ...where, file: part });
    }
  }
  return at;
}
