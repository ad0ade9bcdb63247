import lodash from 'lodash';
import { z } from 'zod';
import type { Trajectory } from '../agent/trajectory.js';
import type { ChatMessage } from '../policy/types.js';
import { TamperingSchema } from '../verify/tampering.js';
import type { Verdict } from '../verify/verdict.js';

/**
 * One trajectory as a reader wants to see it, built from the trajectory record alone (plus its
 * verdict and verification log): the states it went through, and per LLM call only what was new
 * in the prompt — the code the agent saw — and the action it answered with. Generic over the
 * record (states, messages, completions, transitions), so it does not depend on how the agent
 * is built. Pure: the terminal and HTML renderers both draw this.
 */

export const FilterSchema = z.enum(['resolved', 'unresolved', 'error']);
export type Filter = z.infer<typeof FilterSchema>;

const MessageViewSchema = z.object({
  role: z.string(),
  /** The text (tool calls rendered as `name(arguments)` lines); control characters are kept — renderers make them visible. */
  text: z.string(),
  /** A system prompt listed once in the view's `prompts`: its index there (the text is not repeated). */
  prompt: z.number().int().nonnegative().nullable().default(null),
});
export type MessageView = z.infer<typeof MessageViewSchema>;

export const StepViewSchema = z.object({
  /** 1-based call number. */
  call: z.number().int().positive(),
  state: z.string(),
  retry: z.boolean(),
  /** Why the answer was not a valid action, when it was not. */
  invalid: z.string().nullable(),
  /** The prompt started over (another state's conversation), so `shown` holds every message. */
  fresh_prompt: z.boolean(),
  /** Messages of this call's prompt that the previous call had not sent or received. */
  shown: z.array(MessageViewSchema),
  /** Messages left out because the previous call already had them. */
  repeated: z.number().int().nonnegative(),
  action: MessageViewSchema,
  tokens: z.number().int().nonnegative().nullable(),
  latency_ms: z.number().nonnegative(),
});
export type StepView = z.infer<typeof StepViewSchema>;

/** A state's system prompt, listed once however many calls sent it. */
export const PromptViewSchema = z.object({
  state: z.string(),
  /** The prompt without its schema line. */
  text: z.string(),
  /** The JSON Schema the prompt ends with (json protocol), pretty-printed; null when there is none. */
  schema: z.string().nullable(),
  /** The calls that sent it. */
  calls: z.array(z.number().int().positive()),
});
export type PromptView = z.infer<typeof PromptViewSchema>;

export const TrajectoryViewSchema = z.object({
  phase: z.string(),
  run: z.string(),
  instance_id: z.string(),
  sample_index: z.number().int().nonnegative(),
  model: z.string(),
  seed: z.number().int(),
  temperature: z.number(),
  protocol: z.string(),
  outcome: z.object({ status: z.string(), reason: z.string().nullable(), fault: z.string().nullable() }),
  filter: FilterSchema,
  /** The states in the order they were entered, ending in Finished/Rejected/Aborted when the record says so. */
  path: z.array(z.string()),
  transitions: z.array(z.object({ from: z.string(), to: z.string(), trigger: z.string() })),
  /** Each distinct system prompt, in the order first sent; the steps refer to them by index. */
  prompts: z.array(PromptViewSchema),
  steps: z.array(StepViewSchema),
  patch: z.string(),
  verdict: z
    .object({
      outcome: z.string(),
      reason: z.string().nullable(),
      apply_method: z.string().nullable(),
      test_exit_code: z.number().int().nullable(),
      failing: z.array(z.object({ list: z.string(), test: z.string(), status: z.string() })),
      passing: z.number().int().nonnegative(),
      log_truncated: z.boolean(),
      /** Why the verdict says the patch tampered with test reporting (absent when it does not). */
      tampering: TamperingSchema.optional(),
    })
    .nullable(),
  /** The part of the verification log around the failures; null when no log was kept. */
  log_excerpt: z.string().nullable(),
  llm_calls: z.number().int().nonnegative(),
  tokens: z.object({ prompt: z.number().int(), completion: z.number().int() }),
  duration_ms: z.number().nonnegative(),
  started_at: z.string(),
});
export type TrajectoryView = z.infer<typeof TrajectoryViewSchema>;

/** Which of the report's filters a trajectory falls under. */
export function filterOf(t: Pick<Trajectory, 'outcome'>, verdict: Pick<Verdict, 'outcome'> | null): Filter {
  if (t.outcome.status === 'error' || verdict?.outcome === 'error') return 'error';
  return verdict?.outcome === 'resolved' ? 'resolved' : 'unresolved';
}

function messageText(m: ChatMessage): string {
  const calls = m.role === 'assistant' && m.tool_calls ? m.tool_calls.map((c) => `${c.function.name}(${c.function.arguments})`) : [];
  const content = m.content ?? '';
  return [content, ...calls].filter((s) => s !== '').join('\n');
}

function view(m: ChatMessage): MessageView {
  return { role: m.role === 'tool' ? `tool ${m.tool_call_id}` : m.role, text: messageText(m), prompt: null };
}

/** An action as the model wrote it, its JSON re-indented: the content, and each tool call's arguments. */
function actionView(m: ChatMessage): MessageView {
  const calls = m.role === 'assistant' && m.tool_calls ? m.tool_calls.map((c) => `${c.function.name}(${prettyJson(c.function.arguments)})`) : [];
  const text = [prettyJson(m.content ?? ''), ...calls].filter((x) => x !== '').join('\n');
  return { role: m.role, text, prompt: null };
}

/**
 * Valid JSON re-indented (two spaces) by moving whitespace only — every other character stays as
 * the model wrote it (number spellings, escapes, duplicate keys), so the page shows what was said.
 * Anything that is not one JSON object or array is returned unchanged.
 */
export function prettyJson(text: string): string {
  const trimmed = text.trim();
  if (!/^[[{]/.test(trimmed)) return text;
  try {
    JSON.parse(trimmed);
  } catch {
    return text;
  }
  let out = '';
  let depth = 0;
  let inString = false;
  const newline = () => `\n${'  '.repeat(depth)}`;
  for (let i = 0; i < trimmed.length; i++) {
    const c = trimmed[i]!;
    if (inString) {
      out += c;
      if (c === '\\') out += trimmed[++i] ?? '';
      else if (c === '"') inString = false;
      continue;
    }
    if (/\s/.test(c)) continue;
    if (c === '"') {
      inString = true;
      out += c;
    } else if (c === '{' || c === '[') {
      // An empty object or array stays on its line.
      const next = trimmed.slice(i + 1).trimStart()[0];
      if (next === '}' || next === ']') {
        out += c;
        continue;
      }
      depth += 1;
      out += c + newline();
    } else if (c === '}' || c === ']') {
      if (!/[[{]$/.test(out)) {
        depth -= 1;
        out += newline();
      }
      out += c;
    } else if (c === ',') out += `,${newline()}`;
    else if (c === ':') out += ': ';
    else out += c;
  }
  return out;
}

/** A system prompt split into its text and the JSON Schema its last line holds (json protocol). */
function splitSchema(text: string): { text: string; schema: string | null } {
  const at = text.lastIndexOf('\n');
  const last = text.slice(at + 1).trim();
  return isJsonObject(last) ? { text: text.slice(0, Math.max(0, at)).trimEnd(), schema: prettyJson(last) } : { text, schema: null };
}

function isJsonObject(text: string): boolean {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v);
  } catch {
    return false;
  }
}

/** Lines of a log kept around its failures: pytest's FAILURES/ERRORS sections and short summary, else the tail. */
export function logExcerpt(log: string, maxLines = 120): string {
  const lines = log.split('\n');
  const start = lines.findIndex((l) => /^=+ (FAILURES|ERRORS) =+$/.test(l.trim()));
  const from = start !== -1 ? start : Math.max(0, lines.length - maxLines);
  const picked = lines.slice(from, from + maxLines);
  const summary = lines.findIndex((l) => /^=+ short test summary info =+$/.test(l.trim()));
  if (start !== -1 && summary > from + maxLines) picked.push('…', ...lines.slice(summary, summary + 40));
  const cut = from > 0 ? [`… (${from} earlier lines)`] : [];
  return [...cut, ...picked].join('\n').trimEnd();
}

/** The view of one trajectory record; `phase` names its ledger (iter-<k> or eval/m<m>). */
export function trajectoryView(phase: string, t: Trajectory, verdict: Verdict | null, log: string | null): TrajectoryView {
  const steps: StepView[] = [];
  const prompts: PromptView[] = [];
  // A system message is shown once, in `prompts`; each call that sends it refers to it.
  const promptIndex = new Map<string, number>();
  const shownOf = (m: ChatMessage, state: string, call: number): MessageView => {
    if (m.role !== 'system') return view(m);
    const text = messageText(m);
    const key = JSON.stringify([state, text]);
    let at = promptIndex.get(key);
    if (at === undefined) {
      at = prompts.push({ state, ...splitSchema(text), calls: [] }) - 1;
      promptIndex.set(key, at);
    }
    if (!prompts[at]!.calls.includes(call)) prompts[at]!.calls.push(call);
    return { role: 'system', text: '', prompt: at };
  };
  let previous: ChatMessage[] | null = null;
  t.calls.forEach((call, i) => {
    const prefix = previous !== null && previous.length <= call.messages.length && lodash.isEqual(call.messages.slice(0, previous.length), previous);
    const from = prefix ? previous!.length : 0;
    steps.push({
      call: i + 1,
      state: call.state,
      retry: call.retry,
      invalid: call.invalid,
      fresh_prompt: !prefix,
      shown: call.messages.slice(from).map((m) => shownOf(m, call.state, i + 1)),
      repeated: from,
      action: actionView(call.completion),
      tokens: t.tokens.per_call[i] ?? null,
      latency_ms: call.latency_ms,
    });
    previous = [...call.messages, call.completion];
  });
  const statePath: string[] = [];
  for (const s of t.calls.map((c) => c.state)) if (statePath[statePath.length - 1] !== s) statePath.push(s);
  const last = t.transitions[t.transitions.length - 1];
  if (last && !statePath.includes(last.to) && ['Finished', 'Rejected', 'Aborted'].includes(last.to)) statePath.push(last.to);

  const failing: { list: string; test: string; status: string }[] = [];
  let passing = 0;
  if (verdict?.report) {
    for (const list of ['FAIL_TO_PASS', 'PASS_TO_PASS'] as const) {
      passing += verdict.report[list].success.length;
      for (const test of verdict.report[list].failure) failing.push({ list, test, status: verdict.tests[test] ?? 'missing' });
    }
  }
  return {
    phase,
    run: t.run,
    instance_id: t.instance_id,
    sample_index: t.sample_index,
    model: t.model,
    seed: t.seed,
    temperature: t.temperature,
    protocol: t.protocol,
    outcome: { status: t.outcome.status, reason: t.outcome.reason, fault: t.outcome.status === 'error' ? t.outcome.fault : null },
    filter: filterOf(t, verdict),
    path: statePath,
    transitions: t.transitions,
    prompts,
    steps,
    patch: t.patch,
    verdict: verdict
      ? {
          outcome: verdict.outcome,
          reason: verdict.reason,
          apply_method: verdict.apply_method,
          test_exit_code: verdict.test_exit_code,
          failing,
          passing,
          log_truncated: verdict.log_truncated,
          ...(verdict.tampering ? { tampering: verdict.tampering } : {}),
        }
      : null,
    log_excerpt: log !== null && log !== '' ? logExcerpt(log) : null,
    llm_calls: t.llm_calls,
    tokens: { prompt: t.tokens.prompt, completion: t.tokens.completion },
    duration_ms: t.duration_ms,
    started_at: t.started_at,
  };
}

/**
 * Text made safe to show: C0/C1 control characters (but newline and tab), DEL and bidirectional
 * overrides become visible `\x1b` / `<U+202E>` escapes, so a model's output can neither drive
 * the terminal nor reorder what the reader sees.
 */
export function visible(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]|[\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `<U+${code.toString(16).toUpperCase()}>`;
  });
}

/** A long text cut for reading: the head and tail lines kept, the middle summarised. */
export interface Collapsed {
  head: string;
  tail: string;
  hiddenLines: number;
  hiddenChars: number;
}

export function collapse(text: string, maxLines = 40, maxChars = 6000, keepHead = 20, keepTail = 5): Collapsed | null {
  const lines = text.split('\n');
  if (lines.length <= maxLines && text.length <= maxChars) return null;
  if (lines.length > maxLines) {
    const head = lines.slice(0, keepHead).join('\n');
    const tail = lines.slice(lines.length - keepTail).join('\n');
    const hidden = lines.slice(keepHead, lines.length - keepTail).join('\n');
    return { head: cutChars(head, maxChars / 2), tail: cutChars(tail, maxChars / 4), hiddenLines: lines.length - keepHead - keepTail, hiddenChars: hidden.length };
  }
  // Few very long lines (a minified file, a 1 MB single line): cut by characters.
  const head = text.slice(0, Math.floor(maxChars * 0.75));
  const tail = text.slice(text.length - Math.floor(maxChars * 0.2));
  return { head, tail, hiddenLines: 0, hiddenChars: text.length - head.length - tail.length };
}

function cutChars(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, Math.floor(n))}…`;
}
