import { existsSync, mkdirSync } from 'node:fs';
import {
  FinetuneFailedError,
  FinetuneMismatchError,
  jobFile,
  nowIso,
  readJob,
  setAsideFailedJob,
  writeJob,
  type FinetuneJob,
} from './job.js';
import type { JobUpdate, TrainerInput } from './trainer.js';

/** What both backends share: reading the record, the decisions of Trainer.run, and saving. */

export interface JobContext {
  input: TrainerInput;
  log: (message: string) => void;
  warn: (message: string) => void;
  /** Writes the record atomically, then tells onUpdate. */
  save(job: FinetuneJob): void;
  /** Records the failure and returns the error to throw. */
  fail(job: FinetuneJob, reason: string): FinetuneFailedError;
}

export interface BackendRunner {
  readonly backend: FinetuneJob['backend'];
  /** Checks the configuration against the input (templates, …) before anything is written. */
  prepare(input: TrainerInput): void;
  /** A succeeded record checked against the recipe as it is now (its output model read again); default: as recorded. */
  reread?(job: FinetuneJob, ctx: JobContext): FinetuneJob;
  /** Continues `job` (fresh and pending, or pending/running from a previous process) to success. */
  execute(job: FinetuneJob, ctx: JobContext): Promise<FinetuneJob>;
}

export async function runResumable(
  runner: BackendRunner,
  input: TrainerInput,
  onUpdate: JobUpdate | undefined,
  log: (message: string) => void,
  warn: (message: string) => void,
): Promise<FinetuneJob> {
  mkdirSync(input.outputDir, { recursive: true });
  const file = jobFile(input.outputDir);
  let attempt = 1;
  let job = readJob(input.outputDir);
  if (job) {
    if (job.backend !== runner.backend) throw new FinetuneMismatchError(file, 'backend', job.backend, runner.backend);
    if (job.iteration !== input.iteration) throw new FinetuneMismatchError(file, 'iteration', String(job.iteration), String(input.iteration));
    if (job.status === 'failed') {
      if (!input.retryFailed) throw new FinetuneFailedError(job);
      attempt = setAsideFailedJob(input.outputDir, job);
      warn(`retrying the failed fine-tune of iteration ${input.iteration} (attempt ${attempt}; the failed record is kept as finetune.failed-${job.attempt}.json)`);
      job = null;
    } else {
      if (job.dataset_sha256 !== input.datasetSha256) throw new FinetuneMismatchError(file, 'dataset sha256', job.dataset_sha256, input.datasetSha256);
      if (job.base_model !== input.baseModel) throw new FinetuneMismatchError(file, 'base model', job.base_model, input.baseModel);
    }
  }
  const ctx: JobContext = {
    input,
    log,
    warn,
    save(next) {
      writeJob(input.outputDir, next);
      if (!onUpdate) return;
      // A failing observer must not break (or kill) a running fine-tune.
      try {
        onUpdate(structuredClone(next));
      } catch (err) {
        warn(`the fine-tune update callback failed: ${(err as Error)?.message ?? String(err)}`);
      }
    },
    fail(failed, reason) {
      failed.status = 'failed';
      failed.error = reason;
      failed.finished_at = nowIso();
      ctx.save(failed);
      return new FinetuneFailedError(structuredClone(failed));
    },
  };
  if (job?.status === 'succeeded') {
    const current = runner.reread ? runner.reread(job, ctx) : job;
    log(`fine-tune of iteration ${input.iteration} already succeeded: ${current.output_model}`);
    return current;
  }
  runner.prepare(input);
  if (job === null) {
    if (!existsSync(input.dataset)) throw new Error(`the fine-tune dataset ${input.dataset} does not exist`);
    job = {
      iteration: input.iteration,
      attempt,
      backend: runner.backend,
      status: 'pending',
      dataset: input.dataset,
      dataset_sha256: input.datasetSha256,
      base_model: input.baseModel,
      output_model: null,
      started_at: nowIso(),
      finished_at: null,
      error: null,
    };
    ctx.save(job);
  } else {
    log(`resuming the fine-tune of iteration ${input.iteration} (${job.status}, recorded in ${file})`);
  }
  return runner.execute(job, ctx);
}
