import type { z } from 'zod';
import type { FinetuneSchema } from '../recipe/schema.js';
import type { FinetuneJob } from './job.js';

/**
 * The fine-tuning step of the loop (design §7): SFT data of iteration k in, model M_{k+1} out.
 *
 * `run` is idempotent and resumable. It first reads `<outputDir>/finetune.json`:
 *   - succeeded → returns it (nothing runs again);
 *   - running or pending → re-attaches to what the record names (the trainer process, the API
 *     job) and never starts a second one;
 *   - failed → throws FinetuneFailedError with the reason. A re-run throws again, unless
 *     `retryFailed` is set: then the failed record is set aside as finetune.failed-<attempt>.json
 *     and the next attempt starts afresh;
 *   - recorded for another dataset (sha256), base model or backend → FinetuneMismatchError.
 * Transient trouble (API unreachable after retries, the abort signal) throws
 * FinetuneInterruptedError or the abort reason and keeps the record, so a re-run resumes.
 */

export type FinetuneConfig = z.output<typeof FinetuneSchema>;
export type CommandFinetuneConfig = Extract<FinetuneConfig, { backend: 'command' }>;
export type OpenAiFinetuneConfig = Extract<FinetuneConfig, { backend: 'openai' }>;

export interface TrainerInput {
  iteration: number;
  /** The SFT chat JSONL to train on. */
  dataset: string;
  datasetSha256: string;
  /** What training starts from (the recipe's base_model, or M_k when start_from is `previous`). */
  baseModel: string;
  /** runLayout.finetuneDir(runDir, iteration): finetune.json, trainer.log, the trainer's output. */
  outputDir: string;
  runDir: string;
  recipeHash: string;
  runName: string;
  /** Set aside a failed record and try again (see above). */
  retryFailed?: boolean;
  /** Seed of the API fine-tune (openai); default derived from run name and iteration. */
  seed?: number;
  /**
   * Stops waiting (rejects with the signal's reason). The trainer process or API job is left
   * running and the record kept: a later run() re-attaches, exactly as after a killed rft.
   */
  signal?: AbortSignal;
}

export type JobUpdate = (job: FinetuneJob) => void;

export interface Trainer {
  readonly backend: FinetuneConfig['backend'];
  /** Resolves with the succeeded record (its `output_model` is M_{k+1}). */
  run(input: TrainerInput, onUpdate?: JobUpdate): Promise<FinetuneJob>;
}

export interface TrainerOptions {
  /** For `openai`: the key itself, read by the caller from the env variable `finetune.api_key_env`. Never written anywhere. */
  apiKey?: string | null;
  log: (message: string) => void;
  /** Warnings (default: log with a `warning:` prefix). */
  warn?: (message: string) => void;
  /** Working directory of the trainer command and base of relative paths in it (default: process.cwd()). */
  cwd?: string;
  /** Poll period: command backend (default 1000 ms); openai backend (default finetune.poll_interval_s). Tests shorten it. */
  pollIntervalMs?: number;
  /** SIGTERM → SIGKILL grace when a trainer is stopped on timeout (default 10 s). */
  killGraceMs?: number;
}
