import { TextLru } from '../util/text-lru.js';
import { countTokens } from '../util/tokens.js';

/**
 * Runs that tiktoken's pre-tokeniser keeps as one piece (letters, punctuation, whitespace) and
 * that are long enough to stall js-tiktoken: its byte-pair merge is quadratic in the length of a
 * piece — 5,000 repeated letters take ~11 s, 20,000 take ~2.5 min, a 1 MB run never ends — and a
 * degenerate completion ("aaaa…", a wall of spaces) is exactly such a run.
 */
const LONG_RUN = /(\p{L}{200,}|[^\s\p{L}\p{N}]{200,}|\s{200,})/u;

/**
 * Tokens of one long run, estimated. Real encoders merge such runs into tokens of 8–16
 * characters, so the estimate errs high: the worst it does is drop an SFT example as too long.
 */
function estimateRun(run: string): number {
  return Math.ceil(run.length / 4);
}

/**
 * Tokens of a text, never stalling: exact (countTokens) for everything but runs of 200 or more
 * letters, punctuation or whitespace, which are estimated at one token per 4 characters. Text
 * without such runs — any real prompt or completion — is counted exactly as countTokens does.
 */
export function boundedTokenCount(text: string, encoding: 'cl100k_base' | 'o200k_base' = 'cl100k_base'): number {
  if (text.length === 0) return 0;
  // The same texts are counted again and again (a trajectory's record counts every call's whole
  // prompt, system prompt included): the memo skips the scan for long runs as well as the count.
  const memo = memos[encoding];
  const known = memo.get(text);
  if (known !== undefined) return known;
  let total = 0;
  if (!LONG_RUN.test(text)) total = countTokens(text, encoding);
  else {
    // split with a capturing group: even indexes are ordinary text, odd ones the long runs
    text.split(LONG_RUN).forEach((part, i) => {
      total += i % 2 === 1 ? estimateRun(part) : countTokens(part, encoding);
    });
  }
  memo.set(text, total);
  return total;
}

const memos = { cl100k_base: new TextLru<number>(16 * 1024 * 1024), o200k_base: new TextLru<number>(16 * 1024 * 1024) };
