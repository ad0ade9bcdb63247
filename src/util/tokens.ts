import { getEncoding, type Tiktoken, type TiktokenEncoding } from 'js-tiktoken';

const encoders = new Map<TiktokenEncoding, Tiktoken>();

function encoder(encoding: TiktokenEncoding): Tiktoken {
  let found = encoders.get(encoding);
  if (!found) {
    found = getEncoding(encoding);
    encoders.set(encoding, found);
  }
  return found;
}

/** Tokens in a text under a js-tiktoken encoding (an approximation for non-OpenAI models). */
export function countTokens(text: string, encoding: TiktokenEncoding = 'cl100k_base'): number {
  return text.length === 0 ? 0 : encoder(encoding).encode(text, 'all').length;
}
