import type { Candidate } from '../../src/synth/candidate.js';

/** Every candidate a strategy yields, in order. */
export async function collect(iterable: AsyncIterable<Candidate>): Promise<Candidate[]> {
  const out: Candidate[] = [];
  for await (const c of iterable) out.push(c);
  return out;
}
