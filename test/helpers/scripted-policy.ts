import type { ChatMessage, PolicyClient, PolicyRequest, PolicyResponse } from '../../src/policy/types.js';

type Assistant = Extract<ChatMessage, { role: 'assistant' }>;

/**
 * One scripted answer: text content, a tool call (`{ tool, args }`), a whole assistant message,
 * or a function of the request giving the text.
 */
export type ScriptedAnswer = string | { tool: string; args: unknown } | { message: Assistant } | ((request: PolicyRequest) => string);

/** The far end swapped for a test double: answers from a script, one answer per call, and keeps the requests. */
export class ScriptedPolicy implements PolicyClient {
  readonly requests: PolicyRequest[] = [];

  constructor(
    private readonly answers: readonly ScriptedAnswer[],
    readonly model = 'scripted',
    /** Keep a copy of each request (as it was when sent), not the agent's live object. */
    private readonly options: { cloneRequests?: boolean } = {},
  ) {}

  async complete(request: PolicyRequest): Promise<PolicyResponse> {
    this.requests.push(this.options.cloneRequests ? structuredClone(request) : request);
    const n = this.requests.length;
    const answer = this.answers[n - 1];
    if (answer === undefined) throw new Error(`the script has no answer for call ${n}`);
    return { message: scriptedMessage(answer, request, n), finish_reason: 'stop', usage: { prompt_tokens: 100, completion_tokens: 20 }, model: this.model, latency_ms: 1 };
  }
}

function scriptedMessage(answer: ScriptedAnswer, request: PolicyRequest, n: number): Assistant {
  if (typeof answer === 'string') return { role: 'assistant', content: answer };
  if (typeof answer === 'function') return { role: 'assistant', content: answer(request) };
  if ('message' in answer) return answer.message;
  return { role: 'assistant', content: null, tool_calls: [{ id: `call_${n}`, type: 'function', function: { name: answer.tool, arguments: JSON.stringify(answer.args) } }] };
}
