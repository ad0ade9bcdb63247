import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { readVerdictsStreaming } from '../select/scan.js';
import { writeJsonAtomic } from '../store/atomic.js';
import { ledgerParts } from '../store/ledger.js';
import { readTrajectoryHeads } from '../store/trajectories.js';
import { normalizePatch, patchHash } from '../verify/patch.js';
import type { Verdict } from '../verify/verdict.js';

/**
 * What `rft status` and the run's table count in one sampling phase (a train iteration or an
 * eval), kept beside the phase's ledgers so a status at SWE-Gym size (GBs of ledger) reads a
 * small file instead of every record. The loop writes it when a phase's rollout ends; any reader
 * rebuilds it from the ledgers (streaming) when it is missing or stale: a ledger's size or mtime
 * differs from what the summary recorded (the loop or a resume appended, a torn tail was cut).
 */
export const PHASE_SUMMARY_FILE = 'phase-summary.json';

/** A ledger file as it was when counted (null: it did not exist). */
const FileStampSchema = z.object({ size: z.number().int().nonnegative(), mtime_ms: z.number() }).strict().nullable();
type FileStamp = z.infer<typeof FileStampSchema>;

export const PhaseCountsSchema = z
  .object({
    /** Whole trajectory records (a torn last line is not one). */
    trajectories: z.number().int().nonnegative(),
    /** Trajectories whose patch has a `resolved` verdict. */
    resolved: z.number().int().nonnegative(),
    /** Resolved and finished by the agent (not rejected). */
    successes: z.number().int().nonnegative(),
    empty_patch: z.number().int().nonnegative(),
    /** Verdict records that are final (not a retried harness `error`). */
    final_verdicts: z.number().int().nonnegative(),
    /** Final after repeated harness errors (counted unresolved). */
    repeated_errors: z.number().int().nonnegative(),
  })
  .strict();
export type PhaseCounts = z.infer<typeof PhaseCountsSchema>;

export const PhaseSummarySchema = z
  .object({
    format: z.literal(1),
    trajectories_file: FileStampSchema,
    verdicts_file: FileStampSchema,
    counts: PhaseCountsSchema,
  })
  .strict();
export type PhaseSummary = z.infer<typeof PhaseSummarySchema>;

/** The ledger with its shards' parts (ledgerParts): what grows when any part is appended to. */
function stamp(file: string): FileStamp {
  if (!existsSync(file)) return null;
  let size = 0;
  let mtime = 0;
  for (const part of ledgerParts(file)) {
    const s = statSync(part);
    size += s.size;
    mtime = Math.max(mtime, s.mtimeMs);
  }
  return { size, mtime_ms: mtime };
}

const sameStamp = (a: FileStamp, b: FileStamp) => (a === null || b === null ? a === b : a.size === b.size && a.mtime_ms === b.mtime_ms);

/** Counts a phase from its ledgers, streaming (memory: one record plus the verdicts' outcomes). */
export function countPhase(trajectoriesFile: string, verdictsFile: string): PhaseCounts {
  const outcomes = new Map<string, Verdict['outcome']>();
  let finalVerdicts = 0;
  let repeatedErrors = 0;
  readVerdictsStreaming(verdictsFile, (v) => {
    if (v.outcome !== 'error') finalVerdicts += 1;
    if (v.outcome === 'repeated_error') repeatedErrors += 1;
    // The final outcome per (instance, patch); the spec hash is the run's own, so it is left out here.
    const key = `${v.instance_id}@${v.patch_hash}`;
    if (v.outcome !== 'error' || !outcomes.has(key)) outcomes.set(key, v.outcome);
  });
  let trajectories = 0;
  let resolved = 0;
  let successes = 0;
  let emptyPatch = 0;
  for (const { head: t } of readTrajectoryHeads(trajectoriesFile)) {
    trajectories += 1;
    const outcome = outcomes.get(`${t.instance_id}@${patchHash(normalizePatch(t.patch))}`);
    if (outcome === 'resolved') resolved += 1;
    if (outcome === 'resolved' && t.outcome.status === 'finished') successes += 1;
    if (t.patch.trim() === '') emptyPatch += 1;
  }
  return { trajectories, resolved, successes, empty_patch: emptyPatch, final_verdicts: finalVerdicts, repeated_errors: repeatedErrors };
}

export function phaseSummaryFile(trajectoriesFile: string): string {
  return path.join(path.dirname(trajectoriesFile), PHASE_SUMMARY_FILE);
}

function readSummary(file: string): PhaseSummary | null {
  if (!existsSync(file)) return null;
  try {
    const parsed = PhaseSummarySchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    // An unreadable summary is only a cache: it is rebuilt from the ledgers, never trusted.
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}

/**
 * The phase's counts: the summary's when both ledgers are as it recorded them, else counted from
 * the ledgers and the summary rewritten (atomically). `write: false` only reads (a directory the
 * caller may not write to is not an error: the counts are returned all the same).
 */
export function phaseCounts(trajectoriesFile: string, verdictsFile: string, options: { write?: boolean } = {}): PhaseCounts {
  const file = phaseSummaryFile(trajectoriesFile);
  const before = { trajectories: stamp(trajectoriesFile), verdicts: stamp(verdictsFile) };
  const saved = readSummary(file);
  if (saved && sameStamp(saved.trajectories_file, before.trajectories) && sameStamp(saved.verdicts_file, before.verdicts)) return saved.counts;
  const counts = countPhase(trajectoriesFile, verdictsFile);
  // Recorded only if neither ledger changed while it was counted (the loop may be appending).
  const after = { trajectories: stamp(trajectoriesFile), verdicts: stamp(verdictsFile) };
  if ((options.write ?? true) && before.trajectories !== null && sameStamp(before.trajectories, after.trajectories) && sameStamp(before.verdicts, after.verdicts)) {
    try {
      writeJsonAtomic(file, PhaseSummarySchema.parse({ format: 1, trajectories_file: before.trajectories, verdicts_file: before.verdicts, counts }));
    } catch {
      // A read-only run folder: the counts stand, the next reader counts again.
    }
  }
  return counts;
}
