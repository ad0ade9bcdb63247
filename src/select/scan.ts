import { z } from 'zod';
import { checkRecord, LedgerCorruptError, ledgerLines, type LedgerLocation } from '../store/ledger.js';
import { readTrajectoryHeads, type TrajectoryHead } from '../store/trajectories.js';
import { VerdictSchema, type Verdict } from '../verify/verdict.js';
import { addVerdict, compareRefs, duplicateRecord, poolEntryOf, trajectoryKey, type PoolEntry, type VerdictKeyOf } from './pool.js';

/**
 * Streaming reads of the ledgers selection needs, for pools far bigger than memory (SWE-Gym
 * scale: 30 samples × thousands of tasks, tens of KB per trajectory, gigabytes per iteration).
 *
 * Selection needs only each trajectory's head (src/store/trajectories.ts readTrajectoryHeads);
 * the calls matter only for the few kept trajectories, which are read again, one at a time, from
 * where the scan found them (readTrajectoriesAt).
 */

export type { LedgerLocation } from '../store/ledger.js';
export type { TrajectoryHead } from '../store/trajectories.js';
export { readTrajectoriesAt } from '../store/trajectories.js';

export interface ScannedPool {
  /** As poolFromRecords would give them: infrastructure errors left out, (instance_id, iteration, sample_index) order. */
  entries: PoolEntry[];
  /** Each entry's record, by trajectoryKey. */
  locations: Map<string, LedgerLocation>;
  /** Records of infrastructure errors (not in the pool). */
  infrastructure_records: number;
  lines: number;
  bytes: number;
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
export type VerdictOutcome = Pick<Verdict, 'instance_id' | 'patch_hash' | 'spec_hash' | 'outcome' | 'tampering'>;
const { instance_id, patch_hash, spec_hash, outcome, tampering } = VerdictSchema.shape;
// tampering is written before `reason` (VerdictSchema), so parseVerdictKey's head holds it.
const VerdictOutcomeSchema = z.object({ instance_id, patch_hash, spec_hash, outcome, tampering });

/**
 * Reads a verdict ledger line by line. `full` validates each record as readRecords does;
 * otherwise only the fields a pool reads are checked (key and outcome: a verdict's test map and
 * report are most of its bytes and of its validation time).
 */
export function readVerdictsStreaming(file: string, onVerdict: (verdict: VerdictOutcome) => void, options: { full?: boolean } = {}): void {
  const schema = options.full ? VerdictSchema : VerdictOutcomeSchema;
  for (const { bytes, line } of ledgerLines(file)) {
    let value: unknown;
    try {
      value = options.full ? JSON.parse(bytes.toString('utf8')) : parseVerdictKey(bytes);
    } catch (err) {
      throw corrupt(file, line, err);
    }
    onVerdict(checkRecord(file, line, value, schema));
  }
}

/**
 * The selection pool of one iteration, streamed from its ledgers: equal to
 * poolFromRecords([...readTrajectories(trajectories)], [...readRecords(verdicts)], verdictKeyOf), plus
 * where each entry's record is, so the kept ones can be read back (readTrajectoriesAt). Memory
 * grows with the number of records (a few hundred bytes each), not with their size. Calls are
 * validated when a trajectory is read back, not here.
 */
export function scanPool(trajectoriesFile: string, verdictsFile: string, verdictKeyOf: VerdictKeyOf<TrajectoryHead>): ScannedPool {
  // Only the outcome of each verdict is needed: its test map and report would cost hundreds of MB.
  const byKey = new Map<string, Pick<Verdict, 'outcome' | 'tampering'>>();
  readVerdictsStreaming(verdictsFile, (verdict) => addVerdict(byKey, verdict, (v) => ({ outcome: v.outcome, ...(v.tampering ? { tampering: v.tampering } : {}) })));

  const entries = new Map<string, PoolEntry>();
  const locations = new Map<string, LedgerLocation>();
  let infrastructure = 0;
  let lines = 0;
  let bytes = 0;
  for (const { head, at } of readTrajectoryHeads(trajectoriesFile)) {
    lines += 1;
    bytes = at.offset + at.length + 1;
    const entry = poolEntryOf(head, byKey, verdictKeyOf);
    if (entry === null) {
      infrastructure += 1;
      continue;
    }
    const key = trajectoryKey(entry);
    if (entries.has(key)) throw duplicateRecord(entry);
    entries.set(key, entry);
    locations.set(key, at);
  }
  return { entries: [...entries.values()].sort(compareRefs), locations, infrastructure_records: infrastructure, lines, bytes };
}
