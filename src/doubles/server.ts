import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import type { StateName } from '../agent/actions.js';
import type { Instance } from '../tasks/instance.js';
import { canonicalJson } from '../util/canonical.js';
import { loadSimModels, SIM_BASE, SIM_BASE_NAME, type SimModel } from './model.js';
import { estimateTokens, SimPolicy, SimRequestError, type SimChatRequest } from './policy.js';
import { SIM_VERIFIER_NAME, SimVerifier } from './verifier.js';
import { answerSynth, type SynthStep } from './synth.js';

/**
 * The SIMULATED policy's OpenAI-compatible HTTP server (a test double, design §9): stands in for
 * vLLM or the OpenAI API in tests and the demo. Stateless: every answer comes from the request
 * alone (see policy.ts). Speaks just enough of the API for the agent's client and the serving
 * backends: POST /v1/chat/completions and GET /v1/models.
 */

export interface SimServerOptions {
  host?: string;
  port?: number;
  /** Models besides the built-in sim-base (which is always served). */
  models: readonly SimModel[];
  tasks: readonly Instance[];
  /**
   * A folder of model files (the simulated trainer writes there) read again whenever a request
   * names a model not yet loaded, so models trained during a run are served without a restart.
   */
  modelsDir?: string;
  /** Delay before each completion answer, to look like a model that takes time. */
  latencyMs?: number;
  /**
   * The model's context (vLLM's --max-model-len): a request whose prompt plus max_tokens is
   * longer is refused with HTTP 400 in vLLM's words and error shape. Default 32,768 (Qwen2.5's).
   */
  maxModelLen?: number;
  /**
   * Speak as `vllm serve` does (the stand-in in standins/vllm.ts): serve `models` only (no built-in
   * sim-base), list vLLM's model cards, answer errors in vLLM's ErrorResponse and an unknown route
   * as FastAPI does, and, when allowed, load and unload LoRA adapters at run time.
   */
  vllm?: VllmSurface;
}

/**
 * vLLM's OpenAI server surface, after vllm/entrypoints/openai/api_server.py and serving_models.py
 * (vLLM v0.10.0): GET /health answers 200 with no body; GET /v1/models lists a card per served
 * name (root = the model argument, max_model_len) and per LoRA adapter (root = its path, parent =
 * the first served name); POST /v1/load_lora_adapter and /v1/unload_lora_adapter exist only when
 * the server was started with VLLM_ALLOW_RUNTIME_LORA_UPDATING — otherwise they are unknown routes.
 */
export interface VllmSurface {
  /** The model argument of `vllm serve` (a path or hub id): the base cards' root. */
  root: string;
  /** Whether the runtime LoRA routes exist (env VLLM_ALLOW_RUNTIME_LORA_UPDATING). */
  runtimeLoraUpdating: boolean;
  /** Reads an adapter folder for POST /v1/load_lora_adapter; throws VllmHttpError in vLLM's words. */
  loadAdapter(name: string, path: string): SimModel;
  /** Adapters loaded at start (--lora-modules). */
  adapters?: ReadonlyArray<{ name: string; path: string; model: SimModel }>;
  /** --api-key: every /v1 route then wants `Authorization: Bearer <key>` (AuthenticationMiddleware). */
  apiKey?: string | null;
}

/** An error answered in vLLM's ErrorResponse shape: {error: {message, type, param, code: status}}. */
export class VllmHttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export const SIM_MAX_MODEL_LEN = 32_768;

export interface SimRequestLog {
  model: string;
  seed: number | null;
  state: StateName;
  instance_id: string | null;
}

export interface SimServer {
  /** Base URL, ending in /v1. */
  url: string;
  port: number;
  close(): Promise<void>;
  /** One entry per answered completion request, in order. */
  requests: SimRequestLog[];
  /** One entry per request answered by the SIMULATED verifier (model sim-verifier), in order. */
  verifierRequests: Array<{ instance_id: string | null; p_yes: number }>;
  /** One entry per task-synthesis prompt answered (synth.ts), in order. */
  synthRequests: Array<{ model: string; seed: number | null; step: SynthStep }>;
}

const MAX_BODY_BYTES = 32 * 1024 * 1024;

const MessageSchema = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool']),
  content: z.union([z.string(), z.array(z.unknown()), z.null()]).optional(),
  tool_calls: z
    .array(z.looseObject({ id: z.string(), type: z.literal('function'), function: z.object({ name: z.string(), arguments: z.string() }) }))
    .nullish(),
  tool_call_id: z.string().optional(),
});

const ChatRequestSchema = z.looseObject({
  model: z.string().min(1),
  messages: z.array(MessageSchema).min(1),
  tools: z
    .array(z.looseObject({ type: z.literal('function'), function: z.looseObject({ name: z.string(), description: z.string().optional(), parameters: z.unknown().optional() }) }))
    .nullish(),
  tool_choice: z.unknown().optional(),
  response_format: z.looseObject({ type: z.string() }).nullish(),
  seed: z.number().int().nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  max_tokens: z.number().int().positive().nullish(),
  max_completion_tokens: z.number().int().positive().nullish(),
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
  n: z.literal(1).nullish(),
  stream: z.literal(false).nullish(),
});

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

export async function startSimServer(options: SimServerOptions): Promise<SimServer> {
  const vllm = options.vllm;
  const models = new Map<string, SimModel>(vllm ? [] : [[SIM_BASE_NAME, SIM_BASE]]);
  for (const model of options.models) {
    if (model.name === SIM_BASE_NAME && !vllm) {
      // Passing the built-in model along is fine; redefining it is not.
      if (canonicalJson(model) === canonicalJson(SIM_BASE)) continue;
      throw new Error(`${SIM_BASE_NAME} is the built-in SIMULATED base model; give a model of your own another name`);
    }
    if (models.has(model.name)) throw new Error(`two SIMULATED models are named ${model.name}`);
    models.set(model.name, model);
  }
  // LoRA adapters by name (vLLM surface only), in load order as vLLM lists them.
  const adapters = new Map<string, { path: string; model: SimModel }>();
  for (const adapter of vllm?.adapters ?? []) {
    if (models.has(adapter.name) || adapters.has(adapter.name)) throw new Error(`two served models are named ${adapter.name}`);
    adapters.set(adapter.name, { path: adapter.path, model: adapter.model });
  }
  const lookup = (name: string): SimModel | undefined => {
    const adapter = adapters.get(name);
    if (adapter) return adapter.model;
    if (!models.has(name) && options.modelsDir && existsSync(options.modelsDir)) {
      for (const model of loadSimModels(options.modelsDir)) if (!models.has(model.name)) models.set(model.name, model);
    }
    return models.get(name);
  };
  const policy = new SimPolicy(options.tasks);
  const verifier = new SimVerifier(options.tasks);
  const requests: SimRequestLog[] = [];
  const verifierRequests: SimServer['verifierRequests'] = [];
  const synthRequests: SimServer['synthRequests'] = [];
  const started = Math.floor(Date.now() / 1000);
  const latency = options.latencyMs ?? 0;

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof VllmHttpError) return sendVllmError(res, err);
      const error = err instanceof HttpError ? err : new HttpError(500, `SIMULATED policy failed: ${(err as Error)?.message ?? String(err)}`, 'server_error');
      if (vllm && !(error instanceof VllmError)) return sendVllmError(res, new VllmHttpError(error.status, vllmErrorType(error.status), error.message));
      sendError(res, error);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sim');
    const route = url.pathname.replace(/\/+$/, '');
    if (vllm) {
      const answered = await handleVllm(req, res, url.pathname);
      if (answered) return;
    }
    if (route === '/health' && req.method === 'GET') return send(res, 200, { status: 'ok', simulated: true });
    if (route === '/v1/models') {
      if (req.method !== 'GET') throw new HttpError(405, `${req.method} is not allowed on /v1/models`, 'invalid_request_error');
      return send(res, 200, {
        object: 'list',
        data: [...models.values()].map((m) => ({ id: m.name, object: 'model', created: started, owned_by: 'rft-simulated', parent: m.parent })),
      });
    }
    const modelRoute = /^\/v1\/models\/(.+)$/.exec(route);
    if (modelRoute && req.method === 'GET') {
      const model = lookup(decodeURIComponent(modelRoute[1]!));
      if (!model) throw unknownModel(decodeURIComponent(modelRoute[1]!));
      return send(res, 200, { id: model.name, object: 'model', created: started, owned_by: 'rft-simulated', parent: model.parent });
    }
    if (route !== '/v1/chat/completions') throw new HttpError(404, `no route ${req.method} ${url.pathname} on the SIMULATED policy server`, 'invalid_request_error', 'not_found');
    if (req.method !== 'POST') throw new HttpError(405, `${req.method} is not allowed on /v1/chat/completions`, 'invalid_request_error');
    const body = await readBody(req);
    let json: unknown;
    try {
      json = JSON.parse(body);
    } catch (err) {
      throw new HttpError(400, `the request body is not valid JSON: ${(err as Error).message}`, 'invalid_request_error');
    }
    const parsed = ChatRequestSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const where = issue.path.map(String).join('.') || 'body';
      throw new HttpError(400, `invalid request: ${where}: ${issue.message}`, 'invalid_request_error', null, where);
    }
    const request = parsed.data;
    if (request.model === SIM_VERIFIER_NAME) {
      // The SIMULATED verifier's route: one token with logprobs, in vLLM's shape (verifier.ts).
      refuseOverLong(request, options.maxModelLen ?? SIM_MAX_MODEL_LEN);
      const answer = verifier.answer(request as Parameters<SimVerifier['answer']>[0]);
      verifierRequests.push({ instance_id: answer.instance_id, p_yes: answer.p_yes });
      if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
      return send(res, 200, {
        id: `chatcmpl-simverifier-${createHash('sha256').update(body).digest('hex').slice(0, 24)}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: SIM_VERIFIER_NAME,
        system_fingerprint: 'rft-simulated-verifier',
        choices: [{ index: 0, message: { role: 'assistant', content: answer.content, refusal: null, tool_calls: [] }, logprobs: answer.logprobs, finish_reason: 'length', stop_reason: null }],
        usage: { prompt_tokens: Math.ceil(body.length / 4), completion_tokens: 1, total_tokens: Math.ceil(body.length / 4) + 1 },
      });
    }
    const model = lookup(request.model);
    if (!model) throw unknownModel(request.model);
    refuseOverLong(request, options.maxModelLen ?? SIM_MAX_MODEL_LEN);
    // Task synthesis's prompts (a bug to reintroduce, an issue to write) have answers of their own.
    const synth = answerSynth(request.messages, request.seed ?? 0);
    if (synth) {
      synthRequests.push({ model: model.name, seed: request.seed ?? null, step: synth.step });
      if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
      const promptTokens = Math.ceil(body.length / 4);
      const completionTokens = Math.ceil(synth.content.length / 4);
      return send(res, 200, {
        id: `chatcmpl-simsynth-${createHash('sha256').update(body).digest('hex').slice(0, 24)}`,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model: model.name,
        system_fingerprint: 'rft-simulated-policy',
        choices: [{ index: 0, message: { role: 'assistant', content: synth.content, refusal: null }, logprobs: null, finish_reason: 'stop' }],
        usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
      });
    }
    let answer;
    try {
      answer = policy.complete(
        {
          messages: request.messages,
          tools: request.tools ?? null,
          tool_choice: request.tool_choice,
          response_format: request.response_format ?? null,
          seed: request.seed ?? null,
          temperature: request.temperature ?? null,
          max_tokens: request.max_tokens ?? request.max_completion_tokens ?? null,
          stop: request.stop ?? null,
        } as SimChatRequest,
        model,
      );
    } catch (err) {
      if (err instanceof SimRequestError) throw new HttpError(400, err.message, 'invalid_request_error', null, 'messages');
      throw err;
    }
    requests.push({ model: model.name, seed: request.seed ?? null, state: answer.state, instance_id: answer.instance_id });
    if (latency > 0) await new Promise((resolve) => setTimeout(resolve, latency));
    const id = `chatcmpl-sim-${createHash('sha256').update(body).digest('hex').slice(0, 24)}`;
    send(res, 200, {
      id,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model: model.name,
      system_fingerprint: 'rft-simulated-policy',
      choices: [{ index: 0, message: { ...answer.message, refusal: null }, logprobs: null, finish_reason: answer.finish_reason }],
      usage: answer.usage,
    });
  }

  /**
   * The routes vLLM has and the generic server answers otherwise; true when answered. Any path
   * vLLM has no route for answers FastAPI's 404 {"detail": "Not Found"} (and a known path with the
   * wrong method its 405), which is how a client tells a missing route from a missing model.
   */
  async function handleVllm(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean> {
    const surface = vllm!;
    const routes = new Map<string, string>([
      ['/health', 'GET'],
      ['/v1/models', 'GET'],
      ['/v1/chat/completions', 'POST'],
    ]);
    if (surface.runtimeLoraUpdating) {
      routes.set('/v1/load_lora_adapter', 'POST');
      routes.set('/v1/unload_lora_adapter', 'POST');
    }
    if (surface.apiKey && pathname.startsWith('/v1') && req.headers.authorization !== `Bearer ${surface.apiKey}`) {
      send(res, 401, { error: 'Unauthorized' });
      return true;
    }
    const method = routes.get(pathname);
    if (!method) {
      send(res, 404, { detail: 'Not Found' });
      return true;
    }
    if (req.method !== method) {
      send(res, 405, { detail: 'Method Not Allowed' });
      return true;
    }
    if (pathname === '/health') {
      res.writeHead(200, { 'content-length': 0 }).end();
      return true;
    }
    if (pathname === '/v1/models') {
      const permission = () => ({
        id: `modelperm-${createHash('sha256').update(`${started}`).digest('hex').slice(0, 32)}`,
        object: 'model_permission',
        created: started,
        allow_create_engine: false,
        allow_sampling: true,
        allow_logprobs: true,
        allow_search_indices: false,
        allow_view: true,
        allow_fine_tuning: false,
        organization: '*',
        group: null,
        is_blocking: false,
      });
      const maxModelLen = options.maxModelLen ?? SIM_MAX_MODEL_LEN;
      const base = [...models.keys()];
      send(res, 200, {
        object: 'list',
        data: [
          ...base.map((id) => ({ id, object: 'model', created: started, owned_by: 'vllm', root: surface.root, parent: null, max_model_len: maxModelLen, permission: [permission()] })),
          ...[...adapters].map(([id, adapter]) => ({ id, object: 'model', created: started, owned_by: 'vllm', root: adapter.path, parent: base[0] ?? null, max_model_len: null, permission: [permission()] })),
        ],
      });
      return true;
    }
    if (pathname === '/v1/load_lora_adapter' || pathname === '/v1/unload_lora_adapter') {
      const body = await readJsonBody(req);
      const name = typeof body.lora_name === 'string' ? body.lora_name : '';
      if (pathname === '/v1/load_lora_adapter') {
        const lora = typeof body.lora_path === 'string' ? body.lora_path : '';
        if (!name || !lora) throw new VllmHttpError(400, 'InvalidUserInput', "Both 'lora_name' and 'lora_path' must be provided.");
        if (adapters.has(name)) throw new VllmHttpError(400, 'InvalidUserInput', `The lora adapter '${name}' has already been loaded.`);
        const model = surface.loadAdapter(name, lora);
        adapters.set(name, { path: lora, model });
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(`Success: LoRA adapter '${name}' added successfully.`);
        return true;
      }
      if (!name && body.lora_int_id === undefined) throw new VllmHttpError(400, 'InvalidUserInput', "either 'lora_name' and 'lora_int_id' needs to be provided.");
      if (!adapters.delete(name)) throw new VllmHttpError(404, 'NotFoundError', `The lora adapter '${name}' cannot be found.`);
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end(`Success: LoRA adapter '${name}' removed successfully.`);
      return true;
    }
    return false;
  }

  function unknownModel(name: string): HttpError {
    // vLLM's serving_engine._check_model: 404 NotFoundError naming the model.
    if (vllm) return new VllmError(404, `The model \`${name}\` does not exist.`, 'NotFoundError');
    return new HttpError(404, `The model \`${name}\` does not exist on the SIMULATED policy server (it serves: ${[...models.keys()].join(', ')})`, 'invalid_request_error', 'model_not_found', 'model');
  }

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  let closed: Promise<void> | null = null;
  return {
    url: `http://${shownHost}:${port}/v1`,
    port,
    requests,
    verifierRequests,
    synthRequests,
    close() {
      closed ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return closed;
    },
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, `the request body is larger than ${MAX_BODY_BYTES} bytes`, 'invalid_request_error'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** A JSON object body; vLLM (FastAPI + pydantic) refuses anything else with HTTP 400. */
async function readJsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = await readBody(req);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new VllmHttpError(400, 'BadRequestError', `the request body is not valid JSON: ${(err as Error).message}`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new VllmHttpError(400, 'BadRequestError', 'the request body must be a JSON object');
  return value as Record<string, unknown>;
}

/** vLLM's error type for a status, as its create_error_response callers name them. */
function vllmErrorType(status: number): string {
  if (status === 404) return 'NotFoundError';
  if (status >= 500) return 'InternalServerError';
  return 'BadRequestError';
}

function sendVllmError(res: ServerResponse, error: VllmHttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  send(res, error.status, { error: { message: error.message, type: error.type, param: null, code: error.status } });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, error: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (error instanceof VllmError) {
    // vLLM's OpenAI-compatible error: its ErrorInfo (numeric code, type BadRequestError) under `error`.
    send(res, error.status, { error: { message: error.message, type: error.type, param: null, code: error.status } });
    return;
  }
  send(res, error.status, { error: { message: error.message, type: error.type, param: error.param, code: error.code } });
}

/** An error answered in vLLM's shape (type BadRequestError, the HTTP status as a numeric code). */
class VllmError extends HttpError {}

/**
 * vLLM's refusal of a prompt longer than the model's context: HTTP 400, its ErrorResponse and its
 * wording ("This model's maximum context length is N tokens. However, you requested …"). Prompt
 * tokens are estimated as the SIMULATED policy counts them (four characters a token).
 */
function refuseOverLong(request: z.infer<typeof ChatRequestSchema>, maxModelLen: number): void {
  let prompt = 0;
  for (const m of request.messages) {
    const text = typeof m.content === 'string' ? m.content : Array.isArray(m.content) ? JSON.stringify(m.content) : '';
    prompt += 4 + estimateTokens(text);
    for (const call of m.tool_calls ?? []) prompt += estimateTokens(call.function.name + call.function.arguments);
  }
  if (request.tools?.length) prompt += estimateTokens(JSON.stringify(request.tools));
  // vLLM's serving_engine._validate_input (v0.10.0): without max_tokens only the prompt counts, and
  // it must leave room for one token; with it, prompt + max_tokens must fit.
  const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? null;
  if (maxTokens === null) {
    if (prompt < maxModelLen) return;
    throw new VllmError(
      400,
      `This model's maximum context length is ${maxModelLen} tokens. However, you requested ${prompt} tokens in the messages, Please reduce the length of the messages.`,
      'BadRequestError',
    );
  }
  const completion = maxTokens;
  if (prompt + completion <= maxModelLen) return;
  throw new VllmError(
    400,
    `This model's maximum context length is ${maxModelLen} tokens. However, you requested ${prompt + completion} tokens (${prompt} in the messages, ${completion} in the completion). Please reduce the length of the messages or completion.`,
    'BadRequestError',
  );
}
