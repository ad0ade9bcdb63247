import { createReadStream, statSync } from 'node:fs';
import OpenAI, { toFile } from 'openai';
import type { FineTuningJob, JobCreateParams } from 'openai/resources/fine-tuning/jobs/jobs';
import type { SupervisedHyperparameters } from 'openai/resources/fine-tuning/methods';
import { deriveSeed } from '../policy/seed.js';
import { FinetuneFailedError, FinetuneInterruptedError, nowIso, type FinetuneJob } from './job.js';
import { abortReason, sleep } from './process.js';
import { runResumable, type BackendRunner, type JobContext } from './resume.js';
import type { JobUpdate, OpenAiFinetuneConfig, Trainer, TrainerInput, TrainerOptions } from './trainer.js';

/**
 * The `openai` trainer backend (design §7): upload the SFT file, wait until it is processed,
 * create a supervised fine-tuning job, poll it to the end; `fine_tuned_model` is M_{k+1}.
 *
 * Never two jobs for one fine-tune: the file id and the job id are recorded in finetune.json the
 * moment they are known, the job carries metadata naming run, iteration, dataset sha256 and
 * attempt, and whenever no job id is recorded (first start, rft killed between creating the job
 * and recording it, a dropped connection during the create) the jobs are listed and searched by
 * that metadata before one is created. The create call itself is never retried blindly.
 *
 * The API key is only given to the SDK: it is never written to finetune.json, the log or an
 * error message (API messages are scrubbed of it, and of anything shaped like a key).
 */

const DEFAULT_BASE_URL = 'https://api.openai.com/v1';
/** Polls grow by this factor while the status stays the same, up to MAX_BACKOFF × poll_interval_s. */
const BACKOFF = 1.25;
const MAX_BACKOFF = 4;
const CREATE_TRIES = 4;
const POLL_FAILURES_TOLERATED = 3;

export interface OpenAiTrainerOptions extends TrainerOptions {
  apiKey: string;
}

/** Metadata of the job: what a resumed run searches for. Values are strings (the API's rule). */
export function jobMetadata(input: TrainerInput, attempt: number): Record<string, string> {
  return {
    rft_run: input.runName,
    rft_iteration: String(input.iteration),
    rft_recipe_hash: input.recipeHash,
    rft_dataset_sha256: input.datasetSha256,
    rft_attempt: String(attempt),
  };
}

/** The keys that identify one fine-tune (the recipe hash may change on --allow-recipe-change without changing the job). */
const IDENTITY_KEYS = ['rft_run', 'rft_iteration', 'rft_dataset_sha256', 'rft_attempt'] as const;

export function matchesMetadata(job: Pick<FineTuningJob, 'metadata'>, wanted: Record<string, string>): boolean {
  const metadata = job.metadata ?? {};
  return IDENTITY_KEYS.every((key) => metadata[key] === wanted[key]);
}

/** Removes the key, and anything shaped like an OpenAI key, from text bound for a record, a log or an error. */
export function redactSecrets(text: string, secrets: (string | null | undefined)[]): string {
  let out = text;
  for (const secret of secrets) if (secret && secret.length >= 4) out = out.split(secret).join('***');
  return out.replace(/\b(sk|sess)-[A-Za-z0-9_*.-]{6,}/g, '$1-***');
}

export class OpenAiTrainer implements Trainer {
  readonly backend = 'openai' as const;
  private readonly client: OpenAI;

  constructor(
    private readonly config: OpenAiFinetuneConfig,
    private readonly options: OpenAiTrainerOptions,
  ) {
    this.client = new OpenAI({
      apiKey: options.apiKey,
      baseURL: config.base_url ?? DEFAULT_BASE_URL,
      timeout: 120_000,
      maxRetries: 5,
    });
  }

  run(input: TrainerInput, onUpdate?: JobUpdate): Promise<FinetuneJob> {
    const redact = (text: string) => redactSecrets(text, [this.options.apiKey]);
    const log = (message: string) => this.options.log(redact(message));
    const warnTo = this.options.warn ?? ((message: string) => this.options.log(`warning: ${message}`));
    const warn = (message: string) => warnTo(redact(message));
    return runResumable(new OpenAiRunner(this.config, this.client, this.options, redact), input, onUpdate, log, warn);
  }
}

class OpenAiRunner implements BackendRunner {
  readonly backend = 'openai' as const;
  private readonly pollMs: number;

  constructor(
    private readonly config: OpenAiFinetuneConfig,
    private readonly client: OpenAI,
    options: OpenAiTrainerOptions,
    private readonly redact: (text: string) => string,
  ) {
    this.pollMs = options.pollIntervalMs ?? config.poll_interval_s * 1000;
  }

  prepare(): void {}

  async execute(job: FinetuneJob, ctx: JobContext): Promise<FinetuneJob> {
    try {
      return await this.drive(job, ctx);
    } catch (err) {
      const signal = ctx.input.signal;
      if (signal?.aborted) throw abortReason(signal);
      if (err instanceof FinetuneFailedError || err instanceof FinetuneInterruptedError) throw err;
      throw new FinetuneInterruptedError(
        this.redact(
          `the fine-tune of iteration ${job.iteration} could not be driven on (${describe(err)}); ` +
            `its record is kept (file ${job.openai?.file_id ?? 'not uploaded'}, job ${job.openai?.job_id ?? 'not created'}): re-run to resume`,
        ),
      );
    }
  }

  private async drive(job: FinetuneJob, ctx: JobContext): Promise<FinetuneJob> {
    const { input } = ctx;
    const state = (job.openai ??= { file_id: null, job_id: null, status: null });
    if (state.job_id === null) {
      const metadata = jobMetadata(input, job.attempt);
      const found = await this.findJob(metadata, ctx);
      if (found) {
        this.recordJob(job, found, ctx);
        ctx.log(`found the fine-tune job ${found.id} of iteration ${job.iteration} by its metadata; re-attaching`);
      } else {
        if (state.file_id === null) await this.upload(job, ctx);
        if (!(await this.fileReady(job, ctx))) {
          await this.upload(job, ctx);
          await this.fileReady(job, ctx);
        }
        const created = await this.createJob(job, metadata, ctx);
        this.recordJob(job, created, ctx);
      }
    } else {
      ctx.log(`re-attaching to the fine-tune job ${state.job_id} of iteration ${job.iteration}`);
    }
    return this.poll(job, ctx);
  }

  private async upload(job: FinetuneJob, ctx: JobContext): Promise<void> {
    const { input } = ctx;
    job.status = 'running';
    job.openai!.file_id = null;
    // Recorded before the upload: a resumed run knows it was (maybe) started.
    ctx.save(job);
    const name = `rft-${input.runName}-iter${input.iteration}-${input.datasetSha256.slice(0, 12)}.jsonl`;
    ctx.log(`uploading ${input.dataset} (${statSync(input.dataset).size} bytes) as ${name}`);
    const file = await this.client.files.create(
      { file: await toFile(createReadStream(input.dataset), name), purpose: 'fine-tune' },
      { timeout: 30 * 60_000, signal: input.signal },
    );
    job.openai!.file_id = file.id;
    ctx.save(job);
    ctx.log(`uploaded the dataset of iteration ${input.iteration} as ${file.id}`);
  }

  /** Waits until the uploaded file is processed; false if the API no longer knows it (upload again). */
  private async fileReady(job: FinetuneJob, ctx: JobContext): Promise<boolean> {
    const fileId = job.openai!.file_id!;
    const interval = Math.min(this.pollMs, 5_000);
    for (;;) {
      let file: OpenAI.Files.FileObject;
      try {
        file = await this.client.files.retrieve(fileId, { signal: ctx.input.signal });
      } catch (err) {
        if (err instanceof OpenAI.NotFoundError) {
          ctx.warn(`the uploaded file ${fileId} no longer exists at the API; uploading the dataset again`);
          return false;
        }
        throw err;
      }
      if (file.status === 'processed') return true;
      if (file.status === 'error') {
        throw ctx.fail(job, this.redact(`the API could not process the dataset file ${fileId}: ${file.status_details ?? 'no details given'}`));
      }
      await sleep(interval, ctx.input.signal);
    }
  }

  private async createJob(job: FinetuneJob, metadata: Record<string, string>, ctx: JobContext): Promise<FineTuningJob> {
    const { input } = ctx;
    const params: JobCreateParams = {
      model: job.base_model,
      training_file: job.openai!.file_id!,
      method: {
        type: 'supervised',
        // Passed as the recipe gives them (n_epochs, batch_size, learning_rate_multiplier): the API judges them.
        supervised: { hyperparameters: this.config.hyperparameters as SupervisedHyperparameters },
      },
      seed: input.seed ?? deriveSeed(input.runName, 'finetune', input.iteration),
      ...(this.config.suffix ? { suffix: this.config.suffix } : {}),
      metadata,
    };
    for (let attempt = 1; ; attempt++) {
      try {
        // Never retried by the SDK: a retry after a lost answer would create a second job.
        const created = await this.client.fineTuning.jobs.create(params, { maxRetries: 0, signal: input.signal });
        ctx.log(`created the fine-tune job ${created.id} (${job.base_model}, file ${params.training_file})`);
        return created;
      } catch (err) {
        if (input.signal?.aborted) throw abortReason(input.signal);
        if (!isAmbiguous(err)) throw ctx.fail(job, this.redact(`the API refused to create the fine-tune job: ${describe(err)}`));
        // The job may exist although the answer was lost: look before creating again.
        await sleep(Math.min(this.pollMs, 5_000), input.signal);
        const found = await this.findJob(metadata, ctx);
        if (found) {
          ctx.log(`the create call failed (${this.redact(describe(err))}) but the job ${found.id} exists; re-attaching`);
          return found;
        }
        if (attempt >= CREATE_TRIES) throw err;
        ctx.warn(`creating the fine-tune job failed (${describe(err)}) and no job of this run exists; trying again`);
        await sleep(this.pollMs * attempt, input.signal);
      }
    }
  }

  /** The newest job whose metadata names this run, iteration, dataset and attempt (all pages). */
  private async findJob(metadata: Record<string, string>, ctx: JobContext): Promise<FineTuningJob | null> {
    const filter: Record<string, string> = {};
    for (const key of IDENTITY_KEYS) filter[key] = metadata[key]!;
    const matches: FineTuningJob[] = [];
    // The server filters by metadata; the check here also holds against a server that ignores the filter.
    for await (const remote of this.client.fineTuning.jobs.list({ metadata: filter, limit: 100 }, { signal: ctx.input.signal })) {
      if (matchesMetadata(remote, metadata)) matches.push(remote);
    }
    if (matches.length === 0) return null;
    matches.sort((a, b) => b.created_at - a.created_at);
    if (matches.length > 1) {
      ctx.warn(`${matches.length} fine-tune jobs carry this run's metadata (${matches.map((m) => m.id).join(', ')}); following the newest, ${matches[0]!.id}`);
    }
    return matches[0]!;
  }

  private recordJob(job: FinetuneJob, remote: FineTuningJob, ctx: JobContext): void {
    job.status = 'running';
    job.openai!.job_id = remote.id;
    job.openai!.status = remote.status;
    if (remote.training_file) job.openai!.file_id = remote.training_file;
    ctx.save(job);
  }

  private async poll(job: FinetuneJob, ctx: JobContext): Promise<FinetuneJob> {
    const state = job.openai!;
    const jobId = state.job_id!;
    let interval = this.pollMs;
    let failures = 0;
    for (;;) {
      let remote: FineTuningJob;
      try {
        remote = await this.client.fineTuning.jobs.retrieve(jobId, { signal: ctx.input.signal });
        failures = 0;
      } catch (err) {
        if (ctx.input.signal?.aborted || !isAmbiguous(err) || ++failures > POLL_FAILURES_TOLERATED) throw err;
        ctx.warn(`polling the fine-tune job ${jobId} failed (${describe(err)}); trying again`);
        await sleep(interval, ctx.input.signal);
        continue;
      }
      if (remote.status !== state.status) {
        state.status = remote.status;
        ctx.save(job);
        ctx.log(`fine-tune job ${jobId} of iteration ${job.iteration}: ${remote.status}`);
        interval = this.pollMs;
      }
      switch (remote.status) {
        case 'succeeded': {
          if (!remote.fine_tuned_model) throw ctx.fail(job, `the fine-tune job ${jobId} succeeded without naming a fine_tuned_model`);
          job.status = 'succeeded';
          job.output_model = remote.fine_tuned_model;
          job.finished_at = nowIso();
          job.error = null;
          ctx.save(job);
          ctx.log(`fine-tune of iteration ${job.iteration} succeeded: ${remote.fine_tuned_model}`);
          return job;
        }
        case 'failed': {
          const reason = remote.error ? `${remote.error.message}${remote.error.code ? ` (${remote.error.code}${remote.error.param ? `, ${remote.error.param}` : ''})` : ''}` : 'no reason given';
          throw ctx.fail(job, this.redact(`the fine-tune job ${jobId} failed: ${reason}`));
        }
        case 'cancelled':
          throw ctx.fail(job, `the fine-tune job ${jobId} was cancelled`);
        default:
          await sleep(interval, ctx.input.signal);
          interval = Math.min(interval * BACKOFF, this.pollMs * MAX_BACKOFF);
      }
    }
  }
}

/** A failure after which the job may or may not exist / the request may succeed later. */
function isAmbiguous(err: unknown): boolean {
  if (err instanceof OpenAI.APIConnectionError) return true;
  if (err instanceof OpenAI.APIError) {
    const status = err.status;
    return status === undefined || status === 408 || status === 409 || status === 429 || status >= 500;
  }
  return false;
}

function describe(err: unknown): string {
  if (err instanceof OpenAI.APIConnectionTimeoutError) return 'request timed out';
  if (err instanceof OpenAI.APIConnectionError) return 'connection failed';
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/\s+/g, ' ').slice(0, 500);
}
