import path from 'node:path';
import { z } from 'zod';
import { Ledger, readRecords } from '../store/ledger.js';

/**
 * runs/<name>/stops.jsonl: one line per rollout stopped by the user (Ctrl-C, SIGTERM) with
 * trajectories in flight. Those trajectories ended at their next LLM call and were not recorded
 * (a trajectory cut short is not a sample): resume asks for them again from the start, so their
 * calls are paid twice. The line keeps what they cost; `rft status` sums it. Append-only, like the
 * ledgers; it is a cost figure, never read back as data.
 */
export const STOPS_FILE = 'stops.jsonl';

const Count = z.number().int().nonnegative();

export const StopRecordSchema = z.object({
  /** The rollout stopped: `iter-<k>` or `eval-m<m>`. */
  phase: z.string().min(1),
  stopped_at: z.iso.datetime({ offset: true }),
  /** Trajectories in flight when the stop came, ended without a record. */
  trajectories: Count,
  /** LLM calls those trajectories made (answered), and their tokens as the endpoint counted them. */
  llm_calls: Count,
  tokens: z.object({ prompt: Count, completion: Count }),
});
export type StopRecord = z.infer<typeof StopRecordSchema>;

/** Appends one stop record (the file is opened and closed: a stop happens once per process). */
export function recordStop(runDir: string, record: StopRecord, warn: (message: string) => void = () => {}): void {
  const file = path.join(runDir, STOPS_FILE);
  const { ledger } = Ledger.open(file, StopRecordSchema, (bytes) => warn(`${file}: dropped a torn last line (${bytes} bytes) left by an interrupted write`));
  try {
    ledger.append(record);
  } finally {
    ledger.close();
  }
}

/** Every stop recorded in a run (none when the file is missing). */
export function readStops(runDir: string): StopRecord[] {
  return [...readRecords(path.join(runDir, STOPS_FILE), StopRecordSchema)];
}

/** The stops' cost in one line for `rft status`, or null when the run was never stopped mid-trajectory. */
export function stopsSummary(stops: readonly StopRecord[]): string | null {
  const trajectories = stops.reduce((n, s) => n + s.trajectories, 0);
  if (trajectories === 0) return null;
  const calls = stops.reduce((n, s) => n + s.llm_calls, 0);
  const prompt = stops.reduce((n, s) => n + s.tokens.prompt, 0);
  const completion = stops.reduce((n, s) => n + s.tokens.completion, 0);
  const times = stops.length === 1 ? 'once' : `${stops.length} times`;
  return `stopped by the user ${times}: ${trajectories} trajectories in flight were ended unrecorded, ${calls} LLM calls (${prompt} prompt + ${completion} completion tokens) paid that a resume asks for again`;
}
