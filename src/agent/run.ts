import { deriveSeed } from '../policy/seed.js';
import { PolicyContextLengthError, PolicyInfraError, PolicyStoppedError, type ChatMessage, type PolicyClient, type PolicyResponse } from '../policy/types.js';
import type { Instance } from '../tasks/instance.js';
import { wellFormed } from '../util/byte-text.js';
import { toolForState } from './actions.js';
import { isTestPath, type AgentIndex } from './code-index.js';
import { limitsOf, nextState, START, type Terminal } from './graph.js';
import { parseAction, extractJson } from './parse-action.js';
import type { PythonSpanParser } from './python-spans.js';
import { serializeAction } from './states/action-schema.js';
import { STATE_MODULES } from './states/index.js';
import { likelyFilesMessage } from './states/search.js';
import type { AgentSettings, Handled, Memory, StateContext, StateName } from './states/state.js';
import { boundedTokenCount } from './tokens.js';
import { RETRY_PREFIX, type LlmCall, type Trajectory, type TrajectoryStatus, type Transition } from './trajectory.js';
import { Workspace } from './workspace.js';

export type { AgentSettings };

export interface TrajectoryIds {
  run: string;
  iteration: number;
  instance_id: string;
  sample_index: number;
}

export interface RunTrajectoryInput {
  ids: TrajectoryIds;
  seed: number;
  instance: Instance;
  /** The repository snapshot's files, shared read-only by every sample of the instance. */
  files: ReadonlyMap<string, string>;
  index: AgentIndex;
  parser: PythonSpanParser;
  policy: PolicyClient;
  agent: AgentSettings;
  sampling: { temperature: number; top_p: number };
  encoding?: 'cl100k_base' | 'o200k_base';
  /** Told of every step as it happens (the `rft agent run` printout). */
  onStep?: (step: StepEvent) => void;
  /** The user asked to stop: no further LLM call is made and the run throws TrajectoryStoppedError. */
  stopping?: () => boolean;
}

/**
 * A trajectory ended by the user's stop at an LLM call boundary: not a sample (cut short, it
 * says nothing of the model), so it is not recorded; what its calls cost is kept.
 */
export class TrajectoryStoppedError extends Error {
  constructor(
    readonly llmCalls: number,
    readonly usage: { prompt_tokens: number; completion_tokens: number },
  ) {
    super(`stopped by the user after ${llmCalls} LLM calls`);
    this.name = 'TrajectoryStoppedError';
  }
}

export interface StepEvent {
  state: StateName;
  /** A one-line account of the action, or of why it was invalid. */
  summary: string;
  invalid: boolean;
  next: Transition['to'] | null;
}

const EDIT_STOP = ['</replace>'];

/**
 * Sizes of model output (decided in the "Reliability and security" issue):
 * - A reply longer than REPLY_CHARS_PER_TOKEN × max_tokens_per_call characters cannot be an
 *   honest completion of at most max_tokens_per_call tokens: it is an invalid action, whatever it
 *   holds, and never reaches the file context, the workspace or a replayed history.
 * - An invalid reply quoted back in a retry message is cut to QUOTED_REPLY_CHARS.
 * - The trajectory record keeps every completion whole up to STORED_REPLY_CHARS (2 MiB) per
 *   string and at most STORED_TOOL_CALLS tool calls; only invalid replies can be longer.
 */
const REPLY_CHARS_PER_TOKEN = 16;
const QUOTED_REPLY_CHARS = 4_000;
export const STORED_REPLY_CHARS = 2 * 1024 * 1024;
const STORED_TOOL_CALLS = 8;

/** Files SearchCode's first message names. */
const LIKELY_FILES = 10;

/**
 * Runs one trajectory (design §5): the driver asks the current state for its prompt, calls the
 * policy, parses the answer with the state's action schema, lets the state handle it, and
 * follows the graph's table. Model mistakes never throw: they become retry messages and, past
 * the retry limit, an `error` outcome blamed on the model. An endpoint that refuses a prompt as
 * too long ends the run as the model's error too (SWE-Gym graded such runs' diffs); only an
 * endpoint that keeps failing is an infrastructure error.
 */
export async function runTrajectory(input: RunTrajectoryInput): Promise<Trajectory> {
  return new Driver(input).run();
}

type Assistant = Extract<ChatMessage, { role: 'assistant' }>;

class Driver {
  private readonly calls: LlmCall[] = [];
  private readonly transitions: Transition[] = [];
  private readonly visits = new Map<StateName, number>();
  private tokensUsed = 0;
  private readonly started = Date.now();
  private readonly limits;
  private ctx!: StateContext;

  constructor(private readonly input: RunTrajectoryInput) {
    this.limits = limitsOf(input.agent);
  }

  async run(): Promise<Trajectory> {
    const workspace = new Workspace(this.input.files, isTestPath);
    const memory: Memory = { context: [], lastSearch: null, pending: null, entry: new Map(), visits: new Map(), relevantDecisions: 0 };
    this.ctx = {
      instance: this.input.instance,
      index: this.input.index,
      parser: this.input.parser,
      workspace,
      agent: this.input.agent,
      memory,
      likelyFiles: await likelyFiles(this.input.index, this.input.instance),
    };
    memory.entry.set(START, likelyFilesMessage(this.ctx));
    let state: StateName = START;
    let status: TrajectoryStatus | null = null;
    while (status === null) {
      if (this.transitions.length >= this.limits.maxTransitions) {
        status = { status: 'error', fault: 'model', reason: `reached ${this.limits.maxTransitions} transitions without finishing` };
        break;
      }
      const visits = (this.visits.get(state) ?? 0) + 1;
      const limit = this.limits.visits[state];
      if (limit !== undefined && visits > limit) {
        status = { status: 'error', fault: 'model', reason: `${state} visited more than ${limit} times` };
        break;
      }
      this.visits.set(state, visits);
      let outcome: { to: StateName | Terminal; trigger: string; summary: string; status?: TrajectoryStatus };
      try {
        outcome = await this.visit(state);
      } catch (err) {
        if (err instanceof PolicyStoppedError) {
          throw new TrajectoryStoppedError(this.calls.length, {
            prompt_tokens: sum(this.calls.map((c) => c.usage.prompt_tokens)),
            completion_tokens: sum(this.calls.map((c) => c.usage.completion_tokens)),
          });
        }
        if (err instanceof PolicyInfraError) {
          status = { status: 'error', fault: 'infrastructure', reason: err.message };
          break;
        }
        if (err instanceof PolicyContextLengthError) {
          status = { status: 'error', fault: 'model', reason: `the endpoint refused the prompt as too long: ${err.message}` };
          break;
        }
        if (err instanceof BudgetExceeded) {
          status = { status: 'error', fault: 'model', reason: err.message };
          break;
        }
        throw err;
      }
      this.transitions.push({ from: state, to: outcome.to, trigger: outcome.trigger });
      this.input.onStep?.({ state, summary: outcome.summary, invalid: false, next: outcome.to });
      if (outcome.to === 'Finished' || outcome.to === 'Rejected' || outcome.to === 'Aborted') status = outcome.status!;
      else state = outcome.to;
    }
    return this.record(status);
  }

  /** One visit: ask, check, retry up to max_retries times, then follow the graph. */
  private async visit(name: StateName): Promise<{ to: StateName | Terminal; trigger: string; summary: string; status?: TrajectoryStatus }> {
    const state = STATE_MODULES[name];
    const protocol = this.input.agent.protocol;
    const entryMessage = this.ctx.memory.entry.get(name) ?? '';
    const base = state.prompt(await state.view(this.ctx), protocol);
    const retries: ChatMessage[] = [];
    for (let attempt = 0; ; attempt++) {
      const response = await this.ask(name, [...base, ...retries], attempt > 0);
      const call = this.calls.at(-1)!;
      // `problem` is what the record keeps; `retryText` what the model is told.
      let problem: string | null = this.replyTooLong(response.message);
      let retryText = '';
      let handled: Handled | null = null;
      let parsed: Record<string, unknown> | null = null;
      const invalidAction = (why: string) => `${RETRY_PREFIX} ${why}. Reply again with a valid ${state.action ? `${state.action.name} action` : '<replace> or <reject> block'}.`;
      if (problem !== null) retryText = invalidAction(problem);
      else {
        if (state.action) {
          const result = parseAction(state.action, response.message, protocol);
          if (!result.ok) [problem, retryText] = [result.problem, invalidAction(result.problem)];
          else parsed = result.action as Record<string, unknown>;
        }
        if (problem === null) {
          handled = await state.handle({ action: parsed, text: response.message.content ?? '' }, this.ctx);
          // A retry of the same visit (moatless's), said in the one retry format every state uses.
          if (handled.kind === 'retry') [problem, retryText] = [handled.message, invalidAction(handled.message.replace(/\.$/, ''))];
        }
      }
      if (handled && handled.kind === 'next') {
        if (state.keepsHistory && state.action && parsed) {
          const visits = this.ctx.memory.visits.get(name) ?? [];
          const callId = response.message.tool_calls?.[0]?.id;
          visits.push({ message: entryMessage, action: serializeAction(state.action, parsed, protocol === 'json' ? 2 : 0), actionName: state.action.name, ...(callId ? { callId } : {}) });
          this.ctx.memory.visits.set(name, visits);
        }
        const to = nextState(name, handled.trigger);
        if (to !== 'Finished' && to !== 'Rejected' && to !== 'Aborted') this.ctx.memory.entry.set(to, handled.message ?? '');
        return { to, trigger: handled.trigger, summary: handled.summary, ...(handled.status ? { status: handled.status } : {}) };
      }
      call.invalid = problem!;
      this.input.onStep?.({ state: name, summary: `invalid: ${problem}`, invalid: true, next: null });
      if (attempt >= this.limits.maxRetries) {
        return {
          to: 'Aborted',
          trigger: 'retries_exhausted',
          summary: `gave up after ${attempt + 1} invalid actions`,
          status: { status: 'error', fault: 'model', reason: `${name}: ${attempt + 1} invalid actions in a row (last: ${problem})` },
        };
      }
      retries.push(...this.retryMessages(response.message, retryText));
    }
  }

  private async ask(state: StateName, prompt: ChatMessage[], retry: boolean): Promise<PolicyResponse> {
    const { agent, sampling, policy } = this.input;
    // A call boundary: after a stop no call starts (the one in flight, if any, has ended).
    if (this.input.stopping?.()) throw new PolicyStoppedError();
    // Code from a file that is not UTF-8 holds escaped bytes (util/byte-text.ts): the model, and
    // the record the training data is made from, see U+FFFD there instead.
    const messages = prompt.map((m) => {
      const content = m.content === null ? null : wellFormed(m.content);
      return content === m.content ? m : ({ ...m, content } as ChatMessage);
    });
    const structured = state !== 'EditCode';
    const response = await policy.complete({
      messages,
      seed: deriveSeed(this.input.seed, this.calls.length),
      temperature: sampling.temperature,
      top_p: sampling.top_p,
      max_tokens: agent.max_tokens_per_call,
      ...(state === 'EditCode' ? { stop: EDIT_STOP } : {}),
      ...(structured && agent.protocol === 'json' ? { json: true } : {}),
      ...(structured && agent.protocol === 'tools' ? { tools: [toolForState(state)!] } : {}),
    });
    this.calls.push({ state, messages, completion: storedReply(response.message), usage: response.usage, invalid: null, retry, latency_ms: response.latency_ms });
    this.tokensUsed += response.usage.prompt_tokens + response.usage.completion_tokens;
    if (this.limits.tokenBudget !== null && this.tokensUsed > this.limits.tokenBudget) {
      throw new BudgetExceeded(`used ${this.tokensUsed} tokens, over the budget of ${this.limits.tokenBudget}`);
    }
    return response;
  }

  /** Why a reply is too long to be an action, or null. */
  private replyTooLong(answer: Assistant): string | null {
    const limit = REPLY_CHARS_PER_TOKEN * this.limits.maxTokensPerCall;
    const size = replySize(answer);
    return size > limit ? `the reply is ${size} characters long, more than ${this.limits.maxTokensPerCall} tokens can be; keep it short` : null;
  }

  /**
   * The invalid reply and the retry message. Under the tools protocol the reply goes back as the
   * assistant's tool call answered by a tool message — but only when it is one call whose
   * arguments are a JSON object: anything else is refused by OpenAI-style servers (vLLM parses
   * them), which would turn the model's mistake into an endpoint failure. Such replies, and every
   * reply under the json protocol, are quoted as text and answered by a user message.
   */
  private retryMessages(answer: Assistant, text: string): ChatMessage[] {
    const calls = answer.tool_calls ?? [];
    const call = calls[0];
    const tools = this.input.agent.protocol === 'tools';
    const tooLong = this.replyTooLong(answer) !== null;
    if (tools && !tooLong && calls.length === 1 && call?.id && isJsonObjectText(call.function.arguments)) {
      return [{ role: 'assistant', content: answer.content ?? null, tool_calls: [call] }, { role: 'tool', tool_call_id: call.id, content: text }];
    }
    const quoted = tooLong || (tools && calls.length > 0) ? quoteReply(answer) : (answer.content ?? '');
    return [{ role: 'assistant', content: quoted }, { role: 'user', content: text }];
  }

  private record(status: TrajectoryStatus): Trajectory {
    const encoding = this.input.encoding ?? 'cl100k_base';
    const promptTokens = this.calls.map((c) => messagesTokens(c.messages, encoding));
    const completionTokens = this.calls.map((c) => messagesTokens([c.completion], encoding));
    const perCall = promptTokens.map((p, i) => p + completionTokens[i]!);
    const { ids, instance, policy, agent, sampling } = this.input;
    return {
      ...ids,
      instance_id: instance.instance_id,
      seed: this.input.seed,
      model: policy.model,
      protocol: agent.protocol,
      temperature: sampling.temperature,
      calls: this.calls,
      transitions: this.transitions,
      outcome: status,
      patch: this.ctx.workspace.diff(),
      llm_calls: this.calls.length,
      tokens: { encoding, prompt: sum(promptTokens), completion: sum(completionTokens), max_example: Math.max(0, ...perCall), per_call: perCall },
      usage: {
        prompt_tokens: sum(this.calls.map((c) => c.usage.prompt_tokens)),
        completion_tokens: sum(this.calls.map((c) => c.usage.completion_tokens)),
      },
      started_at: new Date(this.started).toISOString(),
      duration_ms: Date.now() - this.started,
    };
  }
}

/** Past the token budget: the model's run is over. */
class BudgetExceeded extends Error {}

/** What the index ranks highest for the issue's text, per index and issue (every sample of an instance asks the same). */
const likelyCache = new WeakMap<AgentIndex, Map<string, Promise<{ path: string; spanIds: string[] }[]>>>();

function likelyFiles(index: AgentIndex, instance: Instance): Promise<{ path: string; spanIds: string[] }[]> {
  let byIssue = likelyCache.get(index);
  if (!byIssue) likelyCache.set(index, (byIssue = new Map()));
  let found = byIssue.get(instance.problem_statement);
  if (!found) {
    const query = instance.problem_statement.slice(0, 2000);
    found = Promise.resolve()
      .then(() => (query.trim() ? index.search({ query, class_names: [], function_names: [] }, { maxHits: 30, maxTokens: 12_000 }) : []))
      .then((hits) => hits.slice(0, LIKELY_FILES).map((h) => ({ path: h.filePath, spanIds: h.spanIds })))
      .catch(() => []);
    byIssue.set(instance.problem_statement, found);
  }
  return found;
}

/** Characters of a reply: its text and its tool calls. */
function replySize(answer: Assistant): number {
  let size = answer.content?.length ?? 0;
  for (const call of answer.tool_calls ?? []) size += call.id.length + call.function.name.length + call.function.arguments.length;
  return size;
}

function isJsonObjectText(text: string): boolean {
  try {
    const value: unknown = JSON.parse(extractJson(text));
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}\n[rft: ${text.length - max} more characters cut]` : text;
}

/** An invalid reply as text for the retry thread: its content, then its tool calls, cut short. */
function quoteReply(answer: Assistant): string {
  const calls = answer.tool_calls ?? [];
  const parts = [answer.content ?? '', ...calls.slice(0, 3).map((c) => `${c.function.name.slice(0, 200)}(${c.function.arguments.slice(0, QUOTED_REPLY_CHARS)})`)];
  if (calls.length > 3) parts.push(`[rft: ${calls.length - 3} more tool calls]`);
  return cut(parts.filter(Boolean).join('\n'), QUOTED_REPLY_CHARS);
}

/** A completion as the trajectory record keeps it (see STORED_REPLY_CHARS). */
function storedReply(answer: Assistant): Assistant {
  if (replySize(answer) <= STORED_REPLY_CHARS && (answer.tool_calls?.length ?? 0) <= STORED_TOOL_CALLS) return answer;
  const calls = answer.tool_calls;
  const kept: Assistant = { role: 'assistant', content: answer.content === null ? null : cut(answer.content, STORED_REPLY_CHARS) };
  if (calls !== undefined) {
    kept.tool_calls = calls.slice(0, STORED_TOOL_CALLS).map((c) => ({
      id: cut(c.id, 256),
      type: 'function',
      function: { name: cut(c.function.name, 256), arguments: cut(c.function.arguments, STORED_REPLY_CHARS) },
    }));
    if (calls.length > STORED_TOOL_CALLS) kept.content = `${kept.content ?? ''}[rft: ${calls.length - STORED_TOOL_CALLS} more tool calls cut]`;
  }
  return kept;
}

/** Tokens of chat messages as a chat template would lay them out (roughly: content plus a few per message). */
export function messagesTokens(messages: readonly ChatMessage[], encoding: 'cl100k_base' | 'o200k_base'): number {
  let total = 0;
  for (const message of messages) {
    total += 4 + boundedTokenCount(message.content ?? '', encoding);
    if (message.role === 'assistant') for (const call of message.tool_calls ?? []) total += boundedTokenCount(call.function.name + call.function.arguments, encoding);
  }
  return total;
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
