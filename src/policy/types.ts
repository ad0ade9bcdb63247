import { z } from 'zod';

/** OpenAI chat messages, as sent and as kept in trajectories and SFT data. */
export const ToolCallSchema = z.object({
  id: z.string(),
  type: z.literal('function'),
  function: z.object({ name: z.string(), arguments: z.string() }),
});
export type ToolCall = z.infer<typeof ToolCallSchema>;

export const ChatMessageSchema = z.discriminatedUnion('role', [
  z.object({ role: z.literal('system'), content: z.string() }),
  z.object({ role: z.literal('user'), content: z.string() }),
  z.object({ role: z.literal('assistant'), content: z.string().nullable(), tool_calls: z.array(ToolCallSchema).optional() }),
  z.object({ role: z.literal('tool'), content: z.string(), tool_call_id: z.string() }),
]);
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

export const ToolSpecSchema = z.object({
  type: z.literal('function'),
  function: z.object({ name: z.string(), description: z.string(), parameters: z.record(z.string(), z.unknown()) }),
});
export type ToolSpec = z.infer<typeof ToolSpecSchema>;

export const UsageSchema = z.object({ prompt_tokens: z.number().int().nonnegative(), completion_tokens: z.number().int().nonnegative() });
export type Usage = z.infer<typeof UsageSchema>;

export interface PolicyRequest {
  messages: ChatMessage[];
  seed: number;
  temperature: number;
  top_p: number;
  max_tokens: number;
  stop?: string[];
  /** json protocol: ask for a JSON object. */
  json?: boolean;
  /** tools protocol: the state's one tool, which the model must call. */
  tools?: ToolSpec[];
}

export interface PolicyResponse {
  message: Extract<ChatMessage, { role: 'assistant' }>;
  finish_reason: string | null;
  usage: Usage;
  model: string;
  latency_ms: number;
}

/** The far end of the agent: anything that answers chat requests. */
export interface PolicyClient {
  readonly model: string;
  complete(request: PolicyRequest): Promise<PolicyResponse>;
}

/** The user asked to stop (Ctrl-C): a call not yet sent is not sent, and its trajectory ends unrecorded. */
export class PolicyStoppedError extends Error {
  constructor() {
    super('stopped by the user before this LLM call');
    this.name = 'PolicyStoppedError';
  }
}

/**
 * The endpoint failed (after retries): not the model's answer, so never a failed trajectory in
 * the data; the sample is retried on resume.
 */
export class PolicyInfraError extends Error {
  constructor(
    message: string,
    readonly status: number | null,
  ) {
    super(message);
    this.name = 'PolicyInfraError';
  }
}

/**
 * The endpoint refused the prompt as longer than the model's context (vLLM answers HTTP 400 "This
 * model's maximum context length is …"). Not retried and not the endpoint failing: the prompt
 * the agent built is too long, so the trajectory ends as the model's error and its patch is
 * still graded, as in SWE-Gym's run.
 */
export class PolicyContextLengthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyContextLengthError';
  }
}
