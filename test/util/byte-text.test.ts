import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeBytes, encodeText, wellFormed } from '../../src/util/byte-text.js';
import { patchHash } from '../../src/verify/patch.js';
import { mulberry32 } from '../../src/util/prng.js';

const bytes = (...values: number[]) => Uint8Array.from(values);

describe('byte-exact text (surrogate escapes)', () => {
  it('decodes valid UTF-8 exactly as TextDecoder does, with no escapes', () => {
    const text = 'plain ascii, café, 漢字, emoji 😀, U+10FFFF \u{10FFFF}';
    const encoded = Buffer.from(text, 'utf8');
    expect(decodeBytes(encoded)).toBe(text);
    expect(encodeText(text).equals(encoded)).toBe(true);
  });

  it('escapes each byte outside a well-formed sequence to U+DC00 + byte', () => {
    // Latin-1 é; a lone continuation byte; an overlong '/'; an encoded surrogate (ED A0 80); a truncated 3-byte sequence; past U+10FFFF.
    expect(decodeBytes(bytes(0x63, 0x61, 0x66, 0xe9))).toBe('caf\uDCE9');
    expect(decodeBytes(bytes(0x80))).toBe('\uDC80');
    expect(decodeBytes(bytes(0xc0, 0xaf))).toBe('\uDCC0\uDCAF');
    expect(decodeBytes(bytes(0xed, 0xa0, 0x80))).toBe('\uDCED\uDCA0\uDC80');
    expect(decodeBytes(bytes(0xe6, 0xbc, 0x41))).toBe('\uDCE6\uDCBCA');
    expect(decodeBytes(bytes(0xf4, 0x90, 0x80, 0x80))).toBe('\uDCF4\uDC90\uDC80\uDC80');
    // Valid sequences around a bad byte stay characters.
    expect(decodeBytes(Buffer.concat([Buffer.from('é', 'utf8'), bytes(0xff), Buffer.from('😀', 'utf8')]))).toBe('é\uDCFF😀');
  });

  it('gives back the very bytes for any byte string (random and adversarial)', () => {
    const random = mulberry32(7);
    for (let round = 0; round < 2000; round++) {
      const length = Math.floor(random() * 40);
      // Bias towards the bytes that start and continue multi-byte sequences.
      const input = Uint8Array.from({ length }, () => (random() < 0.5 ? 0x80 + Math.floor(random() * 0x80) : Math.floor(random() * 0x100)));
      const text = decodeBytes(input);
      expect(encodeText(text).equals(Buffer.from(input))).toBe(true);
    }
  });

  it('wellFormed shows U+FFFD for every lone surrogate and leaves pairs and plain text alone', () => {
    expect(wellFormed('caf\uDCE9 and 😀')).toBe('caf\uFFFD and 😀');
    expect(wellFormed('\uD800x\uDFFF')).toBe('\uFFFDx\uFFFD');
    const plain = 'no escapes here';
    expect(wellFormed(plain)).toBe(plain);
  });

  it('a patch hash is the hash of the bytes the container receives (unchanged for UTF-8 patches)', () => {
    const utf8Patch = 'diff --git a/x.py b/x.py\n-café\n+cafe\n';
    expect(patchHash(utf8Patch)).toBe(createHash('sha256').update(Buffer.from(utf8Patch, 'utf8')).digest('hex'));
    // Two patches that differ only in a non-UTF-8 byte are two patches, not one.
    expect(patchHash('-caf\uDCE9\n')).not.toBe(patchHash('-caf\uDCE8\n'));
  });
});
