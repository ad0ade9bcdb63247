import { createHash } from 'node:crypto';
import { ACTIONS, STATES, type StateName, type StructuredState } from '../agent/actions.js';
import { RETRY_PREFIX } from '../agent/trajectory.js';
import type { Instance } from '../tasks/instance.js';
import { canonicalJson } from '../util/canonical.js';
import { skillFor, type SimModel } from './model.js';
import { mulberry32 } from '../util/prng.js';

/**
 * The SIMULATED policy (a test double, design §9): pure decision logic that reads the prompts
 * the workflow agent sends and answers like a model of a given skill would, using the bundled
 * tasks' gold patches. It never sees anything but the request: the task comes from the text in
 * <issue> (or, in ClarifyCodeChange and EditCode, from the issue title the plan's instructions
 * quote, else from the code), the state from the system prompt's first line, progress from the
 * file context and the PlanToCode history. Randomness comes from a PRNG seeded with
 * hash(seed, model name, messages), so the same request always gets the same answer.
 *
 * Behaviour, scaled by temperature T and skill s (noise = (1 − s)·T):
 * - T = 0: no invalid actions, no wandering; the edit is correct iff s ≥ 0.5, else a plausible
 *   wrong edit (one change mutated, or, when no change can be mutated, a partial fix).
 * - T > 0: wandering searches, invalid actions of every kind (malformed JSON, a missing field,
 *   an unknown span, a file not in context, a reply without <replace>), and wrong edits; the
 *   wrong-edit and stop-early decisions are calibrated so that a whole trajectory ends resolved
 *   with probability ≈ σ(logit(s)/T), i.e. ≈ s at T = 1.
 */

export interface SimToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface SimMessage {
  role: string;
  content?: string | null | readonly unknown[];
  tool_calls?: readonly SimToolCall[] | null;
  tool_call_id?: string;
}

export interface SimChatRequest {
  messages: readonly SimMessage[];
  tools?: readonly { type: string; function: { name: string; description?: string; parameters?: unknown } }[] | null;
  tool_choice?: unknown;
  response_format?: { type: string } | null;
  seed?: number | null;
  temperature?: number | null;
  max_tokens?: number | null;
  stop?: string | readonly string[] | null;
}

export interface SimCompletion {
  message: { role: 'assistant'; content: string | null; tool_calls?: SimToolCall[] };
  finish_reason: 'stop' | 'length' | 'tool_calls';
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  /** What the simulated policy understood the request to be (for the server's request log). */
  state: StateName;
  instance_id: string | null;
  /** The kind of invalid action it gave on purpose, if any (for tests and the log). */
  invalid: InvalidKind | null;
}

/** The request is not one the simulated policy can answer (not an rft workflow prompt). */
export class SimRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimRequestError';
  }
}

export type InvalidKind =
  | 'malformed_json'
  | 'missing_field'
  | 'unknown_span'
  | 'file_not_in_context'
  | 'empty_search'
  | 'out_of_range'
  | 'no_tool_call'
  | 'no_edit_tags';

/** Rates of the non-fatal noise, multiplied by noise = (1 − skill)·min(T, 1.5). */
export const SIM_RATES = {
  invalid: 0.2,
  wander: 0.5,
  extraSpan: 0.3,
  dropSpan: 0.2,
  notRelevant: 0.2,
  /** Invalid again right after a retry message: this fraction of the first rate. */
  retryFactor: 0.5,
  /**
   * Valid answers given in the looser shapes moatless accepted and SWE-Gym-trained models give (a
   * flat search, no span_ids, no `complete`, an extra key, `reject: false`, review to finish), at
   * any temperature.
   */
  moatlessShape: 0.3,
} as const;

/**
 * Trajectories at T > 0 also fail through noise (retries exhausted, the transition limit); the
 * calibrated success target is divided by this estimate of surviving the noise, per unit of noise.
 */
const NOISE_LOSS = 0.04;

interface Task {
  instance: Instance;
  title: string;
  changes: Change[];
  /** How this task goes wrong: a mutated change, a partial fix (multi-change), or an edit that changes nothing. */
  wrong: 'mutate' | 'partial' | 'cosmetic';
  /** Independent chances to go wrong in one trajectory: wrong edits plus chances to stop early. */
  decisions: number;
  testFiles: string[];
}

type Action = Record<string, unknown>;
type Answer = { kind: 'action'; action: Action; invalid: InvalidKind | null; raw?: string } | { kind: 'text'; text: string; invalid: InvalidKind | null };

interface Turn {
  state: StateName;
  protocol: 'json' | 'tools';
  task: Task | null;
  skill: number;
  temperature: number;
  noise: number;
  rng: () => number;
  retry: boolean;
  /** The first user message: the issue (and, in history-keeping states, the first visit's message). */
  prompt: string;
  /** The message showing the current code: the last one holding a file context, search results or the code to edit. */
  view: string;
  messages: { role: string; content: string; tool_calls: readonly SimToolCall[] }[];
  /** Drawn first on every turn: below the invalid rate means this answer is an invalid action. */
  invalidRoll: number;
  /** From a PRNG of its own (so the decisions above stay as they were): below SIM_RATES.moatlessShape, a valid answer comes in moatless's looser shape. */
  shapeRoll: number;
}

export class SimPolicy {
  private readonly tasks: Task[];
  private readonly byIssue = new Map<string, Task>();

  constructor(instances: readonly Instance[]) {
    // A task without a usable gold patch is unknown to the simulation (answered like any unknown issue).
    this.tasks = instances.map(planTask).filter((task) => task.changes.length > 0);
    for (const task of this.tasks) this.byIssue.set(normalize(task.instance.problem_statement), task);
  }

  get instanceIds(): string[] {
    return this.tasks.map((t) => t.instance.instance_id);
  }

  /** The answer to one chat completion request, from the request alone. */
  complete(request: SimChatRequest, model: SimModel): SimCompletion {
    const messages = request.messages.map((m) => ({ role: m.role, content: textOf(m.content), tool_calls: m.tool_calls ?? [] }));
    const system = messages.find((m) => m.role === 'system');
    const header = /^Workflow step: (\w+)/.exec(system?.content ?? '');
    if (!header || !(STATES as readonly string[]).includes(header[1]!)) {
      throw new SimRequestError('the SIMULATED policy answers only rft workflow prompts: the system prompt must start with "Workflow step: <State>"');
    }
    const state = header[1] as StateName;
    const prompt = messages.find((m) => m.role === 'user')?.content ?? '';
    // The agent puts the current file context in the LAST user message (moatless's layout); retries follow it.
    const view = [...messages].reverse().find((m) => (m.role === 'user' || m.role === 'tool') && /^<(file_context|search_results|search file=)/m.test(m.content))?.content ?? prompt;
    const tools = request.tools ?? [];
    const protocol = tools.length > 0 ? 'tools' : 'json';
    const seed = request.seed ?? 0;
    const digest = createHash('sha256').update(canonicalJson([seed, model.name, request.messages])).digest();
    const rng = mulberry32(digest.readUInt32BE(0));
    const temperature = Math.max(0, Math.min(2, request.temperature ?? 1));
    const task = this.findTask(state, prompt, view);
    const skill = task ? skillFor(model, task.instance.instance_id) : model.skill.default;
    const last = messages.at(-1);
    const turn: Turn = {
      state,
      protocol,
      task,
      skill,
      temperature,
      noise: (1 - skill) * Math.min(temperature, 1.5),
      rng,
      retry: !!last && (last.role === 'user' || last.role === 'tool') && last.content.startsWith(RETRY_PREFIX),
      prompt,
      view,
      messages,
      invalidRoll: rng(),
      shapeRoll: mulberry32(digest.readUInt32BE(4))(),
    };
    const answer = decide(turn);
    return render(answer, turn, request, digest.toString('hex'));
  }

  private findTask(state: StateName, prompt: string, view: string): Task | null {
    const issue = section(prompt, 'issue') ?? section(prompt, 'main_objective');
    const known = issue !== null ? this.byIssue.get(normalize(issue)) : undefined;
    if (known) return known;
    if (state !== 'EditCode' && state !== 'ClarifyCodeChange') return null;
    // No issue in ClarifyCodeChange: the plan's instructions quote the issue title; else go by the code.
    prompt = view;
    const instructions = section(prompt, 'instructions') ?? '';
    const titled = this.tasks.filter((t) => instructions.includes(`"${t.title}"`));
    if (titled.length === 1) return titled[0]!;
    const candidates = titled.length > 0 ? titled : this.tasks;
    const search = searchBlock(prompt);
    const shown = search ? null : parseRendered(section(prompt, 'file_context') ?? '');
    for (const task of candidates) {
      for (const change of task.changes) {
        if (search && change.file === search.file && applyChange(search.code, change, change.newCore)) return task;
        if (shown && locateChange(shownIn(shown, change.file), change)?.form === 'old') return task;
      }
    }
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Tasks

function planTask(instance: Instance): Task {
  const changes = parseGoldPatch(instance.patch);
  const mutable = changes.filter((c) => c.mutantCore !== null).length;
  const wrong: Task['wrong'] = mutable > 0 ? 'mutate' : changes.length > 1 ? 'partial' : 'cosmetic';
  const edits = wrong === 'mutate' ? mutable : wrong === 'cosmetic' ? 1 : 0;
  const testFiles = [...new Set([...instance.test_patch.matchAll(/^\+\+\+ b\/(.+)$/gm)].map((m) => m[1]!.trim()))];
  return {
    instance,
    title: titleOf(instance.problem_statement),
    changes,
    wrong,
    decisions: Math.max(1, edits + Math.max(0, changes.length - 1)),
    testFiles,
  };
}

function titleOf(problem: string): string {
  const first = problem.split('\n').find((line) => line.trim() !== '') ?? '';
  const title = first.trim().replace(/^#+\s*/, '');
  return title.length > 100 ? title.slice(0, 100) : title;
}

function normalize(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

// ---------------------------------------------------------------------------------------------
// Reading prompts

function textOf(content: SimMessage['content']): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => (part && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string' ? (part as { text: string }).text : ''))
      .join('');
  }
  return '';
}

/** The lines between a line `<tag>` and the next line `</tag>`, or null. */
function section(text: string, tag: string): string | null {
  const lines = text.split('\n');
  const start = lines.indexOf(`<${tag}>`);
  if (start < 0) return null;
  const end = lines.indexOf(`</${tag}>`, start + 1);
  if (end < 0) return null;
  return lines.slice(start + 1, end).join('\n');
}

/** EditCode's `<search file="...">` block: the file and the exact code to rewrite. */
function searchBlock(text: string): { file: string; code: string[] } | null {
  const lines = text.split('\n');
  let start = -1;
  let file = '';
  for (let i = lines.length - 1; i >= 0; i--) {
    const open = /^<search file="(.*)">$/.exec(lines[i]!);
    if (open) {
      start = i;
      file = open[1]!;
      break;
    }
  }
  if (start < 0) return null;
  const end = lines.lastIndexOf('</search>');
  if (end <= start) return null;
  return { file, code: lines.slice(start + 1, end) };
}

interface RenderedView {
  shown: Map<number, string>;
  spans: { id: string; start: number; end: number }[];
}

/** The files of a rendered block (prompts.ts renderFiles): shown lines by number, and spans. */
function parseRendered(text: string): Map<string, RenderedView> {
  const files = new Map<string, RenderedView>();
  let file: RenderedView | null = null;
  let span: { id: string; start: number; end: number } | null = null;
  for (const line of text.split('\n')) {
    const openFile = /^<file path="(.*)">$/.exec(line);
    if (openFile) {
      file = files.get(openFile[1]!) ?? { shown: new Map(), spans: [] };
      files.set(openFile[1]!, file);
      continue;
    }
    if (line === '</file>') {
      file = null;
      continue;
    }
    const openSpan = /^<span id="(.*)">$/.exec(line);
    if (openSpan && file) {
      span = { id: openSpan[1]!, start: Infinity, end: -Infinity };
      continue;
    }
    if (line === '</span>') {
      if (file && span && span.start <= span.end) file.spans.push(span);
      span = null;
      continue;
    }
    const numbered = /^ *(\d+)\t(.*)$/.exec(line);
    if (numbered && file) {
      const n = Number(numbered[1]);
      file.shown.set(n, numbered[2]!);
      if (span) {
        span.start = Math.min(span.start, n);
        span.end = Math.max(span.end, n);
      }
    }
  }
  return files;
}

const EMPTY_SHOWN: Shown = new Map();

function shownIn(files: Map<string, RenderedView>, file: string): Shown {
  return files.get(file)?.shown ?? EMPTY_SHOWN;
}

function spanAt(files: Map<string, RenderedView>, file: string, line: number): string | null {
  return files.get(file)?.spans.find((s) => s.start <= line && line <= s.end)?.id ?? null;
}

function readAction(message: { content: string; tool_calls: readonly SimToolCall[] }): Action | null {
  const raw = message.tool_calls[0]?.function.arguments ?? message.content;
  const fenced = /^```(?:json)?\s*\n([\s\S]*?)\n```$/.exec(raw.trim());
  try {
    const value: unknown = JSON.parse(fenced ? fenced[1]! : raw);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Action) : null;
  } catch {
    return null;
  }
}

const MARKER = /\bchange (\d+) of (\d+)\b/i;

/** Changes PlanToCode's own history says were applied: a modify naming "change k of n", answered "Applied the change". */
function appliedByHistory(turn: Turn): Set<number> {
  const done = new Set<number>();
  const first = turn.messages.findIndex((m) => m.role === 'user');
  for (let i = first + 1; i < turn.messages.length - 1; i++) {
    const message = turn.messages[i]!;
    const reply = turn.messages[i + 1]!;
    if (message.role !== 'assistant' || (reply.role !== 'user' && reply.role !== 'tool')) continue;
    if (!reply.content.startsWith('Applied the change')) continue;
    const action = readAction(message);
    if (!action || action.action !== 'modify') continue;
    const marker = MARKER.exec(`${String(action.scratch_pad ?? '')} ${String(action.instructions ?? '')}`);
    if (marker) done.add(Number(marker[1]) - 1);
  }
  return done;
}

// ---------------------------------------------------------------------------------------------
// Deciding

function chance(turn: Turn, rate: number): boolean {
  return turn.temperature > 0 && turn.rng() < rate * turn.noise;
}

function pick<T>(turn: Turn, items: readonly T[]): T {
  return items[Math.floor(turn.rng() * items.length)]!;
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

/**
 * Probability that a trajectory ends resolved: σ(logit(s)/T) — s itself at T = 1, sharper as
 * T falls (a step at 0.5 at T = 0), flatter above 1.
 */
export function targetSuccess(skill: number, temperature: number): number {
  if (skill <= 0) return 0;
  if (skill >= 1) return 1;
  if (temperature <= 0) return skill >= 0.5 ? 1 : 0;
  return sigmoid(Math.log(skill / (1 - skill)) / temperature);
}

/** One of the task's independent chances to go wrong: true when this one goes right. */
function goesRight(turn: Turn, task: Task): boolean {
  if (turn.temperature <= 0) return turn.skill >= 0.5;
  const target = Math.min(1, targetSuccess(turn.skill, turn.temperature) / (1 - NOISE_LOSS * turn.noise));
  return turn.rng() < target ** (1 / task.decisions);
}

function decide(turn: Turn): Answer {
  switch (turn.state) {
    case 'SearchCode':
      return decideSearch(turn);
    case 'IdentifyCode':
      return decideIdentify(turn);
    case 'DecideRelevance':
      return decideRelevance(turn);
    case 'PlanToCode':
      return decidePlan(turn);
    case 'ClarifyCodeChange':
      return decideClarify(turn);
    case 'EditCode':
      return decideEdit(turn);
  }
}

/** Whether this turn's answer is an invalid action (T > 0 only), and which kind. */
function invalidKind(turn: Turn, kinds: InvalidKind[]): InvalidKind | null {
  if (turn.temperature <= 0 || kinds.length === 0) return null;
  const rate = SIM_RATES.invalid * turn.noise * (turn.retry ? SIM_RATES.retryFactor : 1);
  if (turn.invalidRoll >= rate) return null;
  const all: InvalidKind[] = turn.protocol === 'tools' && turn.state !== 'EditCode' ? [...kinds, 'no_tool_call'] : kinds;
  return pick(turn, all);
}

function structured(turn: Turn, action: Action, extraKinds: InvalidKind[] = [], corrupt?: (kind: InvalidKind) => Action | null): Answer {
  const kind = invalidKind(turn, ['malformed_json', 'missing_field', ...extraKinds]);
  if (kind === null) return { kind: 'action', action: turn.shapeRoll < SIM_RATES.moatlessShape ? moatlessShape(turn.state, action) : action, invalid: null };
  if (kind === 'malformed_json') {
    const text = JSON.stringify(action);
    return { kind: 'action', action, invalid: kind, raw: text.slice(0, Math.max(1, Math.floor(text.length * (0.3 + 0.5 * turn.rng())))) };
  }
  if (kind === 'no_tool_call') {
    return { kind: 'text', text: `I will use ${ACTIONS[turn.state as StructuredState].name} with ${JSON.stringify(action)}`, invalid: kind };
  }
  if (kind === 'missing_field') {
    const required: Record<StructuredState, string> = {
      SearchCode: 'scratch_pad',
      IdentifyCode: 'scratch_pad',
      DecideRelevance: 'relevant',
      PlanToCode: 'action',
      ClarifyCodeChange: 'start_line',
    };
    const { [required[turn.state as StructuredState]]: _dropped, ...rest } = action;
    return { kind: 'action', action: rest, invalid: kind };
  }
  const corrupted = corrupt?.(kind) ?? null;
  return corrupted ? { kind: 'action', action: corrupted, invalid: kind } : { kind: 'action', action, invalid: null };
}

/** The same action in the looser shape moatless v0.0.2's action models accepted. */
export function moatlessShape(state: StateName, action: Action): Action {
  switch (state) {
    case 'SearchCode': {
      const requests = action.search_requests as Action[] | undefined;
      if (action.complete || !requests || requests.length !== 1) return action;
      // The flat form of moatless's few-shot examples: the one request's fields at the top level.
      const { search_requests: _requests, complete: _complete, ...rest } = action;
      return { ...rest, ...requests[0] };
    }
    case 'IdentifyCode': {
      const spans = action.identified_spans as { file_path: string; span_ids: string[] }[] | undefined;
      // Without span_ids a file means every span of it the search showed: only when that is what was picked anyway.
      return spans && spans.length > 0 ? action : { scratch_pad: action.scratch_pad };
    }
    case 'DecideRelevance': {
      if (action.complete !== false) return action;
      const { complete: _complete, ...rest } = action;
      return rest;
    }
    case 'PlanToCode':
      // A finish given as a review of the change made (SWE-Gym ran with finish_on_review), or an extra key.
      if (action.action === 'finish') return { scratch_pad: action.scratch_pad, action: 'review', instructions: 'Review the change made for the issue.' };
      return { ...action, thoughts: 'Following the plan.' };
    case 'ClarifyCodeChange':
      return { ...action, reject: false };
    default:
      return action;
  }
}

// SearchCode ----------------------------------------------------------------------------------

function snippetOf(change: Change): string {
  if (isPureInsertion(change)) return (anchorOf(change)?.line ?? change.newCore.find((l) => !isBlank(l)) ?? '').trim();
  const removed = change.core.filter((e) => e.kind === '-' && !isBlank(e.text)).map((e) => e.text.trim());
  const pool = removed.length > 0 ? removed : change.oldCore.filter((l) => !isBlank(l)).map((l) => l.trim());
  return pool.reduce((a, b) => (b.length > a.length ? b : a), '');
}

function issueWords(turn: Turn): string[] {
  const issue = section(turn.prompt, 'issue') ?? '';
  return [...new Set(issue.match(/[A-Za-z][A-Za-z_]{3,}/g) ?? [])];
}

function decideSearch(turn: Turn): Answer {
  const task = turn.task;
  const context = parseRendered(section(turn.view, 'file_context') ?? '');
  if (!task) {
    if (context.size > 0) return structured(turn, { scratch_pad: 'The file context holds the code I found.', search_requests: [], complete: true });
    const words = issueWords(turn).slice(0, 6).join(' ') || 'bug';
    return structured(turn, { scratch_pad: 'Searching for the code the issue describes.', search_requests: [{ query: words }], complete: false });
  }
  const missing = task.changes.filter((c) => !locateChange(shownIn(context, c.file), c));
  if (missing.length === 0 && context.size > 0) {
    return structured(turn, {
      scratch_pad: `The file context shows the code that "${task.title}" is about; no more search is needed.`,
      search_requests: [],
      complete: true,
    });
  }
  if (chance(turn, SIM_RATES.wander)) {
    const words = issueWords(turn);
    const word = words.length > 0 ? pick(turn, words) : 'config';
    const wandering =
      turn.rng() < 0.5
        ? { query: word.toLowerCase() }
        : { class_names: [`${word[0]!.toUpperCase()}${word.slice(1)}${pick(turn, ['Manager', 'Handler', 'Base', 'Error'])}`] };
    return structured(turn, { scratch_pad: `Maybe the problem is around "${word}"; let me look there first.`, search_requests: [wandering], complete: false }, ['empty_search'], emptySearch);
  }
  const targets = missing.length > 0 ? missing : task.changes;
  const requests: Action[] = [];
  const seen = new Set<string>();
  for (const change of targets) {
    const byName = change.enclosing && turn.temperature > 0 && turn.rng() < 0.35;
    const request = byName ? { file_pattern: change.file, function_names: [change.enclosing] } : { file_pattern: change.file, code_snippet: snippetOf(change) };
    const key = JSON.stringify(request);
    if (seen.has(key)) continue;
    seen.add(key);
    requests.push(request);
  }
  const where = [...new Set(targets.map((c) => c.file))].join(', ');
  return structured(
    turn,
    { scratch_pad: `"${task.title}": the code to change should be in ${where}. Searching for it.`, search_requests: requests, complete: false },
    ['empty_search'],
    emptySearch,
  );
}

function emptySearch(kind: InvalidKind): Action | null {
  if (kind !== 'empty_search') return null;
  return { scratch_pad: 'Searching.', search_requests: [], complete: false };
}

// IdentifyCode --------------------------------------------------------------------------------

function decideIdentify(turn: Turn): Answer {
  const results = parseRendered(section(turn.view, 'search_results') ?? '');
  const found: { file: string; span: string }[] = [];
  const add = (file: string, span: string | null) => {
    if (span && !found.some((f) => f.file === file && f.span === span)) found.push({ file, span });
  };
  if (turn.task) {
    for (const change of turn.task.changes) {
      const at = locateChange(shownIn(results, change.file), change);
      if (at) add(change.file, spanAt(results, change.file, at.start));
    }
  } else {
    const [file, view] = [...results.entries()][0] ?? [];
    if (file && view?.spans[0]) add(file, view.spans.at(-1)!.id);
  }
  if (found.length > 1 && chance(turn, SIM_RATES.dropSpan)) found.splice(Math.floor(turn.rng() * found.length), 1);
  if (found.length > 0 && chance(turn, SIM_RATES.extraSpan)) {
    const all = [...results.entries()].flatMap(([file, view]) => view.spans.map((s) => ({ file, span: s.id })));
    if (all.length > 0) {
      const extra = pick(turn, all);
      add(extra.file, extra.span);
    }
  }
  const byFile = new Map<string, string[]>();
  for (const f of found) byFile.set(f.file, [...(byFile.get(f.file) ?? []), f.span]);
  const identified = [...byFile.entries()].map(([file_path, span_ids]) => ({ file_path, span_ids }));
  const action: Action = {
    scratch_pad: identified.length > 0 ? `Relevant: ${found.map((f) => `${f.file}:${f.span}`).join(', ')}.` : 'None of these results is about the issue.',
    identified_spans: identified,
  };
  return structured(turn, action, identified.length > 0 ? ['unknown_span'] : [], (kind) => {
    if (kind !== 'unknown_span') return null;
    const [first, ...rest] = identified;
    const wrongId = hallucinatedSpan(first!.span_ids[0]!, first!.file_path);
    return { ...action, identified_spans: [{ ...first!, span_ids: [wrongId, ...first!.span_ids.slice(1)] }, ...rest] };
  });
}

/** A span id a model might make up: the method without its class, or a module-qualified function. */
function hallucinatedSpan(id: string, file: string): string {
  if (id.includes('.')) return id.split('.').at(-1)!;
  const module = file.split('/').at(-1)!.replace(/\.py$/, '');
  return `${module}.${id}`;
}

// DecideRelevance -----------------------------------------------------------------------------

function decideRelevance(turn: Turn): Answer {
  const context = parseRendered(section(turn.view, 'file_context') ?? '');
  const task = turn.task;
  if (!task) return structured(turn, { scratch_pad: 'This looks related.', relevant: context.size > 0, complete: context.size > 0 });
  const located = task.changes.map((c) => locateChange(shownIn(context, c.file), c));
  let relevant = located.some((l) => l !== null);
  let complete = located.every((l) => l !== null);
  const missing = task.changes.filter((_c, i) => !located[i]);
  if (relevant && chance(turn, SIM_RATES.notRelevant)) {
    relevant = false;
    complete = false;
  }
  const action: Action = {
    scratch_pad: relevant
      ? complete
        ? 'The file context holds all the code the fix needs.'
        : 'The file context holds part of the code to change; more is elsewhere.'
      : 'I am not sure this is the code behind the issue.',
    relevant,
    complete,
  };
  if (!complete) {
    const next = missing[0] ?? task.changes[0]!;
    action.search_suggestions = `Look for \`${snippetOf(next)}\` in ${next.file}`;
  }
  return structured(turn, action);
}

// PlanToCode ----------------------------------------------------------------------------------

function instructionsFor(task: Task, change: Change, spanId: string): string {
  const k = `Change ${change.index + 1} of ${task.changes.length} for the issue "${task.title}"`;
  const added = change.core.filter((e) => e.kind === '+' && !isBlank(e.text)).map((e) => e.text.trim());
  const removed = change.core.filter((e) => e.kind === '-' && !isBlank(e.text)).map((e) => e.text.trim());
  const more = (lines: string[]) => (lines.length > 1 ? ` (and ${lines.length - 1} more line${lines.length > 2 ? 's' : ''})` : '');
  if (isPureInsertion(change)) {
    const anchor = anchorOf(change);
    return `${k}: in ${spanId} of ${change.file}, add \`${added[0] ?? ''}\`${more(added)} after \`${anchor?.line.trim() ?? ''}\`.`;
  }
  if (added.length === 0) return `${k}: in ${spanId} of ${change.file}, remove \`${removed[0] ?? ''}\`${more(removed)}.`;
  return `${k}: in ${spanId} of ${change.file}, replace \`${removed[0] ?? ''}\`${more(removed)} with \`${added[0]}\`${more(added)}.`;
}

function decidePlan(turn: Turn): Answer {
  const task = turn.task;
  if (!task) {
    return structured(turn, { scratch_pad: 'I cannot tell what to change for this issue.', action: 'reject', reject: 'I could not find the cause of the issue.' });
  }
  const context = parseRendered(section(turn.view, 'file_context') ?? '');
  const history = appliedByHistory(turn);
  const status = task.changes.map((change) => {
    if (history.has(change.index)) return { change, done: true, at: null };
    const at = locateChange(shownIn(context, change.file), change);
    return { change, done: at !== null && at.form !== 'old', at };
  });
  const done = status.filter((s) => s.done).length;
  const next = status.find((s) => !s.done);
  const total = task.changes.length;
  if (!next) {
    return structured(turn, {
      scratch_pad: `All ${total} change${total > 1 ? 's are' : ' is'} applied; the issue is fixed.`,
      action: 'finish',
      finish: `Fixed "${task.title}".`,
    });
  }
  if (done > 0) {
    const stop = turn.temperature <= 0 ? task.wrong === 'partial' && turn.skill < 0.5 : !goesRight(turn, task);
    if (stop) {
      return structured(turn, { scratch_pad: 'The main change is in; that should fix the issue.', action: 'finish', finish: `Fixed "${task.title}".` });
    }
  }
  const spanId = next.at ? spanAt(context, next.change.file, next.at.start) : null;
  if (!next.at || !spanId) {
    return structured(turn, {
      scratch_pad: `Change ${next.change.index + 1} of ${total} is in ${next.change.file}, which the file context does not show yet.`,
      action: 'review',
      instructions: `Find \`${snippetOf(next.change)}\` in ${next.change.file}`,
    });
  }
  const action: Action = {
    scratch_pad: `Change ${next.change.index + 1} of ${total}: ${next.change.file} ${spanId} needs updating.`,
    action: 'modify',
    file_path: next.change.file,
    span_id: spanId,
    instructions: instructionsFor(task, next.change, spanId),
  };
  return structured(turn, action, ['unknown_span', 'file_not_in_context'], (kind) => {
    if (kind === 'unknown_span') return { ...action, span_id: hallucinatedSpan(spanId, next.change.file) };
    const others = task.changes.map((c) => c.file).filter((f) => !context.has(f));
    const dir = next.change.file.includes('/') ? next.change.file.slice(0, next.change.file.lastIndexOf('/') + 1) : '';
    const choices = [...others, ...task.testFiles, `${dir}utils.py`];
    return { ...action, file_path: pick(turn, choices) };
  });
}

// ClarifyCodeChange ---------------------------------------------------------------------------

function decideClarify(turn: Turn): Answer {
  const instructions = section(turn.view, 'instructions') ?? '';
  const context = parseRendered(section(turn.view, 'file_context') ?? '');
  const [file, view] = [...context.entries()][0] ?? [];
  const lines = view ? [...view.shown.keys()] : [];
  const low = lines.length > 0 ? Math.min(...lines) : 1;
  const high = lines.length > 0 ? Math.max(...lines) : 1;
  let range = { start: low, end: high };
  const task = turn.task;
  if (task && file) {
    const marker = MARKER.exec(instructions);
    const named = marker ? task.changes[Number(marker[1]) - 1] : undefined;
    const candidates = named ? [named, ...task.changes.filter((c) => c !== named)] : task.changes;
    for (const change of candidates) {
      if (change.file !== file) continue;
      const at = locateChange(view!.shown, change);
      if (at && at.form === 'old') {
        range = { start: at.start, end: at.end };
        break;
      }
    }
  }
  const action: Action = { scratch_pad: `Lines ${range.start}-${range.end} hold the code to change.`, start_line: range.start, end_line: range.end };
  return structured(turn, action, ['out_of_range'], (kind) =>
    kind === 'out_of_range' ? { ...action, start_line: Math.max(1, low - 3), end_line: high + 3 } : null,
  );
}

// EditCode ------------------------------------------------------------------------------------

function decideEdit(turn: Turn): Answer {
  const search = searchBlock(turn.view);
  const task = turn.task;
  const instructions = section(turn.view, 'instructions') ?? '';
  const reject = (why: string): Answer => ({ kind: 'text', text: `<reject>${why}</reject>`, invalid: null });
  if (!search) return reject('There is no code to change.');
  if (!task) return reject('I do not know how to carry out these instructions on this code.');
  const marker = MARKER.exec(instructions);
  const named = marker ? task.changes[Number(marker[1]) - 1] : undefined;
  const candidates = (named ? [named, ...task.changes.filter((c) => c !== named)] : task.changes).filter((c) => c.file === search.file);
  const change = candidates.find((c) => applyChange(search.code, c, c.newCore) !== null);
  if (!change) return reject('The code in <search> does not hold what the instructions describe.');
  let replacement = change.newCore;
  if ((task.wrong === 'mutate' && change.mutantCore) || task.wrong === 'cosmetic') {
    if (!goesRight(turn, task)) replacement = change.mutantCore ?? cosmeticCore(change, task.title);
  }
  const code = applyChange(search.code, change, replacement)!;
  const kind = invalidKind(turn, ['no_edit_tags']);
  if (kind) return { kind: 'text', text: `Here is the updated code:\n\`\`\`python\n${code.join('\n')}\n\`\`\``, invalid: kind };
  return { kind: 'text', text: `<replace>\n${code.join('\n')}\n</replace>`, invalid: null };
}

// ---------------------------------------------------------------------------------------------
// Answering

function render(answer: Answer, turn: Turn, request: SimChatRequest, digest: string): SimCompletion {
  const stops = typeof request.stop === 'string' ? [request.stop] : [...(request.stop ?? [])];
  const maxTokens = request.max_tokens ?? Infinity;
  let content: string | null = null;
  let toolCalls: SimToolCall[] | undefined;
  let finish: SimCompletion['finish_reason'] = 'stop';
  if (answer.kind === 'action' && turn.protocol === 'tools') {
    const name = toolName(request, turn.state);
    let args = answer.raw ?? JSON.stringify(answer.action);
    if (estimateTokens(args) > maxTokens) {
      args = args.slice(0, maxTokens * 4);
      finish = 'length';
    } else finish = 'tool_calls';
    toolCalls = [{ id: `call_${digest.slice(0, 24)}`, type: 'function', function: { name, arguments: args } }];
  } else {
    let text = answer.kind === 'action' ? (answer.raw ?? JSON.stringify(answer.action)) : answer.text;
    const cut = stops.map((s) => (s ? text.indexOf(s) : -1)).filter((i) => i >= 0);
    if (cut.length > 0) text = text.slice(0, Math.min(...cut));
    if (estimateTokens(text) > maxTokens) {
      text = text.slice(0, maxTokens * 4);
      finish = 'length';
    }
    content = text;
  }
  const promptTokens =
    turn.messages.reduce((n, m) => n + 4 + estimateTokens(m.content) + m.tool_calls.reduce((k, c) => k + estimateTokens(c.function.name + c.function.arguments), 0), 0) +
    (request.tools?.length ? estimateTokens(JSON.stringify(request.tools)) : 0);
  const completionTokens = estimateTokens(content ?? '') + (toolCalls ?? []).reduce((k, c) => k + estimateTokens(c.function.name + c.function.arguments), 0);
  return {
    message: { role: 'assistant', content, ...(toolCalls ? { tool_calls: toolCalls } : {}) },
    finish_reason: finish,
    usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
    state: turn.state,
    instance_id: turn.task?.instance.instance_id ?? null,
    invalid: answer.invalid,
  };
}

function toolName(request: SimChatRequest, state: StateName): string {
  const choice = request.tool_choice as { function?: { name?: unknown } } | undefined;
  if (choice && typeof choice === 'object' && typeof choice.function?.name === 'string') return choice.function.name;
  return request.tools?.[0]?.function.name ?? (state === 'EditCode' ? 'EditCode' : ACTIONS[state].name);
}

/** Tokens estimated from text length (about four characters a token). */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

// =============================================================================================
// The task's gold patch, cut into changes: finding each change in rendered code, applying it by
// content, and its plausible wrong version. Nothing below knows about prompts or HTTP.

export type EntryKind = ' ' | '-' | '+';
export interface Entry {
  kind: EntryKind;
  text: string;
}

/** One edit unit of a gold patch: a run of removed/added lines (with interior context) in one place. */
export interface Change {
  /** 0-based position in the task's list of changes (file order, then line order). */
  index: number;
  file: string;
  /** Context lines before the core, as far back as the hunk (or the previous change) goes; file order. */
  before: string[];
  /** Context lines after the core, up to the end of the hunk (or the next change). */
  after: string[];
  /** From the first changed line to the last, interior context included. */
  core: Entry[];
  /** The core as it is before the fix (context and removed lines). Empty for a pure insertion. */
  oldCore: string[];
  /** The core after the fix (context and added lines). */
  newCore: string[];
  /** A plausible wrong version of newCore (an operator flipped, a call dropped …), or null. */
  mutantCore: string[] | null;
  /** 1-based line of the core in the base file (for a pure insertion: the line it goes before). */
  oldStart: number;
  /** The function the change is in, when the patch tells (a `def` line in the hunk or its header). */
  enclosing: string | null;
}

export const isBlank = (line: string): boolean => line.trim() === '';
export const sameLine = (a: string | undefined, b: string): boolean => a !== undefined && a.trimEnd() === b.trimEnd();

export function isPureInsertion(change: Change): boolean {
  return !change.oldCore.some((line) => !isBlank(line));
}

interface Hunk {
  file: string;
  oldStart: number;
  header: string;
  entries: Entry[];
}

/** Reads a unified (git) diff into hunks; deleted files and binary patches are skipped. */
export function parseHunks(patch: string): Hunk[] {
  const hunks: Hunk[] = [];
  let file: string | null = null;
  let current: Hunk | null = null;
  let remainingOld = 0;
  let remainingNew = 0;
  for (const line of patch.split('\n')) {
    if (current && (remainingOld > 0 || remainingNew > 0)) {
      const kind = line[0];
      if (kind === ' ' || kind === '-' || kind === '+' || line === '') {
        const entryKind: EntryKind = line === '' ? ' ' : (kind as EntryKind);
        current.entries.push({ kind: entryKind, text: line.slice(1) });
        if (entryKind !== '+') remainingOld--;
        if (entryKind !== '-') remainingNew--;
        continue;
      }
      if (line.startsWith('\\')) continue;
    }
    if (line.startsWith('\\')) continue;
    if (line.startsWith('diff --git ')) {
      file = null;
      current = null;
      continue;
    }
    if (line.startsWith('+++ ')) {
      const target = line.slice(4).trim();
      file = target === '/dev/null' ? null : target.replace(/^b\//, '');
      continue;
    }
    const header = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$/.exec(line);
    if (header && file !== null) {
      current = { file, oldStart: Number(header[1]), header: header[5] ?? '', entries: [] };
      remainingOld = header[2] === undefined ? 1 : Number(header[2]);
      remainingNew = header[4] === undefined ? 1 : Number(header[4]);
      hunks.push(current);
    }
  }
  return hunks;
}

/** A context run that separates two changes into different places: it crosses a definition or a top-level line. */
function separates(context: Entry[]): boolean {
  return context.some((e) => /^\s*(?:async\s+def|def|class)\s/.test(e.text) || (!isBlank(e.text) && !/^\s/.test(e.text)));
}

/** The gold patch as a list of changes, each applicable on its own by content. */
export function parseGoldPatch(patch: string): Change[] {
  const changes: Change[] = [];
  for (const hunk of parseHunks(patch)) {
    const { entries } = hunk;
    // Runs of changed entries, merged when the context between them stays inside one block.
    const groups: { start: number; end: number }[] = [];
    for (let i = 0; i < entries.length; i++) {
      if (entries[i]!.kind === ' ') continue;
      let j = i;
      while (j + 1 < entries.length && entries[j + 1]!.kind !== ' ') j++;
      const last = groups.at(-1);
      if (last && !separates(entries.slice(last.end + 1, i))) last.end = j;
      else groups.push({ start: i, end: j });
      i = j;
    }
    let oldLine = hunk.oldStart;
    let cursor = 0;
    for (const [g, group] of groups.entries()) {
      const previousEnd = g === 0 ? -1 : groups[g - 1]!.end;
      const nextStart = g + 1 < groups.length ? groups[g + 1]!.start : entries.length;
      for (; cursor < group.start; cursor++) if (entries[cursor]!.kind !== '+') oldLine++;
      const core = entries.slice(group.start, group.end + 1);
      const before = entries.slice(previousEnd + 1, group.start).map((e) => e.text);
      const after = entries.slice(group.end + 1, nextStart).map((e) => e.text);
      const oldCore = core.filter((e) => e.kind !== '+').map((e) => e.text);
      const newCore = core.filter((e) => e.kind !== '-').map((e) => e.text);
      changes.push({
        index: changes.length,
        file: hunk.file,
        before,
        after,
        core,
        oldCore,
        newCore,
        mutantCore: mutateCore(core),
        oldStart: oldLine,
        enclosing: enclosingFunction(entries.slice(0, group.start), hunk.header),
      });
    }
  }
  return changes;
}

function enclosingFunction(before: Entry[], header: string): string | null {
  for (let i = before.length - 1; i >= 0; i--) {
    const def = /^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)/.exec(before[i]!.text);
    if (def) return def[1]!;
    const cls = /^\s*class\s/.exec(before[i]!.text);
    if (cls) return null;
  }
  const fromHeader = /^\s*(?:async\s+)?def\s+([A-Za-z_]\w*)/.exec(header);
  return fromHeader ? fromHeader[1]! : null;
}

// ---------------------------------------------------------------------------------------------
// Plausible wrong edits: the fix with one small, believable mistake that the tests catch.

type Rule = (code: string, removed: readonly string[]) => string | null;

const swap = (pairs: [RegExp, string][]): Rule => (code) => {
  for (const [pattern, replacement] of pairs) {
    if (pattern.test(code)) return code.replace(pattern, replacement);
  }
  return null;
};

const BUILTIN_CALL = /\b(abs|list|tuple|str|int|float|hash|len|sorted|set|dict|bool|round)\(/;

/** The rules, tried in this order over all added lines (rule-major): the first that applies wins. */
const RULES: Rule[] = [
  // 1. Flip a comparison.
  swap([
    [/ is not /, ' is '],
    [/ != /, ' == '],
    [/ == /, ' != '],
    [/ >= /, ' < '],
    [/ <= /, ' > '],
    [/ > /, ' < '],
    [/ < /, ' > '],
    [/ not in /, ' in '],
  ]),
  // 2. Flip an arithmetic operator.
  swap([
    [/ - /, ' + '],
    [/ \+ /, ' - '],
  ]),
  // 3. Negate a condition.
  swap([
    [/ if (?!not )/, ' if not '],
    [/^(\s*)if (?!not )/, '$1if not '],
    [/^(\s*)while (?!not )/, '$1while not '],
  ]),
  // 4. Drop a wrapping builtin call: abs(x) -> x.
  (code) => {
    const match = BUILTIN_CALL.exec(code);
    if (!match) return null;
    const open = match.index + match[0].length - 1;
    let depth = 0;
    for (let i = open; i < code.length; i++) {
      if (code[i] === '(') depth++;
      else if (code[i] === ')' && --depth === 0) return code.slice(0, match.index) + code.slice(open + 1, i) + code.slice(i + 1);
    }
    return null;
  },
  // 5. Off by one in a new integer constant (one the removed lines did not have).
  (code, removed) => {
    for (const match of code.matchAll(/(?<![\w.])(\d+)(?![\w.])/g)) {
      if (removed.some((line) => new RegExp(`(?<![\\w.])${match[1]}(?![\\w.])`).test(line))) continue;
      return code.slice(0, match.index) + String(Number(match[1]) + 1) + code.slice(match.index! + match[1]!.length);
    }
    return null;
  },
];

/** Added lines a rule may touch: code, not comments or docstrings. */
function mutableLines(core: Entry[]): Set<number> {
  const allowed = new Set<number>();
  let inDocstring = false;
  for (const [i, entry] of core.entries()) {
    if (entry.kind === '-') continue;
    const trimmed = entry.text.trim();
    const quotes = (trimmed.match(/"""|'''/g) ?? []).length;
    const wasIn = inDocstring;
    if (quotes % 2 === 1) inDocstring = !inDocstring;
    if (wasIn || quotes > 0) continue;
    if (entry.kind === '+' && trimmed !== '' && !trimmed.startsWith('#')) allowed.add(i);
  }
  return allowed;
}

/** The new core with one plausible mistake, different from the old core; null when no rule applies. */
export function mutateCore(core: Entry[]): string[] | null {
  const removed = core.filter((e) => e.kind === '-').map((e) => e.text);
  const oldCore = core.filter((e) => e.kind !== '+').map((e) => e.text).join('\n');
  const allowed = mutableLines(core);
  for (const rule of RULES) {
    for (const i of allowed) {
      const entry = core[i]!;
      const hash = entry.text.indexOf('#');
      const code = hash >= 0 && !/["']/.test(entry.text.slice(0, hash)) ? entry.text.slice(0, hash) : entry.text;
      const mutated = rule(code, removed);
      if (mutated === null || mutated === code) continue;
      const text = mutated + entry.text.slice(code.length);
      const next = core.map((e, k) => (k === i ? { ...e, text } : e)).filter((e) => e.kind !== '-').map((e) => e.text);
      if (next.join('\n') !== oldCore) return next;
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Finding a change in rendered code (line number → text, only the lines shown).

export type Shown = ReadonlyMap<number, string>;

/**
 * Whether `seq` is shown starting at line `p`: every non-blank line shown and equal; a blank
 * line may be blank or not shown (blank lines between spans are never rendered).
 */
export function shownAt(shown: Shown, seq: readonly string[], p: number): boolean {
  let solid = 0;
  for (const [i, line] of seq.entries()) {
    const have = shown.get(p + i);
    if (isBlank(line)) {
      if (have !== undefined && !isBlank(have)) return false;
    } else {
      if (!sameLine(have, line)) return false;
      solid++;
    }
  }
  return solid > 0;
}

/** How many lines of the change's context are shown around a block at [p, p+len). */
function contextScore(shown: Shown, change: Change, p: number, len: number): number {
  let score = 0;
  for (let i = 1; i <= change.before.length; i++) {
    const line = change.before[change.before.length - i]!;
    if (!isBlank(line) && sameLine(shown.get(p - i), line)) score++;
  }
  for (const [i, line] of change.after.entries()) if (!isBlank(line) && sameLine(shown.get(p + len + i), line)) score++;
  return score;
}

function trimBlankEnds(lines: readonly string[]): { lines: string[]; lead: number } {
  let start = 0;
  let end = lines.length;
  while (start < end && isBlank(lines[start]!)) start++;
  while (end > start && isBlank(lines[end - 1]!)) end--;
  return { lines: lines.slice(start, end), lead: start };
}

/** Best place the block is shown (most context around it, then nearest the patch's line); null if nowhere. */
export function findBlock(shown: Shown, change: Change, block: readonly string[]): { start: number; end: number } | null {
  const { lines, lead } = trimBlankEnds(block);
  if (lines.length === 0) return null;
  let best: { start: number; end: number; score: number; distance: number } | null = null;
  for (const lineNo of shown.keys()) {
    if (!sameLine(shown.get(lineNo), lines[0]!)) continue;
    if (!shownAt(shown, lines, lineNo)) continue;
    const score = contextScore(shown, change, lineNo - lead, block.length);
    const distance = Math.abs(lineNo - lead - change.oldStart);
    if (!best || score > best.score || (score === best.score && distance < best.distance)) {
      best = { start: lineNo, end: lineNo + lines.length - 1, score, distance };
    }
  }
  return best ? { start: best.start, end: best.end } : null;
}

/** The line a pure insertion hangs on: the last non-blank context line before it (or the first after). */
export function anchorOf(change: Change): { line: string; side: 'before' | 'after'; gap: number } | null {
  for (let i = change.before.length - 1; i >= 0; i--) {
    if (!isBlank(change.before[i]!)) return { line: change.before[i]!, side: 'before', gap: change.before.length - 1 - i };
  }
  for (const [i, line] of change.after.entries()) if (!isBlank(line)) return { line, side: 'after', gap: i };
  return null;
}

export type Form = 'old' | 'new' | 'mutant';

/** Where a change is shown and in which form; a pure insertion not yet seen applied is 'old' at its anchor. */
export function locateChange(shown: Shown, change: Change): { form: Form; start: number; end: number } | null {
  const fixed = findBlock(shown, change, change.newCore);
  if (fixed) return { form: 'new', ...fixed };
  if (change.mutantCore) {
    const wrong = findBlock(shown, change, change.mutantCore);
    if (wrong) return { form: 'mutant', ...wrong };
  }
  if (!isPureInsertion(change)) {
    const old = findBlock(shown, change, change.oldCore);
    return old ? { form: 'old', ...old } : null;
  }
  const anchor = anchorOf(change);
  if (!anchor) return null;
  let best: { line: number; score: number; distance: number } | null = null;
  for (const [lineNo, text] of shown) {
    if (!sameLine(text, anchor.line)) continue;
    // The insertion point (1-based): after the anchor and its gap, or before the gap and the anchor.
    const at = anchor.side === 'before' ? lineNo + anchor.gap + 1 : lineNo - anchor.gap;
    const score = contextScore(shown, change, at, 0);
    const distance = Math.abs(at - change.oldStart);
    if (!best || score > best.score || (score === best.score && distance < best.distance)) best = { line: lineNo, score, distance };
  }
  return best ? { form: 'old', start: best.line, end: best.line } : null;
}

// ---------------------------------------------------------------------------------------------
// Applying a change to a block of code, by content.

function blockPositions(code: readonly string[], block: readonly string[]): number[] {
  const found: number[] = [];
  if (block.length === 0) return found;
  for (let p = 0; p + block.length <= code.length; p++) {
    if (block.every((line, i) => sameLine(code[p + i], line))) found.push(p);
  }
  return found;
}

/** The candidate (0-based insertion point) with the most of the change's context around it. */
function bestPosition(code: readonly string[], change: Change, points: number[], len: number): number | undefined {
  const shown = new Map(code.map((line, i) => [i + 1, line] as const));
  let best: { p: number; score: number } | undefined;
  for (const p of points) {
    const score = contextScore(shown, change, p + 1, len);
    if (!best || score > best.score) best = { p, score };
  }
  return best?.p;
}

/**
 * The code with the change applied (its core replaced by `replacement`), or null when the code
 * does not hold the change's old form. A pure insertion goes after its anchor line; blank
 * context lines between the anchor and the insertion that lie past the end of the code are
 * carried into the replacement, and as many trailing blank added lines dropped, so the file
 * comes out as the patch would make it.
 */
export function applyChange(code: readonly string[], change: Change, replacement: readonly string[]): string[] | null {
  if (!isPureInsertion(change)) {
    const p = bestPosition(code, change, blockPositions(code, change.oldCore), change.oldCore.length);
    if (p === undefined) return null;
    return [...code.slice(0, p), ...replacement, ...code.slice(p + change.oldCore.length)];
  }
  const anchor = anchorOf(change);
  if (!anchor) return null;
  const positions = blockPositions(code, [anchor.line]);
  if (anchor.side === 'before') {
    // Candidates are insertion points right after anchor + gap; `at` is the anchor's index.
    const p = bestPosition(code, change, positions.map((q) => q + anchor.gap + 1), 0);
    if (p === undefined) return null;
    const at = p - anchor.gap - 1;
    const insideGap = Math.min(anchor.gap, code.length - at - 1);
    for (let i = 1; i <= insideGap; i++) if (!isBlank(code[at + i]!)) return null;
    const outside = anchor.gap - insideGap;
    let added = [...replacement];
    let carried = 0;
    while (carried < outside && added.length > 0 && isBlank(added.at(-1)!)) {
      added = added.slice(0, -1);
      carried++;
    }
    const cut = at + 1 + insideGap;
    return [...code.slice(0, cut), ...Array<string>(outside).fill(''), ...added, ...code.slice(cut)];
  }
  const p = bestPosition(code, change, positions.map((q) => q - anchor.gap), 0);
  if (p === undefined) return null;
  const at = p + anchor.gap; // the anchor's index
  const insideGap = Math.min(anchor.gap, at);
  for (let i = 1; i <= insideGap; i++) if (!isBlank(code[at - i]!)) return null;
  const outside = anchor.gap - insideGap;
  let added = [...replacement];
  let carried = 0;
  while (carried < outside && added.length > 0 && isBlank(added[0]!)) {
    added = added.slice(1);
    carried++;
  }
  const cut = at - insideGap;
  return [...code.slice(0, cut), ...added, ...Array<string>(outside).fill(''), ...code.slice(cut)];
}

/** A wrong edit that changes nothing that matters: the old code with a comment added. */
export function cosmeticCore(change: Change, note: string): string[] {
  if (isPureInsertion(change)) {
    const first = change.newCore.find((line) => !isBlank(line)) ?? '';
    const indent = /^\s*/.exec(first)![0];
    return [`${indent}# TODO: ${note}`];
  }
  const lines = [...change.oldCore];
  const i = lines.findIndex((line) => !isBlank(line));
  lines[i] = `${lines[i]}  # TODO: ${note}`;
  return lines;
}
