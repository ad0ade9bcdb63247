import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeJsonAtomic } from '../store/atomic.js';
import { runLayout } from './layout.js';

/**
 * An iteration that trained nothing (selection kept no trajectory) under
 * `finetune.on_empty: carry_forward`: M_{k+1} is M_k, no trainer ran. Recorded in the iteration's
 * finetune folder, beside where finetune.json would be, so that `rft status`, the report and a
 * resumed run all read the same M_{k+1}. M_{k+1} is not evaluated again: its weights are M_k's,
 * whose eval is eval/m<k> (another eval would only add sampling noise to the curve).
 */

export const CARRIED_FORWARD_FILE = 'carried-forward.json';

export const CarriedForwardSchema = z.object({
  iteration: z.number().int().min(0),
  /** The model M_{k+1} is: M_k, as it was served. */
  model: z.string(),
  /** Why nothing was trained, as the loop told it. */
  reason: z.string(),
  recorded_at: z.string(),
});
export type CarriedForward = z.infer<typeof CarriedForwardSchema>;

export function carriedForwardFile(runDir: string, k: number): string {
  return path.join(runLayout.finetuneDir(runDir, k), CARRIED_FORWARD_FILE);
}

/** Iteration k's carry-forward record, or null when iteration k did not carry its model forward. */
export function readCarriedForward(runDir: string, k: number): CarriedForward | null {
  const file = carriedForwardFile(runDir, k);
  if (!existsSync(file)) return null;
  const parsed = CarriedForwardSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${file}: field ${issue.path.map(String).join('.') || '(file)'}: ${issue.message}`);
  }
  return parsed.data;
}

/** Records (atomically) that iteration k carried M_k forward; a record already there is kept as it is. */
export function recordCarriedForward(runDir: string, record: Omit<CarriedForward, 'recorded_at'>): CarriedForward {
  const existing = readCarriedForward(runDir, record.iteration);
  if (existing) return existing;
  const full = CarriedForwardSchema.parse({ ...record, recorded_at: new Date().toISOString() });
  mkdirSync(runLayout.finetuneDir(runDir, record.iteration), { recursive: true });
  writeJsonAtomic(carriedForwardFile(runDir, record.iteration), full);
  return full;
}
