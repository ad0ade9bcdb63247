import { z } from 'zod';
import { RETRY_PREFIX, StateNameSchema, type LlmCall, type Trajectory } from '../agent/trajectory.js';
import { ToolSpecSchema, type ChatMessage, type ToolSpec } from '../policy/types.js';
import { SftSchema } from '../recipe/schema.js';
import { invalidReplies, policyMessages, shapeLine, trainerSettings, withObjectArguments, type LineMessage } from './backends.js';
import { exampleTokenizer, isTiktokenEncoding, lineSpans, type ExampleTokenizer, type LineTokens, type TokenizerInfo } from './tokenizer.js';
import { compareRefs, trajectoryKey, type PoolEntry, type TrajectoryRef } from '../select/pool.js';
import { toolForState } from '../agent/actions.js';

/**
 * SFT examples in OpenAI chat fine-tuning format (design §6): one JSON object per line with
 * `messages` and, for the tools protocol, `tools`. TRL, axolotl, torchtune and LLaMA-Factory read
 * the same `messages` shape.
 *
 * Choices, each forced by a consumer:
 * - Every `content` is a string. Our records keep `content: null` on an assistant message that
 *   only calls a tool; here it becomes ''. OpenAI's fine-tuning format accepts an assistant
 *   message with `tool_calls` and empty content, chat templates (Qwen2.5, Llama 3) skip an empty
 *   content, and a column that is always a string keeps Hugging Face `datasets` (Arrow) from
 *   seeing a mix of string, null and missing. `tool_calls` is kept as recorded.
 * - Every assistant message carries `weight` (OpenAI's per-message training switch, 0 or 1), set
 *   by `sft.train_on`: `assistant` (SWE-Gym's choice) weights every valid assistant turn 1,
 *   replayed history included; `target` weights only the call's completion 1. An invalid reply a
 *   retry call replays (with the retry prompt answering it) is weight 0 under both. Trainers that
 *   do not read `weight` are told the same policy another way (src/sft/backends.ts): TRL gets the
 *   prompt-completion form for `target`, LLaMA-Factory `mask_history`, axolotl reads `weight`;
 *   under `assistant`, TRL and LLaMA-Factory get the line without the invalid replies and their
 *   retry prompts, as they cannot spare one assistant turn.
 * - `tool_calls[].function.arguments` is a JSON string for OpenAI and an object for Hugging Face
 *   chat templates (`sft.tool_arguments`, by backend), which render it with `tojson`.
 */

const Weight = z.union([z.literal(0), z.literal(1)]);

/** A tool call of a training line: OpenAI's shape, arguments a JSON string or (for Hugging Face templates) an object. */
const TrainingToolCallSchema = z.strictObject({
  id: z.string(),
  type: z.literal('function'),
  function: z.strictObject({ name: z.string(), arguments: z.union([z.string(), z.record(z.string(), z.unknown())]) }),
});

/** One message of a training line: the OpenAI fine-tuning chat shape, content always a string. */
export const TrainingMessageSchema = z.discriminatedUnion('role', [
  z.strictObject({ role: z.literal('system'), content: z.string() }),
  z.strictObject({ role: z.literal('user'), content: z.string() }),
  z.strictObject({
    role: z.literal('assistant'),
    content: z.string(),
    tool_calls: z.array(TrainingToolCallSchema).min(1).optional(),
    weight: Weight,
  }),
  z.strictObject({ role: z.literal('tool'), content: z.string(), tool_call_id: z.string() }),
]);
export type TrainingMessage = z.infer<typeof TrainingMessageSchema>;

/**
 * One line of train.jsonl: `{messages, tools?}`, or TRL's conversational prompt-completion form
 * `{prompt, completion, tools?}` (written for TRL with train_on target). Nothing else at the top
 * level: OpenAI rejects unknown keys.
 */
export const SftLineSchema = z
  .union([
    z.strictObject({
      messages: z.array(TrainingMessageSchema).min(2),
      tools: z.array(ToolSpecSchema).min(1).optional(),
    }),
    z.strictObject({
      prompt: z.array(TrainingMessageSchema).min(1),
      completion: z.array(TrainingMessageSchema).length(1),
      tools: z.array(ToolSpecSchema).min(1).optional(),
    }),
  ])
  .superRefine((line, ctx) => {
    const last = 'messages' in line ? line.messages.at(-1) : line.completion[0];
    if (last?.role !== 'assistant' || last.weight !== 1) {
      ctx.addIssue({ code: 'custom', path: ['messages'], message: 'must end with the training target: an assistant message of weight 1' });
    }
  });
export type SftLine = z.infer<typeof SftLineSchema>;

/** A line's messages in order, whichever form it is in. */
export function lineMessages(line: SftLine): TrainingMessage[] {
  return 'messages' in line ? line.messages : [...line.prompt, ...line.completion];
}

export const SftUnitSchema = SftSchema.shape.unit.unwrap();
export type SftUnit = z.infer<typeof SftUnitSchema>;

/**
 * What building examples needs from the recipe's `sft` section, resolved (src/sft/options.ts):
 * `tokenizer` an encoding or a tokenizer folder, `backend` and `tool_arguments` settled. Omitted
 * keys take the defaults of the recipe (tokenizer cl100k_base, backend openai).
 */
export const ExampleOptionsSchema = z.strictObject({
  unit: SftSchema.shape.unit,
  max_tokens: SftSchema.shape.max_tokens,
  tokenizer: z.string().min(1).default('cl100k_base'),
  train_on: SftSchema.shape.train_on,
  backend: SftSchema.shape.backend.unwrap().unwrap().default('openai'),
  tool_arguments: SftSchema.shape.tool_arguments.unwrap().unwrap().nullable().default(null),
});
export type ExampleOptions = z.infer<typeof ExampleOptionsSchema>;
export type ExampleOptionsInput = z.input<typeof ExampleOptionsSchema>;

/** Where an example (or a dropped candidate) comes from. call_index is null for a trajectory-unit example. */
export const ExampleSourceSchema = z.object({
  iteration: z.number().int().nonnegative(),
  instance_id: z.string().min(1),
  sample_index: z.number().int().nonnegative(),
  call_index: z.number().int().nonnegative().nullable(),
  /** The workflow state of the call; null for a trajectory-unit example. */
  state: StateNameSchema.nullable(),
});
export type ExampleSource = z.infer<typeof ExampleSourceSchema>;

export interface SftExample {
  source: ExampleSource;
  /** Tokens of the example (see buildExamples). */
  tokens: number;
  /** Of them, the tokens that carry loss under the options' train_on. */
  trained_tokens: number;
  line: SftLine;
  /**
   * The counts the check after the emit reads for this line instead of counting it again
   * (src/sft/line-counts.ts): `total` is `tokens`, `spans` the line's messages as the check counts
   * them (tool-call arguments as objects).
   */
  counts: LineTokens;
}

/**
 * Why a candidate is not an example:
 * - invalid_call: the call's answer was not a valid action — never trained (the retry call after
 *   it carries the invalid answer as weight-0 context, or for TRL and LLaMA-Factory under
 *   `assistant` leaves it out; its target is the corrected one);
 * - over_max_tokens: the example is longer than `max_tokens`.
 */
export const ExampleDropReasonSchema = z.enum(['invalid_call', 'over_max_tokens']);
export type ExampleDropReason = z.infer<typeof ExampleDropReasonSchema>;

export interface DroppedExample {
  source: ExampleSource;
  reason: ExampleDropReason;
  /** The example's tokens (over_max_tokens), or the invalid call's own (invalid_call). */
  tokens: number;
}

const count = () => z.number().int().nonnegative();

/** Upper bounds (tokens) of the example-length buckets the manifest counts, for the distribution without keeping every length. */
export const LENGTH_BUCKETS = [256, 512, 1024, 2048, 4096, 6144, 8192, 10240, 12288, 16384, 24576, 32768] as const;

export function lengthBucket(tokens: number): number {
  const i = LENGTH_BUCKETS.findIndex((bound) => tokens <= bound);
  return i === -1 ? LENGTH_BUCKETS.length : i;
}

export function emptyHistogram(): number[] {
  return new Array<number>(LENGTH_BUCKETS.length + 1).fill(0);
}

/**
 * Counts of the example stage. The arithmetic:
 * calls - invalid_call = valid_calls;
 * call unit: candidates = valid_calls; trajectory unit: candidates = trajectories with a valid call;
 * candidates - over_max_tokens = examples.
 */
export const ExampleCountsSchema = z.object({
  trajectories: count().describe('Kept trajectories the examples were built from'),
  calls: count().describe('Their LLM calls'),
  invalid_call: count(),
  valid_calls: count(),
  candidates: count(),
  over_max_tokens: count(),
  examples: count(),
  trajectories_with_examples: count(),
  instances_with_examples: count(),
  tokens_total: count().describe('Sum of the examples\' tokens'),
  tokens_mean: z.number().nonnegative().nullable().describe('Mean tokens per example; null without examples'),
  tokens_max: count().nullable().describe('Most tokens of one example; null without examples'),
  trained_tokens_total: count().describe('Sum of the tokens that carry loss (train_on) over the examples'),
  // Defaults: manifests written before these were counted.
  invalid_replies: count().default(0).describe('Invalid replies a retry call replays in the examples (each with the retry prompt answering it): never trained'),
  invalid_replies_left_out: count().default(0).describe('Of them, left out of the lines: TRL and LLaMA-Factory under train_on assistant cannot spare one assistant turn'),
  length_histogram: z.array(count()).length(LENGTH_BUCKETS.length + 1).describe('Examples per length bucket: ≤ each LENGTH_BUCKETS bound, then above the last'),
});
export type ExampleCounts = z.infer<typeof ExampleCountsSchema>;

export interface ExamplesResult {
  options: ExampleOptions;
  /** The tokenizer the examples were counted with. */
  tokenizer: TokenizerInfo;
  /** In (instance_id, iteration, sample_index, call_index) order: the order of train.jsonl. */
  examples: SftExample[];
  dropped: DroppedExample[];
  counts: ExampleCounts;
}

/**
 * SFT examples from kept trajectories.
 *
 * unit `call` (SWE-Gym's): one example per valid LLM call, `[...call.messages, call.completion]`,
 * with `tools: [the state's tool]` when the trajectory used the tools protocol (EditCode calls
 * have none). Its tokens are the call's `tokens.per_call` entry, counted when the trajectory was
 * written (never recounted here): messages + completion under the trajectory's encoding, without
 * the tool schema.
 *
 * unit `trajectory`: one example per trajectory, its valid calls in order, each contributing its
 * messages followed by its completion. Every workflow state has its own system prompt and
 * rebuilds its user message, so calls share no prefix and the line is the plain concatenation:
 * `[system₁, user₁, …, assistant₁(weight 1), system₂, user₂, …, assistant₂(weight 1), …]` — a
 * valid OpenAI chat line (roles in any order, system messages anywhere, the last message an
 * assistant one) whose trainable messages are exactly the valid completions. Chat templates that
 * allow only a leading system message (some Llama templates) will refuse it; Qwen2.5's renders
 * later system messages as ordinary system turns. `tools` is the union of the states' tools in
 * order of first use. Its tokens are the sum of the valid calls' per_call counts: exact for this
 * layout under the per-message count used at write time, and an upper bound for any layout that
 * merged shared prefixes.
 *
 * A recorded count covers the call's messages as sent: for a line that leaves invalid replies
 * out (TRL, LLaMA-Factory under `assistant`) it is an upper bound.
 *
 * Examples above `max_tokens` are dropped and reported. The trajectories' token encoding must be
 * the recipe's `tokenizer` (recounting is not done here), else this throws.
 */
export function buildExamples(trajectories: readonly Trajectory[], optionsInput: ExampleOptionsInput, tokenizerGiven?: ExampleTokenizer): ExamplesResult {
  // An encoding's counts were recorded with the trajectory; a model's tokenizer counts the rendered line here.
  return examplesWith(trajectories, optionsInput, tokenizerGiven, !isTiktokenEncoding(ExampleOptionsSchema.parse(optionsInput).tokenizer));
}

/**
 * How many examples each tokenizer keeps under the same max_tokens (`rft select` prints it): the
 * trajectories' recorded encoding from their counts, any other tokenizer by counting the lines —
 * except a line whose tokenizer bounds its count under max_tokens without tokenizing (tiktoken:
 * its UTF-8 bytes), which is kept uncounted. Only the kept/dropped decision is made, so the
 * numbers are exactly those of building the examples with that tokenizer.
 */
export function keptPerTokenizer(
  trajectories: readonly Trajectory[],
  options: ExampleOptions,
  specs: readonly string[],
): Array<{ tokenizer: string; candidates: number; examples: number; over_max_tokens: number }> {
  const recordedAs = new Set(trajectories.map((t) => t.tokens.encoding));
  return specs.map((spec) => {
    const recount = !(recordedAs.size === 1 && recordedAs.has(spec));
    const tokenizer = exampleTokenizer(spec);
    let candidates = 0;
    let over = 0;
    for (const trajectory of [...trajectories].sort(compareRefs)) {
      checkTokens(trajectory, recount ? null : spec);
      for (const { messages, tools, tokens } of candidateLines(trajectory, options)) {
        candidates += 1;
        let n = tokens;
        if (recount) {
          const line = makeLine(messages, tools, options);
          const written = lineMessages(line) as LineMessage[];
          n = tokenizer.upperBound && tokenizer.upperBound(written, tools) <= options.max_tokens ? 0 : tokenizer.count(written, tools).total;
        }
        if (n > options.max_tokens) over += 1;
      }
    }
    return { tokenizer: spec, candidates, examples: candidates - over, over_max_tokens: over };
  });
}

/** The candidate lines of a trajectory (its valid calls, or all of them as one line), before shaping, with their recorded tokens. */
function candidateLines(trajectory: Trajectory, options: Pick<ExampleOptions, 'unit'>): Array<{ source: ExampleSource; messages: TrainingMessage[]; tools: ToolSpec[]; tokens: number }> {
  const valid = trajectory.calls.flatMap((call, index) => (call.invalid === null ? [{ call, index, tokens: trajectory.tokens.per_call[index]! }] : []));
  if (options.unit === 'call') {
    return valid.map(({ call, index, tokens }) => {
      const tool = trajectory.protocol === 'tools' ? toolForState(call.state) : null;
      return { source: sourceOf(trajectory, index, call), messages: callMessages(call, index, trajectory), tools: tool ? [tool] : [], tokens };
    });
  }
  if (valid.length === 0) return [];
  const tools = new Map<string, ToolSpec>();
  if (trajectory.protocol === 'tools') {
    for (const { call } of valid) {
      const tool = toolForState(call.state);
      if (tool && !tools.has(tool.function.name)) tools.set(tool.function.name, tool);
    }
  }
  return [{ source: sourceOf(trajectory, null, null), messages: valid.flatMap(({ call, index }) => callMessages(call, index, trajectory)), tools: [...tools.values()], tokens: valid.reduce((sum, v) => sum + v.tokens, 0) }];
}

function examplesWith(trajectories: readonly Trajectory[], optionsInput: ExampleOptionsInput, tokenizerGiven: ExampleTokenizer | undefined, recount: boolean): ExamplesResult {
  const options = ExampleOptionsSchema.parse(optionsInput);
  const tokenizer = tokenizerGiven ?? exampleTokenizer(options.tokenizer);
  if (tokenizer.info.name !== options.tokenizer) throw new Error(`the tokenizer given is ${tokenizer.info.name}, the options say ${options.tokenizer}`);
  const recorded = !recount;
  const ordered = [...trajectories].sort(compareRefs);
  const examples: SftExample[] = [];
  const dropped: DroppedExample[] = [];
  let calls = 0;
  let candidates = 0;
  let invalidReplyCount = 0;
  let invalidLeftOut = 0;
  const seen = new Set<string>();

  /**
   * An example, or null when over max_tokens (then reported as dropped). Counted as written for
   * the backend (policy weights set, invalid replies left out where it cannot spare them), and
   * only what is needed: with recorded counts the line's total is the record's, so only the
   * trained messages' spans are counted (the tokenizer's spans shortcut: tiktoken counts the
   * assistant messages alone, each distinct text once through its cache).
   */
  const consider = (source: ExampleSource, messages: TrainingMessage[], tools: ToolSpec[], recordedTokens: number): SftExample | null => {
    const line = makeLine(messages, tools, options);
    const written = lineMessages(line) as LineMessage[];
    const counted = recorded ? null : tokenizer.count(written, tools);
    const tokens = counted === null ? recordedTokens : counted.total;
    if (tokens > options.max_tokens) {
      dropped.push({ source, reason: 'over_max_tokens', tokens });
      return null;
    }
    const spans = counted === null ? lineSpans(tokenizer, written, tools) : counted.spans;
    const trained = policyMessages(written, options.train_on).reduce((sum, i) => sum + spans[i]!, 0);
    const replayed = invalidReplies(messages as LineMessage[]).length;
    invalidReplyCount += replayed;
    invalidLeftOut += replayed - invalidReplies(written).length;
    // The check counts arguments as objects: the same messages unless a tool call's are a string.
    const checked = withObjectArguments(written);
    const checkSpans = checked === written || !written.some((m) => m.tool_calls?.some((c) => typeof c.function.arguments === 'string')) ? spans : lineSpans(tokenizer, checked, tools);
    return { source, tokens, trained_tokens: trained, line, counts: { total: tokens, spans: checkSpans } };
  };

  for (const trajectory of ordered) {
    const key = trajectoryKey(trajectory);
    if (seen.has(key)) throw new Error(`trajectory ${describe(trajectory)} is given twice`);
    seen.add(key);
    checkTokens(trajectory, recorded ? options.tokenizer : null);
    calls += trajectory.calls.length;

    trajectory.calls.forEach((call, index) => {
      if (call.invalid !== null) dropped.push({ source: sourceOf(trajectory, index, call), reason: 'invalid_call', tokens: trajectory.tokens.per_call[index]! });
    });
    for (const { source, messages, tools, tokens } of candidateLines(trajectory, options)) {
      candidates += 1;
      const example = consider(source, messages, tools, tokens);
      if (example) examples.push(example);
    }
  }

  examples.sort((a, b) => compareSources(a.source, b.source));
  dropped.sort((a, b) => compareSources(a.source, b.source));
  const invalid = dropped.filter((d) => d.reason === 'invalid_call').length;
  const tokens = examples.map((e) => e.tokens);
  const total = tokens.reduce((a, b) => a + b, 0);
  const histogram = emptyHistogram();
  for (const n of tokens) histogram[lengthBucket(n)]! += 1;
  const counts = ExampleCountsSchema.parse({
    trajectories: ordered.length,
    calls,
    invalid_call: invalid,
    valid_calls: calls - invalid,
    candidates,
    over_max_tokens: dropped.length - invalid,
    examples: examples.length,
    trajectories_with_examples: new Set(examples.map((e) => trajectoryKey(e.source))).size,
    instances_with_examples: new Set(examples.map((e) => e.source.instance_id)).size,
    tokens_total: total,
    tokens_mean: tokens.length === 0 ? null : total / tokens.length,
    tokens_max: tokens.length === 0 ? null : Math.max(...tokens),
    trained_tokens_total: examples.reduce((sum, e) => sum + e.trained_tokens, 0),
    invalid_replies: invalidReplyCount,
    invalid_replies_left_out: invalidLeftOut,
    length_histogram: histogram,
  });
  return { options, tokenizer: tokenizer.info, examples, dropped, counts };
}

/** The tool-argument type of resolved options: as set, else by backend (string for OpenAI, object for Hugging Face templates). */
export function toolArgumentsOf(options: Pick<ExampleOptions, 'backend' | 'tool_arguments'>): 'string' | 'object' {
  return options.tool_arguments ?? (options.backend === 'openai' ? 'string' : 'object');
}

/** Examples per kept trajectory, by trajectoryKey (for the cap comparison). */
export function examplesPerTrajectory(result: Pick<ExamplesResult, 'examples'>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const example of result.examples) {
    const key = trajectoryKey(example.source);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** One iteration's selection, for accumulate: its kept entries and the trajectories they name. */
export interface IterationKept {
  iteration: number;
  kept: readonly PoolEntry[];
  /** The iteration's trajectories (all of them, or at least the kept ones). */
  trajectories: readonly Trajectory[];
}

/**
 * The kept trajectories of iterations 0..k merged (the recipe's `sft.accumulate`): each
 * iteration is selected on its own (its cap applies to its own samples, so an instance can give
 * up to cap × (k+1) trajectories), then the kept trajectories are put together, in
 * (instance_id, iteration, sample_index) order. With one iteration this is that iteration's kept
 * trajectories. Throws when an iteration appears twice or a kept entry has no trajectory.
 */
export function accumulate(perIteration: readonly IterationKept[]): Trajectory[] {
  const iterations = new Set<number>();
  const merged: Trajectory[] = [];
  for (const { iteration, kept, trajectories } of perIteration) {
    if (iterations.has(iteration)) throw new Error(`iteration ${iteration} is given twice`);
    iterations.add(iteration);
    const byKey = new Map(trajectories.filter((t) => t.iteration === iteration).map((t) => [trajectoryKey(t), t] as const));
    for (const entry of kept) {
      if (entry.iteration !== iteration) throw new Error(`a kept entry of iteration ${entry.iteration} is listed under iteration ${iteration}`);
      const trajectory = byKey.get(trajectoryKey(entry));
      if (!trajectory) throw new Error(`kept trajectory ${describe(entry)} is not among the trajectories of iteration ${iteration}`);
      merged.push(trajectory);
    }
  }
  return merged.sort(compareRefs);
}

/** Orders sources like train.jsonl: instance, iteration, sample, then call (a whole trajectory first). */
export function compareSources(a: ExampleSource, b: ExampleSource): number {
  return compareRefs(a, b) || (a.call_index ?? -1) - (b.call_index ?? -1);
}

function sourceOf(trajectory: Trajectory, callIndex: number | null, call: LlmCall | null): ExampleSource {
  return {
    iteration: trajectory.iteration,
    instance_id: trajectory.instance_id,
    sample_index: trajectory.sample_index,
    call_index: callIndex,
    state: call?.state ?? null,
  };
}

function describe(ref: TrajectoryRef): string {
  return `${ref.instance_id} #${ref.sample_index} (iteration ${ref.iteration})`;
}

/** A trajectory's per-call counts must be complete, and (when they are the example's count) of the recipe's encoding. */
function checkTokens(trajectory: Trajectory, encoding: string | null): void {
  if (encoding !== null && trajectory.tokens.encoding !== encoding) {
    throw new Error(
      `trajectory ${describe(trajectory)} counted its tokens with ${trajectory.tokens.encoding}, the recipe says ${encoding}; tokens are counted once, when a trajectory is written`,
    );
  }
  if (trajectory.tokens.per_call.length !== trajectory.calls.length) {
    throw new Error(`trajectory ${describe(trajectory)} has ${trajectory.calls.length} calls but ${trajectory.tokens.per_call.length} per-call token counts`);
  }
}

/**
 * A call as training messages: its prompt as context (assistant turns weight 0), its completion
 * the target. A retry call's prompt ends with the visit's invalid replies, each answered by a
 * retry prompt; the backends find them by that prompt (src/sft/backends.ts), so their number must
 * be the record's (the calls just before this one that it retries), else the line is refused.
 */
function callMessages(call: LlmCall, index: number, trajectory: Trajectory): TrainingMessage[] {
  if (call.completion.role !== 'assistant') {
    throw new Error(`trajectory ${describe(trajectory)}: a completion must be an assistant message, not ${call.completion.role}`);
  }
  const messages = [...call.messages.map((m) => trainingMessage(m, 0)), trainingMessage(call.completion, 1)];
  let retried = 0;
  for (let j = index; j > 0 && trajectory.calls[j]!.retry && trajectory.calls[j - 1]!.invalid !== null; j -= 1) retried += 1;
  const found = invalidReplies(messages as LineMessage[]).length;
  if (found !== retried) {
    throw new Error(
      `trajectory ${describe(trajectory)}, call ${index}: its prompt holds ${found} replies answered by a retry prompt ("${RETRY_PREFIX} …"), but it retries ${retried} invalid call(s) before it`,
    );
  }
  return messages;
}

/** Rebuilds a message with only the fields of the training format (content made a string). */
function trainingMessage(message: ChatMessage, weight: 0 | 1): TrainingMessage {
  switch (message.role) {
    case 'assistant': {
      const calls = (message.tool_calls ?? []).map((c) => ({
        id: c.id,
        type: c.type,
        function: { name: c.function.name, arguments: c.function.arguments },
      }));
      return { role: 'assistant', content: message.content ?? '', ...(calls.length > 0 ? { tool_calls: calls } : {}), weight };
    }
    case 'tool':
      return { role: 'tool', content: message.content, tool_call_id: message.tool_call_id };
    default:
      return { role: message.role, content: message.content };
  }
}

/** The line as the options' backend reads it: policy weights, argument type, and form (src/sft/backends.ts). */
function makeLine(messages: TrainingMessage[], tools: ToolSpec[], options: ExampleOptions): SftLine {
  const shaped = shapeLine({ messages: messages as LineMessage[], tools }, options.backend, options.train_on, toolArgumentsOf(options));
  return SftLineSchema.parse(shaped);
}

/** The form a backend is given under a policy (for the manifest). */
export function lineFormOf(options: Pick<ExampleOptions, 'backend' | 'train_on'>): 'messages' | 'prompt_completion' {
  return trainerSettings(options.backend, options.train_on).form;
}
