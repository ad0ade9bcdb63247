import { createRequire } from 'node:module';
import type { Tiktoken, TiktokenEncoding } from 'js-tiktoken';
import { TextLru } from './text-lru.js';

// Loaded when an encoding is first needed (its CommonJS build, synchronously): its ranks are
// megabytes of text to parse, which commands that only read a run never need.
const require = createRequire(import.meta.url);
const getEncoding = (encoding: TiktokenEncoding): Tiktoken => (require('js-tiktoken') as typeof import('js-tiktoken')).getEncoding(encoding);

const encoders = new Map<TiktokenEncoding, Tiktoken>();

/** The encoder of an encoding, built once per process (its ranks are megabytes to parse). */
export function encoder(encoding: TiktokenEncoding): Tiktoken {
  let found = encoders.get(encoding);
  if (!found) {
    found = getEncoding(encoding);
    encoders.set(encoding, found);
  }
  return found;
}

/**
 * Counts of texts under one counting function, remembering the counts of recent texts: a text
 * counted before is not counted again. The cache holds at most `maxChars` characters of text
 * (least recently used first out), so memory stays bounded.
 */
export class CountCache {
  private readonly cache: TextLru<number>;
  hits = 0;
  misses = 0;

  constructor(
    private readonly countText: (text: string) => number,
    maxChars = 16 * 1024 * 1024,
  ) {
    this.cache = new TextLru<number>(maxChars);
  }

  count(text: string): number {
    if (text.length === 0) return 0;
    const known = this.cache.get(text);
    if (known !== undefined) {
      this.hits += 1;
      return known;
    }
    this.misses += 1;
    const n = this.countText(text);
    this.cache.set(text, n);
    return n;
  }
}

/**
 * Counts tokens, remembering the counts of recent texts (a CountCache of 16 M characters by
 * default). js-tiktoken is pure JavaScript (~1 MB of text per CPU-second) and runs on the loop's
 * only thread, while most of what a trajectory records was counted before: every call re-sends its
 * state's system prompt, and the samples of one task share their first prompts (bench/RESULTS.md,
 * benchmark 5).
 */
export class TokenCounter extends CountCache {
  constructor(
    readonly encoding: TiktokenEncoding = 'cl100k_base',
    maxChars = 16 * 1024 * 1024,
  ) {
    super((text) => encoder(encoding).encode(text, 'all').length, maxChars);
  }
}

const counters = new Map<TiktokenEncoding, TokenCounter>();

/** Tokens in a text under a js-tiktoken encoding (an approximation for non-OpenAI models). */
export function countTokens(text: string, encoding: TiktokenEncoding = 'cl100k_base'): number {
  let counter = counters.get(encoding);
  if (!counter) counters.set(encoding, (counter = new TokenCounter(encoding)));
  return counter.count(text);
}

/** Counts without the cache (benchmarks compare the two). */
export function countTokensUncached(text: string, encoding: TiktokenEncoding = 'cl100k_base'): number {
  return text.length === 0 ? 0 : encoder(encoding).encode(text, 'all').length;
}
