import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Filter } from './trajectory-view.js';

/**
 * Which trajectories `rft report` writes a page for (`--pages`). A page per trajectory is 12 MB for
 * the demo's 252 and GBs at SWE-Gym size, so the default is bounded:
 *   all           every trajectory
 *   none          no trajectory page (the index pages still list every trajectory)
 *   failed        trajectories that ended in an error, or whose verification did (the `error` filter)
 *   kept          resolved trajectories: the ones a dataset keeps from (the `resolved` filter)
 *   failed,kept   both
 *   sample:N      N trajectories picked evenly at random (fixed: the same run gives the same pick)
 * The default (auto): every trajectory of a phase that has at most DEFAULT_PAGE_CAP (the demo's
 * 252 all get a page), else failed,kept of that phase, at most DEFAULT_PAGE_CAP pages.
 * When more trajectories match than a cap allows, the pick is by a hash of (phase, instance,
 * sample): stable from one report to the next, so unchanged pages are reused.
 */
export const DEFAULT_PAGES = 'auto';
export const DEFAULT_PAGE_CAP = 1000;

export const PagesSpecSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('all') }).strict(),
  z.object({ kind: z.literal('none') }).strict(),
  z.object({ kind: z.literal('auto'), cap: z.number().int().positive() }).strict(),
  z.object({ kind: z.literal('filters'), filters: z.array(z.enum(['error', 'resolved'])).min(1), cap: z.number().int().positive().nullable() }).strict(),
  z.object({ kind: z.literal('sample'), n: z.number().int().nonnegative() }).strict(),
]);
export type PagesSpec = z.infer<typeof PagesSpecSchema>;

export class PagesSpecError extends Error {
  constructor(text: string) {
    super(`--pages ${JSON.stringify(text)} is not one of: auto, all, none, failed, kept, failed,kept, sample:N (N a whole number, e.g. sample:200)`);
    this.name = 'PagesSpecError';
  }
}

/** `--pages` as given; undefined is the default (auto). */
export function parsePagesSpec(text: string | undefined): PagesSpec {
  if (text === undefined || text.trim() === 'auto') return { kind: 'auto', cap: DEFAULT_PAGE_CAP };
  const t = text.trim();
  if (t === 'all' || t === 'none') return { kind: t };
  const sample = /^sample:(\d+)$/.exec(t);
  if (sample) return { kind: 'sample', n: Number(sample[1]) };
  const words = t.split(',').map((w) => w.trim());
  const map: Record<string, 'error' | 'resolved'> = { failed: 'error', kept: 'resolved' };
  if (words.length === 0 || words.some((w) => !(w in map))) throw new PagesSpecError(text);
  return { kind: 'filters', filters: [...new Set(words.map((w) => map[w]!))], cap: null };
}

export interface PageCandidate {
  phase: string;
  instance_id: string;
  sample_index: number;
  filter: Filter;
}

const rank = (c: PageCandidate) => createHash('sha256').update(JSON.stringify([c.phase, c.instance_id, c.sample_index])).digest('hex');

/** The indexes (into `candidates`) of the trajectories that get a page. */
export function pickPages(candidates: readonly PageCandidate[], spec: PagesSpec): Set<number> {
  if (spec.kind === 'none') return new Set();
  if (spec.kind === 'all' || (spec.kind === 'auto' && candidates.length <= spec.cap)) return new Set(candidates.keys());
  if (spec.kind === 'auto') return pickPages(candidates, { kind: 'filters', filters: ['error', 'resolved'], cap: spec.cap });
  const matching = [...candidates.keys()].filter((i) => spec.kind === 'sample' || (spec.filters as string[]).includes(candidates[i]!.filter));
  const limit = spec.kind === 'sample' ? spec.n : spec.cap;
  if (limit === null || matching.length <= limit) return new Set(matching);
  return new Set(
    matching
      .map((i) => ({ i, r: rank(candidates[i]!) }))
      .sort((a, b) => (a.r < b.r ? -1 : a.r > b.r ? 1 : 0))
      .slice(0, limit)
      .map((x) => x.i),
  );
}

export function describePages(spec: PagesSpec): string {
  if (spec.kind === 'sample') return `sample:${spec.n}`;
  if (spec.kind === 'auto') return `auto: all, or failed,kept at most ${spec.cap} a phase`;
  if (spec.kind !== 'filters') return spec.kind;
  const words = spec.filters.map((f) => (f === 'error' ? 'failed' : 'kept')).join(',');
  return spec.cap === null ? words : `${words} (at most ${spec.cap})`;
}
