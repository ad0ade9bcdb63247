import OpenAI from 'openai';
import { z } from 'zod';
import { isContextLengthRefusal, redactKey } from '../policy/client.js';
import type { ChatMessage } from '../policy/types.js';
import { NO, YES } from './render.js';

/**
 * The client side of the learned verifier: one chat request for ONE token with logprobs, to any
 * OpenAI-compatible endpoint (vLLM: `logprobs: true, top_logprobs: 20`, the most it serves by
 * default), and the candidate's score read from the answer's top logprobs.
 *
 * The score (documented in the README): with P(t) = exp(logprob) of each token t among the first
 * generated token's top logprobs, P_YES sums the tokens that read YES once surrounding spaces and
 * angle brackets are dropped, in any case ("YES", " Yes", "<YES>", "yes"), and P_NO likewise for
 * NO; score = P_YES / (P_YES + P_NO). Normalising over the two answers removes the mass the model
 * puts on other tokens (a newline, a quote), which would otherwise make a sure-but-chatty verifier
 * look unsure; a variant missing from the top list counts as 0. Neither answer among the top
 * logprobs, no logprobs at all, or an answer that is not a chat completion: a VerifierAnswerError,
 * never a score (nothing is recorded for that candidate).
 */

/** How many top logprobs are asked for: vLLM's default --max-logprobs and OpenAI's limit are 20. */
export const TOP_LOGPROBS = 20;

export interface VerifierScore {
  /** P_YES / (P_YES + P_NO). */
  score: number;
  p_yes: number;
  p_no: number;
  /** The generated token. */
  token: string;
}

export interface VerifierClient {
  readonly model: string;
  score(messages: ChatMessage[]): Promise<VerifierScore>;
}

/** The endpoint answered, but not with something a score can be read from. Not retried: a wrong endpoint stays wrong. */
export class VerifierAnswerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VerifierAnswerError';
  }
}

/** The endpoint failed (after retries) or refused the request. */
export class VerifierEndpointError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VerifierEndpointError';
  }
}

/** The endpoint refused the prompt as longer than the model's context (HTTP 400): a shorter rendering may pass. */
export class VerifierContextLengthError extends VerifierEndpointError {
  constructor(message: string) {
    super(message);
    this.name = 'VerifierContextLengthError';
  }
}

const TopSchema = z.object({ token: z.string(), logprob: z.number() });
const AnswerSchema = z.object({
  choices: z
    .array(
      z.object({
        message: z.object({ content: z.string().nullish() }).nullish(),
        logprobs: z
          .object({ content: z.array(TopSchema.extend({ top_logprobs: z.array(TopSchema).nullish() })).nullish() })
          .nullish(),
      }),
    )
    .min(1, 'no choices'),
});

/** Which answer a token reads as, if any. */
export function answerOf(token: string): 'YES' | 'NO' | null {
  const t = token.trim().replace(/^<+|>+$/g, '').trim().toUpperCase();
  return t === YES ? 'YES' : t === NO ? 'NO' : null;
}

/** The score of one answer (pure: the parsed JSON of a chat completion). Throws VerifierAnswerError. */
export function scoreFromAnswer(raw: unknown): VerifierScore {
  const parsed = AnswerSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new VerifierAnswerError(`the verifier endpoint answered with something that is not a chat completion (${issue.path.map(String).join('.') || 'body'}: ${issue.message})`);
  }
  const first = parsed.data.choices[0]!.logprobs?.content?.[0];
  if (!first) {
    throw new VerifierAnswerError(
      'the verifier endpoint answered without logprobs: it must return `logprobs.content[0].top_logprobs` for a request with `logprobs: true, top_logprobs: N` (vLLM and the OpenAI API do)',
    );
  }
  // The generated token is listed too (some servers leave it out of top_logprobs); count each token once.
  const seen = new Map<string, number>();
  for (const t of [first, ...(first.top_logprobs ?? [])]) if (!seen.has(t.token)) seen.set(t.token, t.logprob);
  let pYes = 0;
  let pNo = 0;
  for (const [token, logprob] of seen) {
    if (!Number.isFinite(logprob) || logprob > 1e-6) throw new VerifierAnswerError(`the verifier endpoint gave token ${JSON.stringify(token)} the logprob ${logprob}, which is no log-probability`);
    const answer = answerOf(token);
    if (answer === 'YES') pYes += Math.exp(logprob);
    if (answer === 'NO') pNo += Math.exp(logprob);
  }
  if (pYes + pNo <= 0) {
    const shown = [...seen.keys()].slice(0, 8).map((t) => JSON.stringify(t)).join(', ');
    throw new VerifierAnswerError(`neither YES nor NO is among the verifier's top logprobs (${shown}): is the model a verifier trained on \`rft verifier data\`?`);
  }
  return { score: pYes / (pYes + pNo), p_yes: pYes, p_no: pNo, token: first.token };
}

export interface OpenAiVerifierOptions {
  baseUrl: string;
  model: string;
  /** The key itself (read by the caller from the env variable the recipe names); redacted from every error. */
  apiKey: string | null;
  timeoutMs: number;
  maxRetries: number;
}

/** A verifier at an OpenAI-compatible endpoint. Retries (429, 5xx, timeouts, dropped connections) are the SDK's. */
export class OpenAiVerifier implements VerifierClient {
  private readonly client: OpenAI;

  constructor(private readonly options: OpenAiVerifierOptions) {
    this.client = new OpenAI({ baseURL: options.baseUrl, apiKey: options.apiKey ?? 'EMPTY', timeout: options.timeoutMs, maxRetries: options.maxRetries });
  }

  get model(): string {
    return this.options.model;
  }

  async score(messages: ChatMessage[]): Promise<VerifierScore> {
    let raw: unknown;
    try {
      raw = await this.client.chat.completions.create({
        model: this.options.model,
        messages: messages as OpenAI.Chat.ChatCompletionMessageParam[],
        max_tokens: 1,
        temperature: 0,
        logprobs: true,
        top_logprobs: TOP_LOGPROBS,
      });
    } catch (err) {
      const status = err instanceof OpenAI.APIError && typeof err.status === 'number' ? `HTTP ${err.status}: ` : '';
      const text = err instanceof SyntaxError ? 'answered with a body that is not JSON' : `${status}${(err as Error).message}`;
      const Refused = err instanceof OpenAI.APIError && isContextLengthRefusal(err) ? VerifierContextLengthError : VerifierEndpointError;
      throw new Refused(redactKey(`verifier ${this.options.model} at ${this.options.baseUrl}: ${text.replace(/\s+/g, ' ').slice(0, 400)}`, this.options.apiKey));
    }
    try {
      return scoreFromAnswer(raw);
    } catch (err) {
      if (err instanceof VerifierAnswerError) throw new VerifierAnswerError(redactKey(`verifier ${this.options.model} at ${this.options.baseUrl}: ${err.message}`, this.options.apiKey));
      throw err;
    }
  }
}
