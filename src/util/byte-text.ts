/**
 * Text that keeps its bytes. A repository may hold files that are not UTF-8 (a Latin-1 source
 * file with a coding cookie, a stray byte in a comment); decoding them lossily would turn each
 * bad byte into U+FFFD, and a patch whose context lines carry U+FFFD no longer applies to the
 * real file. Here, as in Python's `surrogateescape`, each byte that is not part of a valid UTF-8
 * sequence decodes to the lone surrogate U+DC80..U+DCFF and encodes back to the same byte, so a
 * file read, edited and diffed as a JS string yields a patch with the file's exact bytes.
 *
 * Lone surrogates must never reach a model or a training file (a tokenizer refuses them):
 * `wellFormed` is what the model sees, with U+FFFD where the file had a bad byte.
 */

const strict = new TextDecoder('utf-8', { fatal: true });

/** The bytes as text: valid UTF-8 as is, every other byte as U+DC00 + byte. */
export function decodeBytes(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes);
  } catch {
    return decodeEscaping(bytes);
  }
}

/** The inverse of decodeBytes: UTF-8, except that a lone U+DC80..U+DCFF becomes its byte. */
export function encodeText(text: string): Buffer {
  if (!hasLoneSurrogate(text)) return Buffer.from(text, 'utf8');
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++; // a pair: one code point, kept as UTF-8
      continue;
    }
    if (c >= 0xdc80 && c <= 0xdcff) {
      if (i > start) parts.push(Buffer.from(text.slice(start, i), 'utf8'));
      parts.push(Buffer.of(c - 0xdc00));
      start = i + 1;
    }
  }
  if (start < text.length) parts.push(Buffer.from(text.slice(start), 'utf8'));
  return Buffer.concat(parts);
}

/** The text with every lone surrogate replaced by U+FFFD: what a model, a tokenizer or a page may see. */
export function wellFormed(text: string): string {
  return hasLoneSurrogate(text) ? text.replace(LONE_SURROGATES, '\uFFFD') : text;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

function hasLoneSurrogate(text: string): boolean {
  return LONE_SURROGATE.test(text);
}

/** UTF-8 decoding by the standard's table of well-formed sequences (no overlongs, no encoded surrogates, nothing past U+10FFFF). */
function decodeEscaping(bytes: Uint8Array): string {
  const out: string[] = [];
  let run = 0; // start of the current run of valid bytes
  const flush = (end: number) => {
    if (end > run) out.push(strict.decode(bytes.subarray(run, end)));
  };
  let i = 0;
  while (i < bytes.length) {
    const length = validSequenceLength(bytes, i);
    if (length > 0) {
      i += length;
      continue;
    }
    flush(i);
    out.push(String.fromCharCode(0xdc00 + bytes[i]!));
    i += 1;
    run = i;
  }
  flush(i);
  return out.join('');
}

/** The length of the well-formed UTF-8 sequence starting at `i`, or 0 if none does. */
function validSequenceLength(b: Uint8Array, i: number): number {
  const b0 = b[i]!;
  if (b0 < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 === 0xe0) return cont(1, 0xa0) && cont(2) ? 3 : 0;
  if ((b0 >= 0xe1 && b0 <= 0xec) || b0 === 0xee || b0 === 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (b0 === 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;
  if (b0 === 0xf0) return cont(1, 0x90) && cont(2) && cont(3) ? 4 : 0;
  if (b0 >= 0xf1 && b0 <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b0 === 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;
  return 0;
}
