import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for the OpenAI endpoints the `openai` trainer uses (files and fine-tuning
 * jobs), on 127.0.0.1. Jobs go validating_files → queued → running → succeeded (or failed), one
 * step per retrieve. It counts uploads and job creations so tests can prove "never two jobs".
 */

export interface StandinFile {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  status: 'uploaded' | 'processed' | 'error';
  status_details?: string;
  content: string;
  retrievals: number;
}

export interface StandinJob {
  id: string;
  object: 'fine_tuning.job';
  created_at: number;
  model: string;
  training_file: string;
  validation_file: null;
  status: 'validating_files' | 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  fine_tuned_model: string | null;
  error: { code: string; message: string; param: string | null } | null;
  finished_at: number | null;
  hyperparameters: Record<string, unknown>;
  method: Record<string, unknown>;
  metadata: Record<string, string> | null;
  organization_id: string;
  result_files: string[];
  seed: number;
  suffix?: string | null;
  trained_tokens: number | null;
  integrations: null;
  /** Stand-in only: how the job ends. */
  outcome: { kind: 'succeed' } | { kind: 'fail'; code: string; message: string };
}

export interface StandinOptions {
  apiKey: string;
  /** Outcome of each created job, in order; past the end: succeed. */
  outcomes?: StandinJob['outcome'][];
  /** Destroy the connection of the first N creates after creating the job (the answer is lost). */
  dropCreateAnswers?: number;
  /** false: ignore the metadata filter of the list endpoint (return everything). */
  honorMetadataFilter?: boolean;
  maxPageSize?: number;
  /** Uploaded files end in this processing error. */
  fileError?: string;
}

export class OpenAiStandin {
  url = '';
  readonly files = new Map<string, StandinFile>();
  readonly jobs: StandinJob[] = [];
  uploads = 0;
  jobCreates = 0;
  readonly requests: { method: string; path: string; auth: string | undefined; body: unknown }[] = [];
  private server: Server | null = null;
  private clock = 1_700_000_000;
  private dropped = 0;

  constructor(readonly options: StandinOptions) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        this.handle(req, res, Buffer.concat(chunks)).catch((err: unknown) => send(res, 500, { error: { message: String(err) } }));
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
    return this.url;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }

  /** Adds a job directly (not counted as a create): other runs' jobs in the same organisation. */
  seedJob(fields: Partial<StandinJob> & { metadata: Record<string, string> | null }): StandinJob {
    const job = this.newJob({ model: 'gpt-4o-mini', training_file: 'file-other', seed: 1, method: {}, ...fields });
    if (fields.status) job.status = fields.status;
    return job;
  }

  /** Adds an uploaded, processed file directly (not counted as an upload). */
  seedFile(content: string): StandinFile {
    const file: StandinFile = {
      id: `file-${this.files.size + 1}`,
      object: 'file',
      bytes: Buffer.byteLength(content),
      created_at: this.tick(),
      filename: 'seeded.jsonl',
      purpose: 'fine-tune',
      status: 'processed',
      content,
      retrievals: 0,
    };
    this.files.set(file.id, file);
    return file;
  }

  private tick(): number {
    return ++this.clock;
  }

  private newJob(fields: { model: string; training_file: string; seed: number; method: Record<string, unknown>; suffix?: string | null; metadata: Record<string, string> | null }): StandinJob {
    const outcome = this.options.outcomes?.[this.jobs.length] ?? { kind: 'succeed' as const };
    const job: StandinJob = {
      id: `ftjob-${this.jobs.length + 1}`,
      object: 'fine_tuning.job',
      created_at: this.tick(),
      model: fields.model,
      training_file: fields.training_file,
      validation_file: null,
      status: 'validating_files',
      fine_tuned_model: null,
      error: null,
      finished_at: null,
      hyperparameters: {},
      method: fields.method,
      metadata: fields.metadata,
      organization_id: 'org-standin',
      result_files: [],
      seed: fields.seed,
      suffix: fields.suffix ?? null,
      trained_tokens: null,
      integrations: null,
      outcome,
    };
    this.jobs.push(job);
    return job;
  }

  private async handle(req: IncomingMessage, res: ServerResponse, raw: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://standin');
    const auth = req.headers.authorization;
    const isJson = (req.headers['content-type'] ?? '').includes('application/json');
    this.requests.push({ method: req.method ?? '', path: url.pathname, auth, body: isJson && raw.length ? JSON.parse(raw.toString('utf8')) : null });
    if (auth !== `Bearer ${this.options.apiKey}`) {
      const given = (auth ?? '').replace(/^Bearer /, '');
      send(res, 401, {
        error: { message: `Incorrect API key provided: ${given}. You can find your API key at https://platform.openai.com/account/api-keys.`, type: 'invalid_request_error', code: 'invalid_api_key', param: null },
      });
      return;
    }
    const route = `${req.method} ${url.pathname}`;
    let match: RegExpExecArray | null;
    if (route === 'POST /v1/files') {
      const form = await new Request('http://standin/', { method: 'POST', headers: { 'content-type': req.headers['content-type'] ?? '' }, body: raw }).formData();
      const upload = form.get('file');
      if (!(upload instanceof File)) return send(res, 400, { error: { message: 'file is required' } });
      this.uploads++;
      const content = await upload.text();
      const file: StandinFile = {
        id: `file-${this.files.size + 1}`,
        object: 'file',
        bytes: Buffer.byteLength(content),
        created_at: this.tick(),
        filename: upload.name,
        purpose: String(form.get('purpose')),
        status: 'uploaded',
        content,
        retrievals: 0,
      };
      this.files.set(file.id, file);
      return send(res, 200, publicFile(file));
    }
    if (req.method === 'GET' && (match = /^\/v1\/files\/([^/]+)$/.exec(url.pathname))) {
      const file = this.files.get(match[1]!);
      if (!file) return send(res, 404, { error: { message: `No such File object: ${match[1]}` } });
      // Processed (or in error) from the second look on.
      if (++file.retrievals >= 2 && file.status === 'uploaded') {
        if (this.options.fileError) {
          file.status = 'error';
          file.status_details = this.options.fileError;
        } else file.status = 'processed';
      }
      return send(res, 200, publicFile(file));
    }
    if (route === 'POST /v1/fine_tuning/jobs') {
      const body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      const file = this.files.get(String(body.training_file));
      if (!file) return send(res, 400, { error: { message: `invalid training_file: ${String(body.training_file)}`, param: 'training_file' } });
      if (file.status !== 'processed') return send(res, 400, { error: { message: `File ${file.id} is not ready` } });
      this.jobCreates++;
      const job = this.newJob({
        model: String(body.model),
        training_file: file.id,
        seed: Number(body.seed),
        method: (body.method as Record<string, unknown>) ?? {},
        suffix: (body.suffix as string | undefined) ?? null,
        metadata: (body.metadata as Record<string, string> | undefined) ?? null,
      });
      if (this.dropped < (this.options.dropCreateAnswers ?? 0)) {
        this.dropped++;
        req.socket.destroy();
        return;
      }
      return send(res, 200, publicJob(job));
    }
    if (req.method === 'GET' && (match = /^\/v1\/fine_tuning\/jobs\/([^/]+)$/.exec(url.pathname))) {
      const job = this.jobs.find((j) => j.id === match![1]);
      if (!job) return send(res, 404, { error: { message: `No such job: ${match[1]}` } });
      advance(job, this.tick());
      return send(res, 200, publicJob(job));
    }
    if (route === 'GET /v1/fine_tuning/jobs') {
      const filter: Record<string, string> = {};
      for (const [key, value] of url.searchParams) {
        const name = /^metadata\[(.+)\]$/.exec(key)?.[1];
        if (name) filter[name] = value;
      }
      let list = [...this.jobs].sort((a, b) => b.created_at - a.created_at);
      if (this.options.honorMetadataFilter ?? true) {
        list = list.filter((job) => Object.entries(filter).every(([k, v]) => job.metadata?.[k] === v));
      }
      const after = url.searchParams.get('after');
      if (after) list = list.slice(list.findIndex((job) => job.id === after) + 1);
      const limit = Math.min(Number(url.searchParams.get('limit') ?? 20), this.options.maxPageSize ?? 100);
      return send(res, 200, { object: 'list', data: list.slice(0, limit).map(publicJob), has_more: list.length > limit });
    }
    send(res, 404, { error: { message: `no route ${route}` } });
  }
}

function advance(job: StandinJob, now: number): void {
  const order = ['validating_files', 'queued', 'running'] as const;
  const at = order.indexOf(job.status as (typeof order)[number]);
  if (at < 0) return;
  if (at < order.length - 1) {
    job.status = order[at + 1]!;
    return;
  }
  job.finished_at = now;
  if (job.outcome.kind === 'succeed') {
    job.status = 'succeeded';
    job.fine_tuned_model = `ft:${job.model}:org-standin:${job.suffix ?? ''}:${job.id}`;
    job.trained_tokens = 1234;
  } else {
    job.status = 'failed';
    job.error = { code: job.outcome.code, message: job.outcome.message, param: 'training_file' };
  }
}

function publicJob(job: StandinJob): Omit<StandinJob, 'outcome'> {
  const { outcome: _outcome, ...rest } = job;
  return rest;
}

function publicFile(file: StandinFile): Omit<StandinFile, 'content' | 'retrievals'> {
  const { content: _content, retrievals: _retrievals, ...rest } = file;
  return rest;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}
