import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { Template } from '@huggingface/jinja';
import type { Tokenizer } from '@huggingface/tokenizers';
import { z } from 'zod';
import { boundedTokenCount } from '../agent/tokens.js';
import { CountCache } from '../util/tokens.js';

// Loaded when a Hugging Face tokenizer is first built (their CommonJS builds, synchronously):
// commands that only read a run (status, show) name this module's schemas but never tokenize.
const require = createRequire(import.meta.url);
const jinja = (): typeof import('@huggingface/jinja') => require('@huggingface/jinja') as typeof import('@huggingface/jinja');
const tokenizers = (): typeof import('@huggingface/tokenizers') => require('@huggingface/tokenizers') as typeof import('@huggingface/tokenizers');

/**
 * Token counting of SFT lines "as the trainer will": for a Hugging Face model, the text its chat
 * template renders (tools included) tokenized by its own tokenizer — what SWE-Gym measured with
 * `len(tokenizer.apply_chat_template(messages))`. For OpenAI models, the js-tiktoken encoding
 * with the per-message overhead the agent uses when it records a trajectory.
 *
 * Libraries, not hand-written code: @huggingface/tokenizers (tokenizer.json, pure JS) and
 * @huggingface/jinja (the chat template). Nothing is fetched: a tokenizer is a local folder.
 */

export const TIKTOKEN_ENCODINGS = ['cl100k_base', 'o200k_base'] as const;
export type TiktokenName = (typeof TIKTOKEN_ENCODINGS)[number];

export function isTiktokenEncoding(spec: string | null): spec is TiktokenName {
  return spec !== null && (TIKTOKEN_ENCODINGS as readonly string[]).includes(spec);
}

/** The encoding trajectories are counted with while sampling (the agent's budget): tiktoken always. */
export function samplingEncoding(tokenizer: string | null): TiktokenName {
  return isTiktokenEncoding(tokenizer) ? tokenizer : 'cl100k_base';
}

export const TokenizerInfoSchema = z.object({
  /** As the recipe names it: an encoding name, or the tokenizer folder. */
  name: z.string().min(1),
  kind: z.enum(['tiktoken', 'huggingface']),
  /** sha256 of tokenizer.json and the chat template (null for tiktoken). */
  sha256: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
  /** Whether the chat template marks assistant spans with {% generation %} (TRL's assistant_only_loss needs it); null for tiktoken. */
  generation_markers: z.boolean().nullable(),
});
export type TokenizerInfo = z.infer<typeof TokenizerInfoSchema>;

/** A message as a counter sees it: the training line's shape, arguments a string or an object. */
export interface CountMessage {
  role: string;
  content: string;
  tool_calls?: ReadonlyArray<{ function: { name: string; arguments: unknown } }>;
}

export interface LineTokens {
  /** Tokens of the whole rendered line. */
  total: number;
  /** Per message: the tokens of its trainable span (assistant messages), 0 for the others. */
  spans: number[];
}

export interface ExampleTokenizer {
  readonly info: TokenizerInfo;
  count(messages: readonly CountMessage[], tools?: readonly unknown[]): LineTokens;
  /** count(…).spans alone, where that is cheaper than the whole count (tiktoken: the assistant messages only). */
  spans?(messages: readonly CountMessage[], tools?: readonly unknown[]): number[];
  /** A bound count(…).total never exceeds, found without tokenizing; absent when the tokenizer has none. */
  upperBound?(messages: readonly CountMessage[], tools?: readonly unknown[]): number;
}

/** The spans of a line: the tokenizer's own shortcut when it has one, else its whole count's. */
export function lineSpans(tokenizer: ExampleTokenizer, messages: readonly CountMessage[], tools?: readonly unknown[]): number[] {
  return tokenizer.spans ? tokenizer.spans(messages, tools) : tokenizer.count(messages, tools).spans;
}

const argumentsText = (args: unknown) => (typeof args === 'string' ? args : JSON.stringify(args));

/**
 * tiktoken: 4 tokens per message plus its content and tool calls (name + arguments), the count
 * the agent records per call; the tool schema is not counted (OpenAI does not say how it is).
 */
export class TiktokenExampleTokenizer implements ExampleTokenizer {
  readonly info: TokenizerInfo;
  constructor(readonly encoding: TiktokenName) {
    this.info = { name: encoding, kind: 'tiktoken', sha256: null, generation_markers: null };
  }

  /** A message's tokens: 4, its content and its tool calls (name + arguments). Lines are sums of these. */
  messageTokens(m: CountMessage): number {
    let n = 4 + boundedTokenCount(m.content, this.encoding);
    if (m.role === 'assistant') for (const c of m.tool_calls ?? []) n += boundedTokenCount(c.function.name + argumentsText(c.function.arguments), this.encoding);
    return n;
  }

  count(messages: readonly CountMessage[]): LineTokens {
    const per = messages.map((m) => this.messageTokens(m));
    return { total: per.reduce((a, b) => a + b, 0), spans: messages.map((m, i) => (m.role === 'assistant' ? per[i]! : 0)) };
  }

  /** Only the assistant messages are counted: a line's spans never need its prompts' tokens. */
  spans(messages: readonly CountMessage[]): number[] {
    return messages.map((m) => (m.role === 'assistant' ? this.messageTokens(m) : 0));
  }

  /**
   * Every token of a byte-pair encoding is at least one byte of UTF-8 (and a long run's estimate,
   * one per 4 characters, is below its bytes): the bytes bound the count, for free.
   */
  upperBound(messages: readonly CountMessage[]): number {
    let n = 0;
    for (const m of messages) {
      n += 4 + Buffer.byteLength(m.content, 'utf8');
      if (m.role === 'assistant') for (const c of m.tool_calls ?? []) n += Buffer.byteLength(c.function.name + argumentsText(c.function.arguments), 'utf8');
    }
    return n;
  }
}

/** A special token of tokenizer_config.json: a string or an AddedToken object. */
function tokenText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') return (value as { content: string }).content;
  return '';
}

/**
 * A Hugging Face tokenizer and chat template. The trainable span of assistant message i is what
 * the template adds after the prompt of the first i messages with the generation prompt: the
 * completion as TRL's prompt-completion form and LLaMA-Factory cut it (the assistant header is
 * the prompt's; the content, tool calls and end-of-turn token are the span). Spans are tokenized
 * apart from the rest, which is exact where the template puts a special token or a newline
 * before them (ChatML: Qwen2.5, Qwen3).
 */
export class HfExampleTokenizer implements ExampleTokenizer {
  readonly info: TokenizerInfo;
  private readonly template: Template;
  private readonly specials: Record<string, string>;
  private splitter: RegExp | null;
  private checksLeft = 16;
  private readonly pieces = new CountCache((text) => this.wholeTokens(text));

  constructor(
    name: string,
    private readonly tokenizer: Tokenizer,
    templateText: string,
    config: Record<string, unknown>,
    sha256: string,
    addedTokens: readonly AddedToken[] = [],
  ) {
    this.splitter = addedTokenSplitter(addedTokens);
    this.template = new (jinja().Template)(templateText);
    this.specials = Object.fromEntries(['bos_token', 'eos_token', 'pad_token', 'unk_token'].map((k) => [k, tokenText(config[k])]));
    this.info = { name, kind: 'huggingface', sha256, generation_markers: /\{%-?\s*generation\s*-?%\}/.test(templateText) };
  }

  render(messages: readonly CountMessage[], tools: readonly unknown[] | undefined, addGenerationPrompt: boolean): string {
    return this.template.render({
      ...this.specials,
      messages,
      ...(tools && tools.length > 0 ? { tools } : {}),
      add_generation_prompt: addGenerationPrompt,
    });
  }

  /**
   * Tokens of a text. Where the tokenizer splits its added tokens out before anything else (none
   * strips the whitespace beside it or is normalised: tokenizer.json says so), the count is the
   * number of added tokens plus the counts of the pieces between them, each piece counted apart;
   * a chat template puts such tokens around every turn (ChatML: <|im_start|>, <|im_end|>), so a
   * piece is one message's turn, and a message repeated across examples (a state's system prompt,
   * replayed history) is tokenized once. The first texts are also counted whole and compared: a
   * difference turns piecewise counting off for good (detected, not assumed).
   */
  tokens(text: string): number {
    if (text.length === 0) return 0;
    if (this.splitter === null) return this.wholeTokens(text);
    const pieces = this.piecewiseTokens(text);
    if (this.checksLeft > 0) {
      this.checksLeft -= 1;
      const whole = this.wholeTokens(text);
      if (whole !== pieces) {
        this.splitter = null;
        return whole;
      }
    }
    return pieces;
  }

  /** Whether counts are (still) made piece by piece between added tokens. */
  get piecewise(): boolean {
    return this.splitter !== null;
  }

  private wholeTokens(text: string): number {
    return this.tokenizer.encode(text, { add_special_tokens: false }).ids.length;
  }

  private piecewiseTokens(text: string): number {
    // split with a capturing group: even indexes are the pieces, odd ones the added tokens
    const parts = text.split(this.splitter!);
    let n = (parts.length - 1) / 2;
    for (let i = 0; i < parts.length; i += 2) n += this.pieces.count(parts[i]!);
    return n;
  }

  count(messages: readonly CountMessage[], tools?: readonly unknown[]): LineTokens {
    const full = this.render(messages, tools, false);
    const spans = messages.map((m, i) => {
      if (m.role !== 'assistant') return 0;
      const prompt = this.render(messages.slice(0, i), tools, true);
      const upTo = i === messages.length - 1 ? full : this.render(messages.slice(0, i + 1), tools, false);
      return upTo.startsWith(prompt) ? this.tokens(upTo.slice(prompt.length)) : this.tokens(upTo) - this.tokens(prompt);
    });
    return { total: this.tokens(full), spans };
  }
}

/** An entry of tokenizer.json's added_tokens. */
export interface AddedToken {
  content: string;
  lstrip?: boolean;
  rstrip?: boolean;
  single_word?: boolean;
  normalized?: boolean;
}

/**
 * A pattern matching the added tokens (longest first, captured), when each is matched verbatim and
 * split out before normalisation with nothing stripped beside it; else null (count texts whole).
 */
export function addedTokenSplitter(added: readonly AddedToken[]): RegExp | null {
  if (added.length === 0 || added.some((t) => t.lstrip || t.rstrip || t.single_word || t.normalized || t.content === '')) return null;
  const escaped = [...new Set(added.map((t) => t.content))].sort((a, b) => b.length - a.length).map((c) => c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`(${escaped.join('|')})`);
}

export class TokenizerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TokenizerError';
  }
}

function readJson(file: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new TokenizerError(`${file}: ${(err as Error).message}`);
  }
}

/** The chat template of a tokenizer folder: tokenizer_config.json's chat_template (the default one of a list), else chat_template.jinja. */
function chatTemplateOf(dir: string, config: Record<string, unknown>): string {
  const inConfig = config.chat_template;
  if (typeof inConfig === 'string') return inConfig;
  if (Array.isArray(inConfig)) {
    const named = inConfig as Array<{ name?: unknown; template?: unknown }>;
    const found = named.find((t) => t.name === 'default') ?? named[0];
    if (typeof found?.template === 'string') return found.template;
  }
  const jinja = path.join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) return readFileSync(jinja, 'utf8');
  throw new TokenizerError(`${dir}: no chat template (tokenizer_config.json has no chat_template and there is no chat_template.jinja)`);
}

/**
 * Loads a local Hugging Face tokenizer folder (tokenizer.json + tokenizer_config.json).
 * `piecewise: false` counts every text whole (the reference the piecewise counts are tested against).
 */
export function loadHfTokenizer(dir: string, options: { piecewise?: boolean } = {}): HfExampleTokenizer {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new TokenizerError(`tokenizer ${dir}: not an encoding (${TIKTOKEN_ENCODINGS.join(', ')}) and not a folder; give an encoding name or the folder of a Hugging Face tokenizer (with tokenizer.json and tokenizer_config.json)`);
  }
  for (const file of ['tokenizer.json', 'tokenizer_config.json']) {
    if (!existsSync(path.join(dir, file))) throw new TokenizerError(`tokenizer ${dir}: ${file} is missing (a Hugging Face tokenizer folder has tokenizer.json and tokenizer_config.json)`);
  }
  const jsonText = readFileSync(path.join(dir, 'tokenizer.json'));
  const tokenizerJson = JSON.parse(jsonText.toString('utf8')) as { added_tokens?: AddedToken[] };
  const config = readJson(path.join(dir, 'tokenizer_config.json'));
  const template = chatTemplateOf(dir, config);
  const sha256 = createHash('sha256').update(jsonText).update('\0').update(template).digest('hex');
  const added = options.piecewise !== false && Array.isArray(tokenizerJson.added_tokens) ? tokenizerJson.added_tokens : [];
  return new HfExampleTokenizer(dir, new (tokenizers().Tokenizer)(tokenizerJson, config), template, config, sha256, added);
}

const loaded = new Map<string, ExampleTokenizer>();

/** The counter a recipe's `sft.tokenizer` (resolved) names; Hugging Face folders are loaded once per process. */
export function exampleTokenizer(spec: string): ExampleTokenizer {
  let found = loaded.get(spec);
  if (!found) {
    found = isTiktokenEncoding(spec) ? new TiktokenExampleTokenizer(spec) : loadHfTokenizer(spec);
    loaded.set(spec, found);
  }
  return found;
}

/**
 * The tokenizer a recipe counts with: sft.tokenizer if set (a folder relative to the recipe's
 * folder), else the base model's folder when it is a local Qwen tokenizer folder (SWE-Gym counted
 * with the model's own tokenizer), else cl100k_base.
 */
export function resolveTokenizerSpec(sft: { tokenizer: string | null }, baseModel: string | null, baseDir: string): string {
  const local = (p: string) => (path.isAbsolute(p) ? p : path.resolve(baseDir, p));
  if (sft.tokenizer !== null) return isTiktokenEncoding(sft.tokenizer) ? sft.tokenizer : local(sft.tokenizer);
  if (baseModel !== null && /qwen/i.test(baseModel)) {
    const dir = local(baseModel);
    if (existsSync(path.join(dir, 'tokenizer.json')) && existsSync(path.join(dir, 'tokenizer_config.json'))) return dir;
  }
  return 'cl100k_base';
}
