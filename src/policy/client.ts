import OpenAI from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import { PolicyInfraError, type PolicyClient, type PolicyRequest, type PolicyResponse, type ToolCall } from './types.js';

export interface OpenAiPolicyOptions {
  baseUrl: string;
  model: string;
  /** The key itself, read by the caller from the env variable the recipe names; never logged. */
  apiKey: string | null;
  timeoutMs: number;
  /** Retries of 408/409/429/5xx and connection errors, with exponential backoff, jitter and Retry-After (the SDK's). */
  maxRetries: number;
}

/** A policy served by any OpenAI-compatible endpoint (vLLM, SGLang, OpenAI, the simulated policy). */
export class OpenAiPolicy implements PolicyClient {
  private readonly client: OpenAI;

  constructor(private readonly options: OpenAiPolicyOptions) {
    this.client = new OpenAI({
      baseURL: options.baseUrl,
      // Local servers accept any key; the SDK insists on one.
      apiKey: options.apiKey ?? 'EMPTY',
      timeout: options.timeoutMs,
      maxRetries: options.maxRetries,
    });
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
    const started = Date.now();
    let completion: OpenAI.Chat.Completions.ChatCompletion;
    try {
      completion = await this.client.chat.completions.create(params);
    } catch (err) {
      throw toInfraError(err, this.options.baseUrl);
    }
    const choice = completion.choices?.[0];
    if (!choice?.message) throw new PolicyInfraError(`${this.options.baseUrl} answered without a choice`, null);
    const toolCalls: ToolCall[] = (choice.message.tool_calls ?? [])
      .filter((call) => call.type === 'function')
      .map((call) => ({ id: call.id, type: 'function', function: { name: call.function.name, arguments: call.function.arguments } }));
    return {
      message: { role: 'assistant', content: choice.message.content ?? null, ...(toolCalls.length ? { tool_calls: toolCalls } : {}) },
      finish_reason: choice.finish_reason ?? null,
      usage: { prompt_tokens: completion.usage?.prompt_tokens ?? 0, completion_tokens: completion.usage?.completion_tokens ?? 0 },
      model: completion.model ?? this.options.model,
      latency_ms: Date.now() - started,
    };
  }
}

/** The SDK's errors carry request details; keep the status and a short reason, never headers or keys. */
function toInfraError(err: unknown, baseUrl: string): PolicyInfraError {
  if (err instanceof OpenAI.APIError) {
    const status = typeof err.status === 'number' ? err.status : null;
    const kind = err instanceof OpenAI.APIConnectionTimeoutError ? 'timed out' : err instanceof OpenAI.APIConnectionError ? 'connection failed' : `HTTP ${status}`;
    return new PolicyInfraError(`${baseUrl}: ${kind} after retries${status && status < 500 && status !== 429 ? `: ${oneLine(err.message)}` : ''}`, status);
  }
  return new PolicyInfraError(`${baseUrl}: ${oneLine((err as Error)?.message ?? String(err))}`, null);
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').slice(0, 300);
}
