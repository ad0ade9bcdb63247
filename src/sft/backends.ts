import { RETRY_PREFIX } from '../agent/trajectory.js';
import { SFT_BACKENDS } from '../recipe/schema.js';

/**
 * How each trainer decides which tokens of a line carry loss, and what rft writes and sets so
 * that every one of them trains exactly on `sft.train_on` (design §6). Pure data and functions:
 * the emit step shapes lines with them, `rft sft check` replays each trainer's reading with them,
 * and the wrapper tests compare the scripts' configs against `trainerSettings`.
 *
 * Facts (each project's current source and docs):
 * - OpenAI: `weight` (0/1) on assistant messages; a message without it is trained.
 * - TRL v1.x (`trl sft`, SFTConfig): `{"messages"}` data trains on the whole sequence unless
 *   `assistant_only_loss` (every assistant span the chat template marks with {% generation %});
 *   the conversational prompt-completion form `{"prompt": [...], "completion": [...]}` trains on
 *   the completion only (`completion_only_loss`, default on for that form). `chat_template_path`
 *   swaps in a template; `weight` is never read.
 * - LLaMA-Factory: `train_on_prompt: false` masks prompts; every assistant turn is trained unless
 *   `mask_history: true` (last turn only). Its OpenAI-format converter takes a system message only
 *   at index 0, maps `tool_calls` to a function turn and `tool` messages to an observation turn,
 *   and skips a line whose turns do not alternate (user|observation, assistant|function).
 * - axolotl `type: chat_template`: `roles_to_train: [assistant]`, `train_on_eos: turn` by default;
 *   `message_field_training: weight` lets each message's `weight` decide (0 untrained, 1 trained).
 *
 * Invalid replies (a retry call replays each invalid reply of its visit as an assistant turn
 * answered by a retry prompt) never carry loss, under either policy. OpenAI and axolotl read
 * them with weight 0. TRL's assistant_only_loss and LLaMA-Factory without mask_history train
 * every assistant turn of a line and neither can mask one message (LLaMA-Factory v0.9.5's
 * supervised processor has only train_on_prompt and mask_history; TRL never reads `weight`), so
 * under `assistant` the line they get leaves each invalid reply and its retry prompt out: what
 * remains is, token for token, the prompt of the visit's first attempt (the history before the
 * pairs is unchanged and the pairs are always the prompt's tail), followed by the valid answer
 * the model gave that visit. Under `target` they keep the pairs as untrained context (TRL's
 * prompt, LLaMA-Factory's masked history), as OpenAI and axolotl do.
 */

export type SftBackend = (typeof SFT_BACKENDS)[number];
export type TrainOn = 'target' | 'assistant';
export type ToolArguments = 'string' | 'object';

export const ALL_BACKENDS: readonly SftBackend[] = SFT_BACKENDS;
export const POLICIES: readonly TrainOn[] = ['target', 'assistant'];

/** How the data is laid out for a backend and policy. */
export type LineForm = 'messages' | 'prompt_completion';

export type TrainerSettings =
  | { backend: 'openai'; form: 'messages'; weights: TrainOn }
  | { backend: 'trl'; form: LineForm; assistant_only_loss: boolean; completion_only_loss: boolean }
  | { backend: 'llamafactory'; form: 'messages'; mask_history: boolean; train_on_prompt: false }
  | { backend: 'axolotl'; form: 'messages'; weights: TrainOn; message_field_training: 'weight'; roles_to_train: ['assistant']; train_on_eos: 'turn' };

/** What rft writes and what the wrapper (scripts/train-<backend>.sh --train-on P) sets, per backend and policy. */
export function trainerSettings(backend: SftBackend, trainOn: TrainOn): TrainerSettings {
  switch (backend) {
    case 'openai':
      return { backend, form: 'messages', weights: trainOn };
    case 'trl':
      return trainOn === 'target'
        ? { backend, form: 'prompt_completion', assistant_only_loss: false, completion_only_loss: true }
        : { backend, form: 'messages', assistant_only_loss: true, completion_only_loss: false };
    case 'llamafactory':
      return { backend, form: 'messages', mask_history: trainOn === 'target', train_on_prompt: false };
    case 'axolotl':
      return { backend, form: 'messages', weights: trainOn, message_field_training: 'weight', roles_to_train: ['assistant'], train_on_eos: 'turn' };
  }
}

/** OpenAI reads arguments as a JSON string; Hugging Face chat templates apply `tojson` to them, so they want an object. */
export function defaultToolArguments(backend: SftBackend): ToolArguments {
  return backend === 'openai' ? 'string' : 'object';
}

/** A message of a line in any of the shapes rft writes (weight optional, arguments string or object). */
export interface LineMessage {
  role: string;
  content: string;
  weight?: 0 | 1;
  tool_calls?: Array<{ id: string; type: string; function: { name: string; arguments: unknown } }>;
  tool_call_id?: string;
}

/** A line with its messages in one list, whatever form it was written in. */
export interface CanonicalLine {
  messages: LineMessage[];
  tools?: unknown[];
}

/** A retry prompt: the user or tool message that tells the model its last reply was not a valid action. */
export function isRetryPrompt(message: LineMessage | undefined): boolean {
  return (message?.role === 'user' || message?.role === 'tool') && typeof message.content === 'string' && message.content.startsWith(RETRY_PREFIX);
}

/** The invalid replies of a line: assistant messages answered by a retry prompt (the next message). */
export function invalidReplies(messages: readonly LineMessage[]): number[] {
  return messages.flatMap((m, i) => (m.role === 'assistant' && isRetryPrompt(messages[i + 1]) ? [i] : []));
}

/** The line without its invalid replies and the retry prompts answering them. */
export function withoutInvalidReplies(messages: readonly LineMessage[]): LineMessage[] {
  const out = new Set(invalidReplies(messages).flatMap((i) => [i, i + 1]));
  return messages.filter((_, i) => !out.has(i));
}

/** The valid assistant messages of a line (invalid replies excluded). */
function validAssistants(messages: readonly LineMessage[]): number[] {
  const invalid = new Set(invalidReplies(messages));
  return messages.flatMap((m, i) => (m.role === 'assistant' && !invalid.has(i) ? [i] : []));
}

/**
 * The training targets of a line: each call's completion, i.e. the valid assistant messages that
 * end the line or are followed by the next call's system prompt (a call-unit line: its last
 * message). Read from the layout, not from the weights: an invalid reply has weight 0 under both
 * policies, and a trajectory line whose calls replay no history has no weight 0 to tell the
 * policies apart.
 */
export function targetsOf(messages: readonly LineMessage[]): number[] {
  const last = messages.length - 1;
  const ends = validAssistants(messages).filter((i) => i === last || messages[i + 1]!.role === 'system');
  return ends.includes(last) ? ends : [...ends, last];
}

/** The messages that carry loss under a policy: every valid assistant message, or the targets. */
export function policyMessages(messages: readonly LineMessage[], trainOn: TrainOn): number[] {
  return trainOn === 'assistant' ? validAssistants(messages) : targetsOf(messages);
}

/** Whether a trainer so set trains every assistant turn of a line with no way to spare one (see the facts above). */
export function trainsEveryAssistantTurn(settings: TrainerSettings): boolean {
  if (settings.backend === 'trl') return settings.form === 'messages' && settings.assistant_only_loss;
  if (settings.backend === 'llamafactory') return !settings.mask_history;
  return false;
}

/**
 * Sets the weights of a policy (target: the targets 1, other assistant messages 0; assistant:
 * every valid assistant message 1; an invalid reply 0 under both) and the arguments' type.
 * Returns new messages.
 */
export function applyPolicy(messages: readonly LineMessage[], trainOn: TrainOn, args: ToolArguments): LineMessage[] {
  const trained = new Set(policyMessages(messages, trainOn));
  return messages.map((m, i) => {
    if (m.role !== 'assistant') return { ...m };
    const out: LineMessage = { ...m, weight: trained.has(i) ? 1 : 0 };
    if (m.tool_calls) out.tool_calls = m.tool_calls.map((c) => ({ ...c, function: { name: c.function.name, arguments: convertArguments(c.function.arguments, args) } }));
    return out;
  });
}

function convertArguments(value: unknown, to: ToolArguments): unknown {
  if (to === 'string') return typeof value === 'string' ? value : JSON.stringify(value);
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value) as unknown;
  } catch {
    // Not JSON (a model's malformed call kept as context): a template can only show it as text.
    return value;
  }
}

/**
 * The messages with every tool call's arguments an object (where they parse), as Hugging Face
 * templates are given them: how `rft sft check` counts a line whatever it was written for.
 * Returns the same array when no message has a tool call.
 */
export function withObjectArguments(messages: LineMessage[]): LineMessage[] {
  if (!messages.some((m) => m.tool_calls)) return messages;
  return messages.map((m) =>
    m.tool_calls ? { ...m, tool_calls: m.tool_calls.map((c) => ({ ...c, function: { name: c.function.name, arguments: convertArguments(c.function.arguments, 'object') } })) } : m,
  );
}

/** The record written for a backend: `{messages, tools?}`, or TRL's `{prompt, completion, tools?}`. */
export function shapeLine(line: CanonicalLine, backend: SftBackend, trainOn: TrainOn, args: ToolArguments = defaultToolArguments(backend)): Record<string, unknown> {
  const kept = trainsEveryAssistantTurn(trainerSettings(backend, trainOn)) ? withoutInvalidReplies(line.messages) : line.messages;
  const messages = applyPolicy(kept, trainOn, args);
  const tools = line.tools && line.tools.length > 0 ? { tools: line.tools } : {};
  if (trainerSettings(backend, trainOn).form === 'prompt_completion') {
    if (policyMessages(line.messages, trainOn).length > 1) throw new Error('the prompt-completion form trains one completion; this line has several targets (unit trajectory)');
    return { prompt: messages.slice(0, -1), completion: messages.slice(-1), ...tools };
  }
  return { messages, ...tools };
}

/** A written record back as one message list, and the form it was in; null when it is neither form. */
export function canonicalOf(record: Record<string, unknown>): { line: CanonicalLine; form: LineForm } | null {
  const tools = Array.isArray(record.tools) ? { tools: record.tools as unknown[] } : {};
  if (Array.isArray(record.messages)) return { line: { messages: record.messages as LineMessage[], ...tools }, form: 'messages' };
  if (Array.isArray(record.prompt) && Array.isArray(record.completion)) {
    return { line: { messages: [...(record.prompt as LineMessage[]), ...(record.completion as LineMessage[])], ...tools }, form: 'prompt_completion' };
  }
  return null;
}

/** Which messages a trainer puts loss on, or why it skips the line; `all` when it trains the whole sequence. */
export type Reading = { skipped: null; trained: number[] | 'all' } | { skipped: string; trained: [] };

/** Replays how `settings.backend` reads one written record (see the facts above). */
export function readAs(record: Record<string, unknown>, settings: TrainerSettings): Reading {
  const found = canonicalOf(record);
  if (!found) return { skipped: 'neither messages nor prompt/completion', trained: [] };
  const { line, form } = found;
  const assistants = line.messages.flatMap((m, i) => (m.role === 'assistant' ? [i] : []));
  switch (settings.backend) {
    case 'openai':
      if (form !== 'messages') return { skipped: 'OpenAI reads messages, not prompt/completion', trained: [] };
      return { skipped: null, trained: assistants.filter((i) => line.messages[i]!.weight !== 0) };
    case 'trl':
      if (form === 'prompt_completion') {
        if (settings.assistant_only_loss) return { skipped: null, trained: assistants };
        if (settings.completion_only_loss) {
          const promptLength = (record.prompt as unknown[]).length;
          return { skipped: null, trained: assistants.filter((i) => i >= promptLength) };
        }
        return { skipped: null, trained: 'all' };
      }
      return settings.assistant_only_loss ? { skipped: null, trained: assistants } : { skipped: null, trained: 'all' };
    case 'llamafactory': {
      if (form !== 'messages') return { skipped: 'LLaMA-Factory reads messages, not prompt/completion', trained: [] };
      const turns = llamaFactoryTurns(line.messages);
      if (typeof turns === 'string') return { skipped: turns, trained: [] };
      const trained = turns.filter((t) => t.model).map((t) => t.last);
      return { skipped: null, trained: settings.mask_history ? trained.slice(-1) : trained };
    }
    case 'axolotl':
      if (form !== 'messages') return { skipped: 'axolotl chat_template reads messages, not prompt/completion', trained: [] };
      return {
        skipped: null,
        trained: line.messages.flatMap((m, i) => {
          const w = (m as unknown as Record<string, unknown>)[settings.message_field_training];
          const trained = w === undefined ? settings.roles_to_train.includes(m.role as 'assistant') : w === 1 || w === true;
          return trained ? [i] : [];
        }),
      };
  }
}

/**
 * LLaMA-Factory's OpenAI-format turns: system only first; consecutive tool messages one
 * observation; then user|observation at even positions and assistant|function at odd ones, an
 * even count. Returns the turns (index of their last message, whether a model turn) or why the
 * line is skipped.
 */
function llamaFactoryTurns(messages: readonly LineMessage[]): Array<{ last: number; model: boolean }> | string {
  let start = 0;
  if (messages[0]?.role === 'system') start = 1;
  const turns: Array<{ role: 'in' | 'out'; last: number }> = [];
  for (let i = start; i < messages.length; i += 1) {
    const role = messages[i]!.role;
    if (role === 'system') return `a system message at position ${i} (only the first message may be one)`;
    if (role === 'tool' && turns.at(-1)?.role === 'in' && messages[i - 1]?.role === 'tool') {
      turns.at(-1)!.last = i;
      continue;
    }
    const kind = role === 'user' || role === 'tool' ? 'in' : role === 'assistant' ? 'out' : null;
    if (kind === null) return `unknown role ${role}`;
    turns.push({ role: kind, last: i });
  }
  for (let t = 0; t < turns.length; t += 1) {
    if (turns[t]!.role !== (t % 2 === 0 ? 'in' : 'out')) return `turns do not alternate at message ${turns[t]!.last}`;
  }
  if (turns.length % 2 !== 0) return 'an odd number of turns (the line must end with a model turn)';
  return turns.map((t) => ({ last: t.last, model: t.role === 'out' }));
}
