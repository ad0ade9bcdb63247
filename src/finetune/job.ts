import { existsSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeJsonAtomic } from '../store/atomic.js';

/**
 * The fine-tune job record, `<finetuneDir>/finetune.json` (design §7, §8). It is replaced
 * atomically at every state change and always BEFORE an action that costs something (starting
 * the trainer process, uploading the dataset, creating the API job), so that a resumed run
 * re-attaches to what was started and never starts it twice. It never holds a secret.
 */

export const FINETUNE_FILE = 'finetune.json';

export const FinetuneStatusSchema = z.enum(['pending', 'running', 'succeeded', 'failed']);
export type FinetuneStatus = z.infer<typeof FinetuneStatusSchema>;

export const CommandJobSchema = z.object({
  /** Process id of the wrapper shell, the leader of the trainer's own process group. */
  pid: z.number().int().nullable(),
  /** Kernel start time of `pid` (/proc/<pid>/stat field 22), so a recycled pid is not mistaken for the trainer. */
  start_ticks: z.string().nullable().default(null),
  /** The rendered trainer command as run by /bin/sh -c (rendered from the recipe: no secrets). */
  cmdline: z.string(),
  cwd: z.string(),
  /** stdout + stderr of the trainer, appended to across starts. */
  log: z.string(),
  /** Written by the wrapper, atomically, when the command ends: its exit status. */
  exit_code_file: z.string(),
  exit_code: z.number().int().nullable().default(null),
  /** How many times the command was started for this attempt (> 1 after the trainer died with rft). */
  starts: z.number().int().min(0).default(0),
  /** When the current start began; `timeout_s` counts from here. */
  started_at: z.string().nullable().default(null),
});
export type CommandJob = z.infer<typeof CommandJobSchema>;

export const OpenAiJobSchema = z.object({
  file_id: z.string().nullable(),
  job_id: z.string().nullable(),
  /** Last status seen from the API (validating_files, queued, running, succeeded, failed, cancelled). */
  status: z.string().nullable(),
});
export type OpenAiJob = z.infer<typeof OpenAiJobSchema>;

export const FinetuneJobSchema = z.object({
  iteration: z.number().int().min(0),
  /** 1 for the first try; a retry of a failed fine-tune (retryFailed) is the next attempt. */
  attempt: z.number().int().min(1).default(1),
  backend: z.enum(['command', 'openai']),
  status: FinetuneStatusSchema,
  dataset: z.string(),
  dataset_sha256: z.string(),
  /** What training starts from (the base weights, or M_k when start_from is `previous`). */
  base_model: z.string(),
  output_model: z.string().nullable(),
  started_at: z.string(),
  finished_at: z.string().nullable(),
  error: z.string().nullable(),
  command: CommandJobSchema.optional(),
  openai: OpenAiJobSchema.optional(),
});
export type FinetuneJob = z.infer<typeof FinetuneJobSchema>;

/** The fine-tune ended in failure: the loop stops and tells the user. */
export class FinetuneFailedError extends Error {
  constructor(readonly job: FinetuneJob) {
    super(
      `fine-tune of iteration ${job.iteration} failed (${job.backend}, attempt ${job.attempt}): ${job.error ?? 'unknown reason'}\n` +
        `(a re-run stops here again; retry it with \`rft resume <run-dir> --retry-failed\`, which sets the failed record aside as ` +
        `finetune.failed-${job.attempt}.json)`,
    );
    this.name = 'FinetuneFailedError';
  }
}

/** finetune.json was written for other inputs than the ones now given: refuse to mix them. */
export class FinetuneMismatchError extends Error {
  constructor(
    readonly file: string,
    readonly field: string,
    readonly recorded: string,
    readonly given: string,
  ) {
    super(
      `${file} records ${field} ${recorded}, but this run asks for ${given}; the recorded fine-tune ` +
        `belongs to other inputs. Move that folder away to train again (check the trainer or API job it names first)`,
    );
    this.name = 'FinetuneMismatchError';
  }
}

/**
 * The trainer succeeded but what the recipe says it produced is not a model (a folder without
 * config.json or adapter_config.json). Not recorded as a failure: the training is done, only the
 * recipe's wiring is wrong; once it is fixed, a re-run reads the model again without training again.
 */
export class FinetuneOutputError extends Error {
  constructor(iteration: number, problem: string) {
    super(
      `fine-tune of iteration ${iteration}: the trainer succeeded, but ${problem}. Fix the recipe and continue with ` +
        '`rft run <recipe> --allow-recipe-change` (or `rft resume`): the trained model is read again, nothing is trained twice',
    );
    this.name = 'FinetuneOutputError';
  }
}

/**
 * The trainer could not be driven to an end right now (network or API trouble, the rft process
 * being asked to stop): nothing failed for good, the record is kept, and a re-run resumes it.
 */
export class FinetuneInterruptedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FinetuneInterruptedError';
  }
}

export function jobFile(outputDir: string): string {
  return path.join(outputDir, FINETUNE_FILE);
}

export function failedJobFile(outputDir: string, attempt: number): string {
  return path.join(outputDir, `finetune.failed-${attempt}.json`);
}

/** The record in `outputDir`, or null when there is none. A corrupt record is an error, never ignored. */
export function readJob(outputDir: string): FinetuneJob | null {
  const file = jobFile(outputDir);
  if (!existsSync(file)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file} is not valid JSON (${(err as Error).message}); it was written atomically, so someone edited it`);
  }
  const parsed = FinetuneJobSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`${file} is not a fine-tune record: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

export function writeJob(outputDir: string, job: FinetuneJob): void {
  writeJsonAtomic(jobFile(outputDir), FinetuneJobSchema.parse(job));
}

/** Sets a failed record aside (finetune.failed-<attempt>.json) and returns the next attempt number. */
export function setAsideFailedJob(outputDir: string, job: FinetuneJob): number {
  renameSync(jobFile(outputDir), failedJobFile(outputDir, job.attempt));
  return nextAttempt(outputDir, job.attempt);
}

function nextAttempt(outputDir: string, atLeastAfter: number): number {
  let last = atLeastAfter;
  for (const name of readdirSync(outputDir)) {
    const match = /^finetune\.failed-(\d+)\.json$/.exec(name);
    if (match) last = Math.max(last, Number(match[1]));
  }
  return last + 1;
}

export function nowIso(): string {
  return new Date().toISOString();
}
