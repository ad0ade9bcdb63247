import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FinetuneFailedError, FinetuneInterruptedError, readJob, writeJob, type FinetuneJob } from '../../src/finetune/job.js';
import { jobMetadata, redactSecrets } from '../../src/finetune/openai.js';
import { createTrainer } from '../../src/finetune/create-trainer.js';
import type { OpenAiFinetuneConfig, TrainerInput } from '../../src/finetune/trainer.js';
import { runLayout } from '../../src/loop/layout.js';
import { FinetuneSchema } from '../../src/recipe/schema.js';
import { OpenAiStandin, type StandinOptions } from './openai-standin.js';

const KEY = 'sk-test-SECRET-0123456789abcdef';
const DATASET = '{"messages":[{"role":"system","content":"s"},{"role":"user","content":"u"},{"role":"assistant","content":"a"}]}\n';

let standin: OpenAiStandin | null = null;
afterEach(async () => {
  await standin?.close();
  standin = null;
});

async function startStandin(options: Partial<StandinOptions> = {}): Promise<OpenAiStandin> {
  standin = new OpenAiStandin({ apiKey: KEY, ...options });
  await standin.start();
  return standin;
}

function openaiConfig(baseUrl: string): OpenAiFinetuneConfig {
  const parsed = FinetuneSchema.parse({ backend: 'openai', base_model: 'gpt-4o-mini-2024-07-18', base_url: baseUrl });
  if (parsed.backend !== 'openai') throw new Error('unreachable');
  return parsed;
}

function setup(iteration = 0): TrainerInput {
  const runDir = mkdtempSync(path.join(tmpdir(), 'rft-ft-openai-'));
  const dataset = path.join(runDir, `iter-${iteration}`, 'datasets', 'cap-2', 'train.jsonl');
  mkdirSync(path.dirname(dataset), { recursive: true });
  writeFileSync(dataset, DATASET);
  return {
    iteration,
    dataset,
    datasetSha256: 'd'.repeat(64),
    baseModel: 'gpt-4o-mini-2024-07-18',
    outputDir: runLayout.finetuneDir(runDir, iteration),
    runDir,
    recipeHash: 'h'.repeat(16),
    runName: 'swegym-lite',
  };
}

function trainerFor(server: OpenAiStandin, logs: string[] = [], key = KEY) {
  return createTrainer(openaiConfig(server.url), { apiKey: key, log: (m) => logs.push(m), pollIntervalMs: 5 });
}

describe('openai trainer', () => {
  it('uploads, waits for processing, creates one job with the metadata, records ids before acting, polls to the model', async () => {
    const server = await startStandin();
    const input = setup();
    const logs: string[] = [];
    const seen: { job: FinetuneJob; uploads: number; creates: number }[] = [];
    const job = await trainerFor(server, logs).run(input, (update) => seen.push({ job: update, uploads: server.uploads, creates: server.jobCreates }));

    expect(job.status).toBe('succeeded');
    expect(job.output_model).toBe('ft:gpt-4o-mini-2024-07-18:org-standin:rft:ftjob-1');
    expect(job.openai).toEqual({ file_id: 'file-1', job_id: 'ftjob-1', status: 'succeeded' });
    expect(server.uploads).toBe(1);
    expect(server.jobCreates).toBe(1);
    const file = server.files.get('file-1')!;
    expect(file).toMatchObject({ purpose: 'fine-tune', content: DATASET });
    const create = server.requests.find((r) => r.method === 'POST' && r.path === '/v1/fine_tuning/jobs')!;
    expect(create.body).toMatchObject({
      model: 'gpt-4o-mini-2024-07-18',
      training_file: 'file-1',
      method: { type: 'supervised', supervised: { hyperparameters: { n_epochs: 5, batch_size: 8 } } },
      suffix: 'rft',
      metadata: { rft_run: 'swegym-lite', rft_iteration: '0', rft_recipe_hash: 'h'.repeat(16), rft_dataset_sha256: 'd'.repeat(64), rft_attempt: '1' },
    });
    expect(typeof (create.body as { seed: unknown }).seed).toBe('number');
    expect(server.requests.every((r) => r.auth === `Bearer ${KEY}`)).toBe(true);

    // The record said "running, nothing uploaded" before the upload, named the file before the
    // job was created, and named the job before the first poll.
    const runningBeforeUpload = seen.find((s) => s.job.status === 'running' && s.job.openai?.file_id === null);
    expect(runningBeforeUpload?.uploads).toBe(0);
    const fileRecorded = seen.find((s) => s.job.openai?.file_id === 'file-1' && s.job.openai.job_id === null);
    expect(fileRecorded?.creates).toBe(0);
    const jobRecorded = seen.find((s) => s.job.openai?.job_id === 'ftjob-1')!;
    expect(jobRecorded.job.openai?.status).toBe('validating_files');
    const statuses = seen.map((s) => s.job.openai?.status).filter((status, i, all) => status && status !== all[i - 1]);
    expect(statuses).toEqual(['validating_files', 'queued', 'running', 'succeeded']);

    const record = readFileSync(path.join(input.outputDir, 'finetune.json'), 'utf8');
    expect(record).not.toContain(KEY);
    expect(logs.join('\n')).not.toContain(KEY);
  });

  it('rft killed after the job was created: the next run re-attaches, and the API saw exactly one job', async () => {
    const server = await startStandin();
    const input = setup();
    const controller = new AbortController();
    const first = trainerFor(server).run({ ...input, signal: controller.signal }, (update) => {
      if (update.openai?.job_id) controller.abort(new Error('rft killed'));
    });
    await expect(first).rejects.toThrow('rft killed');
    expect(readJob(input.outputDir)).toMatchObject({ status: 'running', openai: { job_id: 'ftjob-1' } });

    const logs: string[] = [];
    const job = await trainerFor(server, logs).run(input);
    expect(job).toMatchObject({ status: 'succeeded', openai: { job_id: 'ftjob-1' } });
    expect(logs.some((m) => m.includes('re-attaching to the fine-tune job ftjob-1'))).toBe(true);
    expect(server.jobCreates).toBe(1);
    expect(server.uploads).toBe(1);
  });

  it('rft killed between creating the job and recording it: the job is found by its metadata across pages; still one job', async () => {
    // The stand-in ignores the metadata filter and pages by two, so the trainer must page and match itself.
    const server = await startStandin({ honorMetadataFilter: false, maxPageSize: 2 });
    const input = setup(1);
    const file = server.seedFile(DATASET);
    // The previous rft process: recorded the file, created the job …
    mkdirSync(input.outputDir, { recursive: true });
    writeJob(input.outputDir, {
      iteration: 1,
      attempt: 1,
      backend: 'openai',
      status: 'running',
      dataset: input.dataset,
      dataset_sha256: input.datasetSha256,
      base_model: input.baseModel,
      output_model: null,
      started_at: new Date().toISOString(),
      finished_at: null,
      error: null,
      openai: { file_id: file.id, job_id: null, status: null },
    });
    const created = await fetch(`${server.url}/fine_tuning/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: input.baseModel, training_file: file.id, seed: 7, metadata: jobMetadata(input, 1) }),
    }).then((r) => r.json() as Promise<{ id: string }>);
    // … and was killed before writing the job id. Meanwhile other jobs were created in the organisation.
    const meta = jobMetadata(input, 1);
    server.seedJob({ metadata: { ...meta, rft_iteration: '0' } });
    server.seedJob({ metadata: { ...meta, rft_dataset_sha256: 'e'.repeat(64) } });
    server.seedJob({ metadata: { ...meta, rft_run: 'other-run' } });
    server.seedJob({ metadata: { ...meta, rft_attempt: '2' } });
    server.seedJob({ metadata: null });

    const logs: string[] = [];
    const job = await trainerFor(server, logs).run(input);
    expect(job).toMatchObject({ status: 'succeeded', openai: { job_id: created.id, file_id: file.id } });
    expect(logs.some((m) => m.includes(`found the fine-tune job ${created.id}`))).toBe(true);
    expect(server.jobCreates).toBe(1);
    expect(server.uploads).toBe(0);
    const listCalls = server.requests.filter((r) => r.method === 'GET' && r.path === '/v1/fine_tuning/jobs');
    expect(listCalls.length).toBeGreaterThan(1);
  });

  it('a create whose answer is lost is found by its metadata instead of being created again', async () => {
    const server = await startStandin({ dropCreateAnswers: 1 });
    const input = setup();
    const logs: string[] = [];
    const job = await trainerFor(server, logs).run(input);
    expect(job).toMatchObject({ status: 'succeeded', openai: { job_id: 'ftjob-1' } });
    expect(server.jobCreates).toBe(1);
    expect(logs.some((m) => m.includes('the create call failed') && m.includes('ftjob-1 exists'))).toBe(true);
  });

  it("a failed job is a FinetuneFailedError with the job's message; re-runs stop again until retryFailed starts attempt 2", async () => {
    const server = await startStandin({ outcomes: [{ kind: 'fail', code: 'invalid_training_file', message: 'Line 3: the example has too many tokens' }] });
    const input = setup();
    const failure = await trainerFor(server).run(input).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(FinetuneFailedError);
    expect((failure as Error).message).toContain('the fine-tune job ftjob-1 failed: Line 3: the example has too many tokens (invalid_training_file, training_file)');
    expect(readJob(input.outputDir)).toMatchObject({ status: 'failed', openai: { job_id: 'ftjob-1', status: 'failed' } });

    const requestsBefore = server.requests.length;
    await expect(trainerFor(server).run(input)).rejects.toBeInstanceOf(FinetuneFailedError);
    expect(server.requests.length).toBe(requestsBefore);

    const job = await trainerFor(server).run({ ...input, retryFailed: true });
    expect(job).toMatchObject({ status: 'succeeded', attempt: 2, openai: { job_id: 'ftjob-2' } });
    expect(server.jobCreates).toBe(2);
    expect(server.jobs[1]!.metadata).toMatchObject({ rft_attempt: '2' });
    expect(existsSync(path.join(input.outputDir, 'finetune.failed-1.json'))).toBe(true);
  });

  it('a file the API cannot process fails with its status details', async () => {
    const server = await startStandin({ fileError: 'Invalid file format: line 1 is not JSON' });
    const input = setup();
    const failure = await trainerFor(server).run(input).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(FinetuneFailedError);
    expect((failure as Error).message).toContain('could not process the dataset file file-1: Invalid file format: line 1 is not JSON');
    expect(server.jobCreates).toBe(0);
  });

  it('the key never appears in finetune.json, the log or the error, even when the API echoes it', async () => {
    const server = await startStandin();
    const input = setup();
    const logs: string[] = [];
    const wrongKey = 'sk-proj-WRONGKEY-abcdef0123456789';
    const failure = await trainerFor(server, logs, wrongKey).run(input).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(FinetuneInterruptedError);
    const text = `${(failure as Error).message}\n${(failure as Error).stack}`;
    expect(text).toContain('401');
    expect(text).not.toContain(wrongKey);
    expect(text).not.toContain('WRONGKEY');
    expect(readFileSync(path.join(input.outputDir, 'finetune.json'), 'utf8')).not.toContain('WRONGKEY');
    expect(logs.join('\n')).not.toContain('WRONGKEY');
    // The record is kept (nothing was spent): fixing the key and running again resumes it.
    const job = await trainerFor(server).run(input);
    expect(job.status).toBe('succeeded');
    expect(server.jobCreates).toBe(1);
  });

  it('needs the key, and names the env variable when it is missing', () => {
    expect(() => createTrainer(openaiConfig('http://127.0.0.1:1/v1'), { apiKey: null, log: () => {} })).toThrow(/OPENAI_API_KEY/);
  });

  it('redacts the key and key-shaped strings', () => {
    expect(redactSecrets('bad key my-secret-value and sk-abc123456789 seen', ['my-secret-value'])).toBe('bad key *** and sk-*** seen');
  });
});
