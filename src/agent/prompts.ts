import type { ChatMessage } from '../policy/types.js';
import type { AgentIndex } from './code-index.js';
import { boundedTokenCount } from './tokens.js';

/**
 * What the states' prompts share. Every system prompt starts with `Workflow step: <State>` so a
 * reader of the SFT data (or the simulated policy) can tell the states apart; user messages wrap
 * their parts in tags: <issue>, <file_context>, <search_results>, <instructions>, <search>.
 *
 * Code is shown as files of spans, each line prefixed with its number:
 *   <file path="pkg/mod.py">
 *   <span id="Class.method">
 *       12\t    def method(self):
 *   </span>
 *   </file>
 */

export interface RenderedSpan {
  id: string;
  /** 1-based first line of the span in its file. */
  startLine: number;
  lines: readonly string[];
}

export interface RenderedFile {
  path: string;
  spans: readonly RenderedSpan[];
}

export function renderFiles(files: readonly RenderedFile[]): string {
  return files
    .map((file) => {
      const spans = file.spans.map((span) => {
        const numbered = span.lines.map((line, i) => `${String(span.startLine + i).padStart(6)}\t${line}`);
        return [`<span id="${span.id}">`, ...numbered, '</span>'].join('\n');
      });
      return [`<file path="${file.path}">`, ...spans, '</file>'].join('\n');
    })
    .join('\n');
}

export const ROLE =
  'You are an autonomous software engineer fixing an issue in a Python repository. You work in ' +
  'fixed steps; each reply is one action for the current step.';

/** A state's system prompt; with the json protocol it carries the action's JSON Schema. */
export function composeSystemPrompt(state: string, parts: readonly string[], schema: Record<string, unknown> | null, protocol: 'json' | 'tools'): string {
  const text = [`Workflow step: ${state}`, '', ROLE, '', ...parts];
  if (schema !== null && protocol === 'json') {
    text.push('', 'Reply with one JSON object that matches this JSON Schema, and nothing else:', JSON.stringify(schema));
  }
  return text.join('\n');
}

export function issueBlock(problemStatement: string): string {
  return `<issue>\n${problemStatement.trim()}\n</issue>`;
}

export function fileContextBlock(files: Budgeted | readonly RenderedFile[]): string {
  const rendered = 'dropped' in files ? files : { files: [...files], dropped: 0, budget: 0, tokens: 0 };
  const note = rendered.dropped > 0 ? `\n... ${rendered.dropped} older span${rendered.dropped === 1 ? '' : 's'} left out to stay within ${rendered.budget} tokens` : '';
  return rendered.files.length === 0 ? '<file_context>\n(empty)\n</file_context>' : `<file_context>\n${renderFiles(rendered.files)}${note}\n</file_context>`;
}

export function searchResultsBlock(files: Budgeted | readonly RenderedFile[]): string {
  const rendered = 'dropped' in files ? files : { files: [...files], dropped: 0, budget: 0, tokens: 0 };
  const note = rendered.dropped > 0 ? `\n... ${rendered.dropped} lower-ranked span${rendered.dropped === 1 ? '' : 's'} left out to stay within ${rendered.budget} tokens` : '';
  return `<search_results>\n${renderFiles(rendered.files)}${note}\n</search_results>`;
}

export interface Budgeted {
  files: RenderedFile[];
  /** Spans left out to stay within the budget. */
  dropped: number;
  budget: number;
  tokens: number;
}

/**
 * Spans rendered within a token budget. `spans` come in the order they are given up in when the
 * budget is exceeded (oldest or lowest-ranked first); `keep` is how many at the end are never
 * dropped. Each span is costed alone (with the class headers it brings), so the sum errs high.
 * Files come out sorted by path, spans in file order.
 */
export function renderWithin(
  index: AgentIndex,
  read: (path: string) => string | undefined,
  spans: readonly { path: string; spanId: string }[],
  budget: number,
  keep = 1,
): Budgeted {
  const cost = spans.map((s) => spanCost(index, s.path, s.spanId, read(s.path)));
  let total = cost.reduce((a, b) => a + b, 0);
  let first = 0;
  while (total > budget && spans.length - first > keep) total -= cost[first++]!;
  const kept = spans.slice(first);
  const byFile = new Map<string, string[]>();
  for (const s of kept) byFile.set(s.path, [...(byFile.get(s.path) ?? []), s.spanId]);
  const files = [...byFile.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([path, ids]) => index.renderFile(path, ids, read(path)))
    .filter((f) => f.spans.length > 0);
  return { files, dropped: first, budget, tokens: total };
}

/**
 * The tokens of one span rendered alone, by path, span id and the file's text (the rendering
 * depends on nothing else): every call of every trajectory costs the spans of its context again,
 * mostly of files nobody edited. A text is compared by identity first, so a hit on an unedited
 * file costs a lookup. Bounded by the characters of the texts the entries hold (each counted
 * whole, though most are one shared snapshot text), least recently used out.
 */
const costs = new Map<string, { text: string | undefined; tokens: number }>();
let costChars = 0;
const MAX_COST_CHARS = 128 * 1024 * 1024;

function spanCost(index: AgentIndex, path: string, spanId: string, text: string | undefined): number {
  const key = `${path}\0${spanId}`;
  const known = costs.get(key);
  if (known) {
    costs.delete(key);
    costChars -= known.text?.length ?? 0;
  }
  const tokens = known && known.text === text ? known.tokens : boundedTokenCount(renderFiles([index.renderFile(path, [spanId], text)]));
  costs.set(key, { text, tokens });
  costChars += text?.length ?? 0;
  for (const [old, entry] of costs) {
    if (costChars <= MAX_COST_CHARS) break;
    costs.delete(old);
    costChars -= entry.text?.length ?? 0;
  }
  return tokens;
}

/**
 * moatless's layout of a state that keeps history: the issue (and the first visit's message) in
 * the first user message, then per earlier visit the action taken and the message the next visit
 * began with, and the current file context in the LAST user message. Under the json protocol the
 * actions are assistant text; under tools, tool calls answered by tool messages.
 */
export function historyMessages(
  first: string,
  visits: readonly { message: string; action: string; actionName: string; callId?: string }[],
  message: string,
  context: string,
  protocol: 'json' | 'tools',
): ChatMessage[] {
  if (visits.length === 0) return [{ role: 'user', content: joinParts(first, message, context) }];
  const out: ChatMessage[] = [];
  const answer = (text: string): void => {
    if (protocol === 'json') {
      out.push({ role: 'user', content: text });
      return;
    }
    const call = out.at(-1) as Extract<ChatMessage, { role: 'assistant' }>;
    out.push({ role: 'tool', tool_call_id: call.tool_calls![0]!.id, content: text || 'Done.' });
  };
  visits.forEach((visit, i) => {
    if (i === 0) out.push({ role: 'user', content: joinParts(first, visit.message) });
    else answer(visit.message);
    if (protocol === 'json') out.push({ role: 'assistant', content: visit.action });
    else out.push({ role: 'assistant', content: null, tool_calls: [{ id: visit.callId ?? `call_history_${i + 1}`, type: 'function', function: { name: visit.actionName, arguments: visit.action } }] });
  });
  if (protocol === 'json') out.push({ role: 'user', content: joinParts(message, context) });
  else {
    answer(message);
    out.push({ role: 'user', content: context });
  }
  return out;
}

function joinParts(...parts: string[]): string {
  return parts.filter((p) => p.trim() !== '').join('\n\n');
}

/** Parses EditCode's free-text answer; null when it holds neither tag. */
export function parseEditAnswer(text: string): { kind: 'replace'; code: string } | { kind: 'reject'; reason: string } | null {
  const replace = /<replace>\n?([\s\S]*?)\n?(?:<\/replace>|$)/.exec(text);
  if (replace) return { kind: 'replace', code: replace[1]! };
  const reject = /<reject>([\s\S]*?)(?:<\/reject>|$)/.exec(text);
  if (reject) return { kind: 'reject', reason: reject[1]!.trim() };
  return null;
}
