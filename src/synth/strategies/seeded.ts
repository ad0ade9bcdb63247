import { createHash } from 'node:crypto';
import { mulberry32 } from '../../util/prng.js';

/**
 * A generator seeded from the run's seed and a name (a target, a purpose), so each stream is
 * stable on its own: adding a target or a modifier does not reshuffle the choices made for others.
 */
export function seededRng(seed: number, ...parts: readonly string[]): () => number {
  const digest = createHash('sha256').update([String(seed), ...parts].join('\u0000')).digest();
  return mulberry32(digest.readUInt32BE(0));
}

/** A Fisher–Yates shuffle of a copy. */
export function shuffled<T>(items: readonly T[], rng: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
