import { createHash } from 'node:crypto';

/**
 * A seed derived from its parts (run seed, iteration, instance, sample index, call index …):
 * the same parts always give the same seed, so a resumed run equals an uninterrupted one.
 * 31 bits, which every endpoint accepts.
 */
export function deriveSeed(...parts: (string | number)[]): number {
  const digest = createHash('sha256').update(parts.map(String).join('\u0000')).digest();
  return digest.readUInt32BE(0) & 0x7fffffff;
}
