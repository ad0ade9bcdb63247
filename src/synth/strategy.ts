import type { Candidate, FunctionTarget } from './candidate.js';

/**
 * What a bug strategy is given and gives back (design §13). A strategy only proposes: the pipeline
 * validates every candidate in Docker, so a strategy never runs tests and never touches an image.
 */

/** The repository of one environment at its base commit, read-only. */
export interface RepoView {
  /** Text of a file at the base commit (path relative to the repository root, POSIX separators). */
  readFile(path: string): Promise<string>;
  /** Runs git in the repository (read-only commands), resolving to stdout; rejects when the image has no usable history. */
  git(args: readonly string[]): Promise<string>;
}

/** One chat message to the recipe's policy endpoint (OpenAI chat format). */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** The recipe's policy endpoint, reduced to the one call synthesis makes. */
export interface ChatEndpoint {
  complete(messages: readonly ChatMessage[], options: { seed: number; temperature: number }): Promise<string>;
}

export interface StrategyInput {
  repo: RepoView;
  /** Functions some passing test executes, in a stable order (the pipeline sorts them). */
  targets: readonly FunctionTarget[];
  /** The same seed gives the same candidates in the same order. */
  seed: number;
  /** At most this many candidates. */
  limit: number;
  /** Absent when no endpoint was given; strategies that need one then yield nothing. */
  llm?: ChatEndpoint;
}

export interface Strategy {
  /** The name `--strategies` takes and provenance records (`procedural`, `llm_rewrite`, `history_revert`). */
  readonly name: string;
  candidates(input: StrategyInput): AsyncIterable<Candidate>;
}
