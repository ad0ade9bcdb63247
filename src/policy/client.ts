import OpenAI from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { z } from 'zod';
import { httpFetch } from './http-fetch.js';
import { PolicyContextLengthError, PolicyInfraError, type PolicyClient, type PolicyRequest, type PolicyResponse, type ToolCall } from './types.js';

export interface OpenAiPolicyOptions {
  baseUrl: string;
  model: string;
  /** The key itself, read by the caller from the env variable the recipe names; never logged, redacted from every error. */
  apiKey: string | null;
  /** One attempt's limit, from sending the request to the last byte of the answer. */
  timeoutMs: number;
  /**
   * Retries of 408/409/429/5xx, timeouts, refused or dropped connections and answers that are
   * not a chat completion, with exponential backoff and jitter, or as long as Retry-After asks.
   */
  maxRetries: number;
  /** How waits between attempts are made (tests pass one that records the delays). */
  sleep?: (ms: number) => Promise<void>;
  /** Told about each failed attempt that is retried. */
  onRetry?: (retry: RetryInfo) => void;
}

export interface RetryInfo {
  /** 1 for the first attempt. */
  attempt: number;
  reason: string;
  status: number | null;
  delayMs: number;
  /** The delay came from the server's Retry-After (or retry-after-ms). */
  retryAfter: boolean;
}

const BACKOFF_INITIAL_MS = 500;
const BACKOFF_MAX_MS = 8_000;
/** A Retry-After asking for longer than this is cut to it: a run waits, it does not stall. */
export const MAX_RETRY_AFTER_MS = 120_000;

/**
 * What an answer must look like to be the model's answer. Anything else (an HTML error page sent
 * with status 200, JSON of another shape, no choices) is the endpoint failing, never a model
 * answer: a model answer goes into the trajectory and the training data.
 */
const CompletionSchema = z.object({
  model: z.string().nullish(),
  choices: z
    .array(
      z.object({
        message: z.object({
          content: z.string().nullish(),
          tool_calls: z
            .array(z.object({ id: z.string(), type: z.string(), function: z.object({ name: z.string(), arguments: z.string() }) }))
            .nullish(),
        }),
        finish_reason: z.string().nullish(),
      }),
    )
    .min(1, 'no choices'),
  usage: z.object({ prompt_tokens: z.number().int().nonnegative().nullish(), completion_tokens: z.number().int().nonnegative().nullish() }).nullish(),
});

/** One failed attempt, classified. */
interface Failure {
  reason: string;
  /** What the connection error said (ECONNREFUSED, other side closed, …), told after the reason. */
  detail?: string;
  status: number | null;
  retryable: boolean;
  retryAfterMs: number | null;
  /** The server's words when it refused the prompt as too long for the model's context. */
  contextLength?: string;
}

/**
 * How OpenAI-compatible servers word a context-length refusal (HTTP 400): vLLM ("This model's
 * maximum context length is 32768 tokens. However, you requested …"), OpenAI
 * (code context_length_exceeded), SGLang and TGI ("… longer than the model's context length",
 * "Input validation error: `inputs` tokens + `max_new_tokens` must be <= …").
 */
const CONTEXT_LENGTH = /maximum context length|context_length_exceeded|context length|input_tokens.*must be <=|tokens \+ `max_new_tokens` must be/i;

/** An endpoint's HTTP 400 saying the prompt is longer than the model's context (any of the wordings above). */
export function isContextLengthRefusal(err: InstanceType<typeof OpenAI.APIError>): boolean {
  return err.status === 400 && (CONTEXT_LENGTH.test(err.message) || err.code === 'context_length_exceeded');
}

class MalformedAnswer extends Error {}

const TIMED_OUT = 'timed out';

/** A policy served by any OpenAI-compatible endpoint (vLLM, SGLang, OpenAI, the simulated policy). */
export class OpenAiPolicy implements PolicyClient {
  private readonly client: OpenAI;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: OpenAiPolicyOptions) {
    this.client = new OpenAI({
      baseURL: options.baseUrl,
      // Local servers accept any key; the SDK insists on one.
      apiKey: options.apiKey ?? 'EMPTY',
      timeout: options.timeoutMs,
      // Retries are made here, so that every kind of failure (a body that breaks off, an answer
      // that is not a completion) is retried alike and counted against one budget.
      maxRetries: 0,
      // node:http with kept-alive connections rather than undici's fetch: a third of the CPU per call (http-fetch.ts).
      fetch: httpFetch,
    });
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  get model(): string {
    return this.options.model;
  }

  async complete(request: PolicyRequest): Promise<PolicyResponse> {
    const params: ChatCompletionCreateParamsNonStreaming = {
      model: this.options.model,
      messages: request.messages as ChatCompletionCreateParamsNonStreaming['messages'],
      seed: request.seed,
      temperature: request.temperature,
      top_p: request.top_p,
      max_tokens: request.max_tokens,
      ...(request.stop?.length ? { stop: request.stop } : {}),
      ...(request.json ? { response_format: { type: 'json_object' as const } } : {}),
      ...(request.tools?.length
        ? { tools: request.tools, tool_choice: { type: 'function' as const, function: { name: request.tools[0]!.function.name } } }
        : {}),
    };
    for (let attempt = 1; ; attempt++) {
      const started = Date.now();
      let failure: Failure;
      try {
        const completion = await this.attempt(params);
        return toResponse(completion, this.options.model, Date.now() - started);
      } catch (err) {
        failure = this.classify(err);
      }
      if (failure.contextLength) throw new PolicyContextLengthError(this.redact(failure.contextLength));
      const retriesLeft = attempt <= this.options.maxRetries;
      if (!failure.retryable || !retriesLeft) {
        const limit = failure.reason === TIMED_OUT ? `, ${this.options.timeoutMs} ms each` : '';
        const how = failure.retryable ? `after retries (${attempt} attempt${attempt === 1 ? '' : 's'}${limit})` : '(not retried)';
        throw new PolicyInfraError(this.redact(`${this.options.baseUrl}: ${failure.reason} ${how}${failure.detail ? `: ${failure.detail}` : ''}`), failure.status);
      }
      const delayMs = failure.retryAfterMs ?? backoffMs(attempt);
      this.options.onRetry?.({ attempt, reason: this.redact(failure.reason), status: failure.status, delayMs, retryAfter: failure.retryAfterMs !== null });
      await this.sleep(delayMs);
    }
  }

  /** One request, bounded as a whole (the SDK's own timeout stops at the headers). */
  private async attempt(params: ChatCompletionCreateParamsNonStreaming): Promise<z.infer<typeof CompletionSchema>> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new AttemptTimeout()), this.options.timeoutMs);
    try {
      const raw: unknown = await this.client.chat.completions.create(params, { signal: controller.signal, maxRetries: 0 });
      const parsed = CompletionSchema.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        const where = issue.path.map(String).join('.');
        throw new MalformedAnswer(typeof raw === 'object' && raw !== null ? `${where ? `${where}: ` : ''}${issue.message}` : `a ${typeof raw} body`);
      }
      return parsed.data;
    } catch (err) {
      if (controller.signal.aborted) throw new AttemptTimeout();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  private classify(err: unknown): Failure {
    if (err instanceof AttemptTimeout || err instanceof OpenAI.APIConnectionTimeoutError) {
      return { reason: TIMED_OUT, status: null, retryable: true, retryAfterMs: null };
    }
    if (err instanceof MalformedAnswer) {
      return { reason: `answered with something that is not a chat completion (${oneLine(err.message)})`, status: null, retryable: true, retryAfterMs: null };
    }
    if (err instanceof OpenAI.APIConnectionError || err instanceof OpenAI.APIUserAbortError) {
      const detail = causeOf(err);
      return { reason: 'connection failed', ...(detail ? { detail: oneLine(this.redact(detail)) } : {}), status: null, retryable: true, retryAfterMs: null };
    }
    if (err instanceof OpenAI.APIError) {
      const status = typeof err.status === 'number' ? err.status : null;
      const headers = err.headers instanceof Headers ? err.headers : undefined;
      const should = headers?.get('x-should-retry');
      const retryable = should === 'true' ? true : should === 'false' ? false : status === null || status === 408 || status === 409 || status === 429 || status >= 500;
      // The server's own words help with a refusal (a bad request, an unknown model, a wrong key); they are redacted.
      const detail = retryable ? '' : `: ${oneLine(this.redact(err.message))}`;
      if (isContextLengthRefusal(err)) {
        return { reason: `HTTP 400${detail}`, status, retryable: false, retryAfterMs: null, contextLength: oneLine(err.message) };
      }
      return { reason: `HTTP ${status ?? '?'}${detail}`, status, retryable, retryAfterMs: retryable ? retryAfterMs(headers) : null };
    }
    if (err instanceof SyntaxError) {
      return { reason: 'answered with a body that is not JSON', status: null, retryable: true, retryAfterMs: null };
    }
    // The fetch broke off mid-answer (the connection dropped after the headers), or the like.
    const message = err instanceof Error ? `${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ''}` : String(err);
    return { reason: `connection failed mid-answer (${oneLine(this.redact(message))})`, status: null, retryable: true, retryAfterMs: null };
  }

  /** Takes the key, and anything shaped like one, out of text bound for an error message (before it is cut short, so no piece of it stays). */
  private redact(text: string): string {
    return redactKey(text, this.options.apiKey);
  }
}

class AttemptTimeout extends Error {
  constructor() {
    super('the attempt timed out');
  }
}

function toResponse(completion: z.infer<typeof CompletionSchema>, fallbackModel: string, latencyMs: number): PolicyResponse {
  const choice = completion.choices[0]!;
  const toolCalls: ToolCall[] = (choice.message.tool_calls ?? [])
    .filter((call) => call.type === 'function')
    .map((call) => ({ id: call.id, type: 'function', function: { name: call.function.name, arguments: call.function.arguments } }));
  return {
    message: { role: 'assistant', content: choice.message.content ?? null, ...(toolCalls.length ? { tool_calls: toolCalls } : {}) },
    finish_reason: choice.finish_reason ?? null,
    usage: { prompt_tokens: completion.usage?.prompt_tokens ?? 0, completion_tokens: completion.usage?.completion_tokens ?? 0 },
    model: completion.model ?? fallbackModel,
    latency_ms: latencyMs,
  };
}

/** The wait a server asked for: retry-after-ms, or Retry-After in seconds or as an HTTP-date; capped. */
export function retryAfterMs(headers: Pick<Headers, 'get'> | undefined, now = Date.now()): number | null {
  if (!headers) return null;
  let ms: number | null = null;
  const millis = headers.get('retry-after-ms');
  if (millis !== null && millis.trim() !== '' && Number.isFinite(Number(millis))) ms = Number(millis);
  const value = headers.get('retry-after');
  if (ms === null && value !== null && value.trim() !== '') {
    if (/^\s*\d+(\.\d+)?\s*$/.test(value)) ms = Number(value) * 1000;
    else {
      const at = Date.parse(value);
      if (Number.isFinite(at)) ms = at - now;
    }
  }
  if (ms === null) return null;
  return Math.min(Math.max(0, Math.round(ms)), MAX_RETRY_AFTER_MS);
}

function backoffMs(attempt: number): number {
  const base = Math.min(BACKOFF_INITIAL_MS * 2 ** (attempt - 1), BACKOFF_MAX_MS);
  return Math.round(base * (1 - Math.random() * 0.25));
}

/** Removes the key, and anything shaped like an OpenAI key or a bearer token, from text. */
export function redactKey(text: string, key: string | null): string {
  let out = text;
  if (key && key.length >= 4) out = out.split(key).join('***');
  return out.replace(/\b(Bearer\s+)(?!\*\*\*)\S+/gi, '$1***').replace(/\b(sk|sess)-[A-Za-z0-9_*.-]{6,}/g, '$1-***');
}

/** The innermost cause of a connection error (fetch failed ← other side closed ← …), e.g. `ECONNREFUSED`. */
function causeOf(err: Error): string | null {
  let cause: unknown = err.cause;
  let last: string | null = null;
  for (let depth = 0; cause instanceof Error && depth < 5; depth++) {
    const code = (cause as NodeJS.ErrnoException).code;
    last = code && !cause.message.includes(code) ? `${code} ${cause.message}` : cause.message;
    cause = cause.cause;
  }
  return last;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').slice(0, 300);
}
