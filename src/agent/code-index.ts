import type { SearchRequest } from './states/search.js';
import { renderFiles, type RenderedFile, type RenderedSpan } from './prompts.js';
import { PythonSpanParser, type Span, type SpanDetail } from './python-spans.js';
import { codeTokens, fileEntryOf, splitLines, unsqueeze, type FileEntry } from './file-entry.js';
import { assembleRanker, type Ranker } from './ranker.js';
import { entryKey, type IndexCache } from './index-cache.js';
import { parsedDetails } from './parse-memo.js';
import { TextLru } from '../util/text-lru.js';
import { rowAt } from '../util/rows.js';
import { encoder } from '../util/tokens.js';
import { SearchRequestError } from './search-request-error.js';

/**
 * The code index the SearchCode state queries (design §5): every Python file of a repository
 * snapshot split into spans, looked up by class or function name, by an exact
 * (whitespace-insensitive) snippet, or ranked by a free-text query with BM25. Test files are
 * indexed (so their spans can be shown) but never returned by a search.
 */

export interface IndexedFile {
  path: string;
  text: string;
  /** The file's lines without line terminators; line n is `lines[n - 1]`. */
  lines: string[];
  /** Empty for files that are not Python. */
  spans: Span[];
}

export interface SearchHit {
  filePath: string;
  /** The matching spans of the file, in file order. */
  spanIds: string[];
  /** The best score among them: exact name / snippet hits score ≥ 10, query-only hits in (0, 1]. */
  score: number;
}

export interface SearchOptions {
  /** Most spans returned over all files (default 10). */
  maxHits?: number;
  /** Most tokens (cl100k_base) of rendered span code returned (default 8000); the best span always is. */
  maxTokens?: number;
}

/**
 * What the agent needs of a code index: searches (answered in this thread or by a worker), and
 * each file's spans and their rendering, read on this thread.
 */
export interface AgentIndex {
  search(request: SearchRequest, options?: SearchOptions): SearchHit[] | Promise<SearchHit[]>;
  file(path: string): IndexedFile | undefined;
  /** The spans of a file of the snapshot as indexed ([] for files that are not Python). */
  details(path: string): SpanDetail[];
  renderFile(path: string, spanIds: readonly string[], text?: string): RenderedFile;
}

export { SearchRequestError };

export const DEFAULT_MAX_HITS = 10;
export const DEFAULT_MAX_TOKENS = 8000;

/** Hits too big for what is left of the token budget tried before a search stops filling it. */
const MAX_SKIPPED_OVER_BUDGET = 5;

/** Score of one exact criterion (a name or the snippet); query scores are normalised to (0, 1]. */
const EXACT_SCORE = 10;

const TEST_DIRS = new Set(['tests', 'test', 'testing']);

/** True for files the search never returns: under tests/, test/ or testing/, test_*.py, *_test.py, conftest.py. */
export function isTestPath(path: string): boolean {
  const segments = normalizePath(path).split('/');
  const base = segments.at(-1) ?? '';
  if (segments.slice(0, -1).some((segment) => TEST_DIRS.has(segment))) return true;
  return (base.startsWith('test_') && base.endsWith('.py')) || base.endsWith('_test.py') || base === 'conftest.py';
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function globBody(glob: string): string {
  let out = '';
  let i = 0;
  while (i < glob.length) {
    const char = glob[i]!;
    if (char === '\\' && i + 1 < glob.length) {
      out += escapeRegExp(glob[i + 1]!);
      i += 2;
    } else if (char === '*') {
      let end = i;
      while (glob[end] === '*') end++;
      const atSegmentStart = i === 0 || glob[i - 1] === '/';
      if (end - i >= 2 && atSegmentStart && glob[end] === '/') {
        out += '(?:[^/]*/)*'; // `**/`: any number of directories, none included
        i = end + 1;
      } else if (end - i >= 2) {
        out += '.*';
        i = end;
      } else {
        out += '[^/]*';
        i = end;
      }
    } else if (char === '?') {
      out += '[^/]';
      i++;
    } else if (char === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) {
        out += '\\[';
        i++;
        continue;
      }
      let content = glob.slice(i + 1, close);
      const negate = content.startsWith('!') || content.startsWith('^');
      if (negate) content = content.slice(1);
      out += `[${negate ? '^' : ''}${content.replace(/[\\\]^[]/g, '\\$&')}]`;
      i = close + 1;
    } else if (char === '{') {
      const close = glob.indexOf('}', i + 1);
      if (close < 0) {
        out += '\\{';
        i++;
        continue;
      }
      out += `(?:${glob
        .slice(i + 1, close)
        .split(',')
        .map(globBody)
        .join('|')})`;
      i = close + 1;
    } else {
      out += escapeRegExp(char);
      i++;
    }
  }
  return out;
}

/**
 * A glob as a RegExp over repository-relative paths (`/`-separated): `*` and `?` stay inside one
 * path segment, `**` crosses segments (`**​/x.py` matches x.py at any depth, the root included),
 * `[abc]`, `[!abc]` and `{a,b}` work as in shells. A glob without `/` matches the basename in any
 * directory (`units.py`, `*.py`); one with `/` is anchored at the repository root. An empty glob
 * matches everything. A backtracking RegExp: never run it on a pattern from the model against
 * long paths — search() uses globMatcher, the same language run in linear time.
 */
export function globToRegExp(glob: string): RegExp {
  let pattern = glob.trim();
  while (pattern.startsWith('./')) pattern = pattern.slice(2);
  pattern = pattern.replace(/^\/+/, '');
  if (pattern === '') return /^.*$/;
  if (!pattern.includes('/')) return new RegExp(`^(?:.*/)?${globBody(pattern)}$`);
  return new RegExp(`^${globBody(pattern)}$`);
}

/** Longest file_pattern a search accepts. */
export const MAX_GLOB_LENGTH = 1000;

type GlobNode =
  | { kind: 'char'; test: (c: string) => boolean }
  | { kind: 'star' | 'any' | 'dirs' }
  | { kind: 'alt'; options: GlobNode[][] };

const notSlash = (c: string) => c !== '/';
/** What `.` matches in a RegExp without the s flag. */
const notLineBreak = (c: string) => c !== '\n' && c !== '\r' && c !== '\u2028' && c !== '\u2029';

/** The glob parsed the way globBody reads it (same escapes, classes, braces and `**` rules). */
function parseGlob(glob: string): GlobNode[] {
  const nodes: GlobNode[] = [];
  let i = 0;
  while (i < glob.length) {
    const char = glob[i]!;
    if (char === '\\' && i + 1 < glob.length) {
      const literal = glob[i + 1]!;
      nodes.push({ kind: 'char', test: (c) => c === literal });
      i += 2;
    } else if (char === '*') {
      let end = i;
      while (glob[end] === '*') end++;
      const atSegmentStart = i === 0 || glob[i - 1] === '/';
      if (end - i >= 2 && atSegmentStart && glob[end] === '/') {
        nodes.push({ kind: 'dirs' });
        i = end + 1;
      } else {
        nodes.push({ kind: end - i >= 2 ? 'any' : 'star' });
        i = end;
      }
    } else if (char === '?') {
      nodes.push({ kind: 'char', test: notSlash });
      i++;
    } else if (char === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) {
        nodes.push({ kind: 'char', test: (c) => c === '[' });
        i++;
        continue;
      }
      let content = glob.slice(i + 1, close);
      const negate = content.startsWith('!') || content.startsWith('^');
      if (negate) content = content.slice(1);
      // One character against a class: the RegExp cannot backtrack (it throws on a bad range).
      const single = new RegExp(`^[${negate ? '^' : ''}${content.replace(/[\\\]^[]/g, '\\$&')}]$`);
      nodes.push({ kind: 'char', test: (c) => single.test(c) });
      i = close + 1;
    } else if (char === '{') {
      const close = glob.indexOf('}', i + 1);
      if (close < 0) {
        nodes.push({ kind: 'char', test: (c) => c === '{' });
        i++;
        continue;
      }
      nodes.push({ kind: 'alt', options: glob.slice(i + 1, close).split(',').map(parseGlob) });
      i = close + 1;
    } else {
      nodes.push({ kind: 'char', test: (c) => c === char });
      i++;
    }
  }
  return nodes;
}

interface NfaState {
  edges: { test: (c: string) => boolean; to: number }[];
  eps: number[];
}

/**
 * A glob as a predicate on repository-relative paths, with exactly globToRegExp's semantics but
 * run as a state machine: time linear in the path for any pattern. A backtracking RegExp of a
 * glob such as `*a*a*a*a*a*a*a*a*b` takes minutes on one long file name, and file_pattern comes
 * from the model. Throws SearchRequestError for a pattern that is too long or has a bad class.
 */
export function globMatcher(glob: string): (path: string) => boolean {
  if (glob.length > MAX_GLOB_LENGTH) throw new SearchRequestError(`file_pattern is longer than ${MAX_GLOB_LENGTH} characters`);
  let pattern = glob.trim();
  while (pattern.startsWith('./')) pattern = pattern.slice(2);
  pattern = pattern.replace(/^\/+/, '');
  if (pattern === '') return () => true;
  let body: GlobNode[];
  try {
    body = parseGlob(pattern);
  } catch (err) {
    throw new SearchRequestError(`file_pattern ${JSON.stringify(pattern.slice(0, 80))} is not a valid glob (${(err as Error).message})`);
  }
  const states: NfaState[] = [];
  const state = (): number => states.push({ edges: [], eps: [] }) - 1;
  const loop = (from: number, test: (c: string) => boolean): number => {
    const head = state();
    const out = state();
    states[from]!.eps.push(head);
    states[head]!.edges.push({ test, to: head });
    states[head]!.eps.push(out);
    return out;
  };
  const build = (nodes: readonly GlobNode[], from: number): number => {
    let at = from;
    for (const node of nodes) {
      if (node.kind === 'char') {
        const to = state();
        states[at]!.edges.push({ test: node.test, to });
        at = to;
      } else if (node.kind === 'star') {
        at = loop(at, notSlash);
      } else if (node.kind === 'any') {
        at = loop(at, notLineBreak);
      } else if (node.kind === 'dirs') {
        // (?:[^/]*\/)*
        const head = state();
        const inner = state();
        const out = state();
        states[at]!.eps.push(head);
        states[head]!.eps.push(out, inner);
        states[inner]!.edges.push({ test: notSlash, to: inner }, { test: (c) => c === '/', to: head });
        at = out;
      } else if (node.kind === 'alt') {
        const out = state();
        for (const option of node.options) {
          const start = state();
          states[at]!.eps.push(start);
          states[build(option, start)]!.eps.push(out);
        }
        at = out;
      }
    }
    return at;
  };
  const start = state();
  let bodyStart = start;
  if (!pattern.includes('/')) {
    // ^(?:.*\/)?body$: the basename in any directory
    bodyStart = state();
    states[start]!.eps.push(bodyStart);
    const dirs = loop(start, notLineBreak);
    states[dirs]!.edges.push({ test: (c) => c === '/', to: bodyStart });
  }
  const accept = build(body, bodyStart);
  const closure = (set: Set<number>): Set<number> => {
    const stack = [...set];
    while (stack.length > 0) {
      for (const next of states[stack.pop()!]!.eps) {
        if (!set.has(next)) {
          set.add(next);
          stack.push(next);
        }
      }
    }
    return set;
  };
  const initial = closure(new Set([start]));
  return (path: string) => {
    let current = initial;
    for (let i = 0; i < path.length && current.size > 0; i++) {
      const c = path[i]!;
      const next = new Set<number>();
      for (const s of current) for (const edge of states[s]!.edges) if (edge.test(c)) next.add(edge.to);
      current = closure(next);
    }
    return current.has(accept);
  };
}

function normalizePath(path: string): string {
  let out = path.replace(/\\/g, '/');
  while (out.startsWith('./')) out = out.slice(2);
  return out;
}


// --- query tokenisation ---------------------------------------------------------------------


export { codeTokens };


interface Entry {
  path: string;
  detail: SpanDetail;
}

interface IndexedPython {
  details: SpanDetail[];
  /** The file's lines, split on first use. */
  lines?: string[];
  /** FileEntry.squeezed, until `normalized` is made from it. */
  squeezed: string | null;
  /** Text without whitespace and where each row starts in it; built on first use. */
  normalized?: { text: string; rowStarts: number[] };
}

/** A Python file's entry: from the cache when it holds one for this text, else parsed (and stored there). */
function entryFor(text: string, parser: PythonSpanParser, cache: IndexCache | null): FileEntry {
  if (!cache) return fileEntryOf(text, parser);
  const key = entryKey(text);
  const cached = cache.get(key);
  if (cached) return cached;
  const entry = fileEntryOf(text, parser);
  cache.put(key, entry);
  return entry;
}

function countTokens(text: string): number {
  // Special-token text counts as text here (no allowed or disallowed specials).
  return encoder('cl100k_base').encode(text, [], []).length;
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

export class CodeIndex implements AgentIndex {
  private readonly ranker: Ranker;

  private constructor(
    private readonly parser: PythonSpanParser,
    /** Every file of the snapshot (Python or not), by normalised path, sorted. */
    private readonly texts: ReadonlyMap<string, string>,
    private readonly python: ReadonlyMap<string, IndexedPython>,
    /** Searchable spans (non-test Python files), in path then line order; a doc id is an index here. */
    private readonly entries: readonly Entry[],
    /** Per entry, the search terms of its code (FileEntry.terms). */
    terms: readonly string[],
  ) {
    this.ranker = assembleRanker(entries.map((entry, id) => ({ name: entry.detail.name, content: terms[id]!, path: entry.path })));
  }

  /**
   * Indexes a snapshot: path (repository-relative) → text. Only `*.py` files get spans. With a
   * cache, a file whose text was indexed before (by any run) is not parsed again; the index is the
   * same either way.
   */
  static async build(files: ReadonlyMap<string, string>, parser?: PythonSpanParser, cache: IndexCache | null = null): Promise<CodeIndex> {
    const spanParser = parser ?? (await PythonSpanParser.create());
    const texts = new Map<string, string>();
    const python = new Map<string, IndexedPython>();
    const entries: Entry[] = [];
    const terms: string[] = [];
    const paths = [...files.keys()].map((path) => [normalizePath(path), files.get(path)!] as const);
    paths.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    for (const [path, text] of paths) {
      texts.set(path, text);
      if (!path.endsWith('.py')) continue;
      const entry = entryFor(text, spanParser, cache);
      python.set(path, { details: entry.spans, squeezed: entry.squeezed });
      if (isTestPath(path)) continue;
      entry.spans.forEach((detail, i) => {
        entries.push({ path, detail });
        terms.push(entry.terms[i]!);
      });
    }
    return new CodeIndex(spanParser, texts, python, entries, terms);
  }

  file(path: string): IndexedFile | undefined {
    const clean = normalizePath(path);
    const text = this.texts.get(clean);
    if (text === undefined) return undefined;
    const details = this.python.get(clean)?.details ?? [];
    return { path: clean, text, lines: this.linesOf(clean), spans: details.map(plainSpan) };
  }

  /**
   * Pays every search's one-time set-up now (each searchable file's whitespace-free text for
   * snippet search), so that no agent's first search waits for it. The worker calls it right after
   * the build, off the event loop; tokens are counted by the thread that asked (chooseHits).
   */
  warm(): void {
    for (const { path } of this.entries) this.normalizedText(path);
  }

  /** Every file of the snapshot (Python or not), sorted. */
  filePaths(): string[] {
    return [...this.texts.keys()];
  }

  details(path: string): SpanDetail[] {
    return this.python.get(normalizePath(path))?.details ?? [];
  }

  span(path: string, spanId: string): Span | undefined {
    const detail = this.python.get(normalizePath(path))?.details.find((d) => d.id === spanId);
    return detail && plainSpan(detail);
  }

  /** The spans of one request, best first, grouped by file; throws SearchRequestError when it has nothing to search for. */
  search(request: SearchRequest, options: SearchOptions = {}): SearchHit[] {
    return chooseHits(this.rank(request, options), options, (path) => this.linesOf(path));
  }

  /**
   * The spans a search may return, best first: every one the budget loop of chooseHits can look
   * at (maxHits plus the over-budget ones it passes over), so that chooseHits gives the same hits
   * from them wherever it runs. The worker answers with these and the thread that asked counts
   * their tokens, with its encoder: a worker's own would cost each instance the encoder's tables.
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
      const results = this.ranker.search(query).filter((result) => allowed(this.entries[result.id as number]!.path));
      const best = results[0]?.score ?? 0;
      if (best > 0) for (const result of results) bump(result.id as number, result.score / best);
    }

    return [...scores.entries()]
      .map(([i, score]) => ({ ...this.entries[i]!, score }))
      .sort((a, b) => b.score - a.score || compare(a.path, b.path) || a.detail.startLine - b.detail.startLine)
      .slice(0, maxHits + MAX_SKIPPED_OVER_BUDGET);
  }

  /**
   * Spans of a file as the prompt shows them, in file order. A method (or nested class, or class
   * continuation) brings its class header spans along so the reader sees `class X:` above it.
   * Unknown ids are ignored. `text` is an edited copy of the file: it is parsed afresh.
   */
  renderFile(path: string, spanIds: readonly string[], text?: string): RenderedFile {
    const filePath = normalizePath(path);
    if (text !== undefined && text !== this.texts.get(filePath)) return renderSpans(filePath, filePath.endsWith('.py') ? parsedDetails(this.parser, text) : [], splitLines(text), spanIds);
    const indexed = this.python.get(filePath);
    return renderSpans(filePath, indexed?.details ?? [], indexed ? this.linesOf(filePath) : [], spanIds);
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
    const indexed = this.python.get(path)!;
    if (indexed.normalized) return indexed.normalized;
    indexed.normalized = unsqueeze(indexed.squeezed!, this.texts.get(path) === '');
    indexed.squeezed = null;
    return indexed.normalized;
  }

  /** A file's lines, split once. */
  private linesOf(path: string): string[] {
    const indexed = this.python.get(path);
    if (indexed?.lines) return indexed.lines;
    const lines = splitLines(this.texts.get(path) ?? '');
    if (indexed) indexed.lines = lines;
    return lines;
  }

}

/** A span a search found, with its score (see CodeIndex.rank). */
export interface Candidate {
  path: string;
  detail: SpanDetail;
  score: number;
}

/** Tokens of spans rendered alone, by their rendering (the same spans come up search after search). */
const spanTokens = new TextLru<number>(16 * 1024 * 1024);

function tokensOf({ path, detail }: Candidate, linesOf: (path: string) => readonly string[]): number {
  const lines = linesOf(path).slice(detail.startLine - 1, detail.endLine);
  const rendered = renderFiles([{ path, spans: [{ id: detail.id, startLine: detail.startLine, lines }] }]);
  let tokens = spanTokens.get(rendered);
  if (tokens === undefined) spanTokens.set(rendered, (tokens = countTokens(rendered)));
  return tokens;
}

/**
 * The hits of a search from its ranked candidates: best first within maxHits and maxTokens of
 * rendered code (the best span always), grouped by file. `linesOf` gives a file's lines.
 */
export function chooseHits(ranked: readonly Candidate[], options: SearchOptions, linesOf: (path: string) => readonly string[]): SearchHit[] {
  const maxHits = Math.max(1, options.maxHits ?? DEFAULT_MAX_HITS);
  const maxTokens = options.maxTokens ?? DEFAULT_MAX_TOKENS;
  const chosen: Candidate[] = [];
  let tokens = 0;
  let skipped = 0;
  for (const hit of ranked) {
    if (chosen.length >= maxHits || tokens >= maxTokens) break;
    const cost = tokensOf(hit, linesOf);
    if (chosen.length > 0 && tokens + cost > maxTokens) {
      // A smaller span further down may still fit, but counting every remaining hit of a broad
      // query costs seconds on a large repository: give up after a few misses.
      if (++skipped >= MAX_SKIPPED_OVER_BUDGET) break;
      continue;
    }
    chosen.push(hit);
    tokens += cost;
  }

  const byFile = new Map<string, { score: number; spans: SpanDetail[] }>();
  for (const { path, detail, score } of chosen) {
    const group = byFile.get(path) ?? { score, spans: [] };
    group.spans.push(detail);
    byFile.set(path, group);
  }
  return [...byFile.entries()].map(([filePath, group]) => ({
    filePath,
    spanIds: group.spans.sort((a, b) => a.startLine - b.startLine).map((detail) => detail.id),
    score: group.score,
  }));
}

/**
 * Spans of a file as the prompt shows them, in file order. A method (or nested class, or class
 * continuation) brings its class header spans along so the reader sees `class X:` above it.
 * Unknown ids are ignored.
 */
export function renderSpans(filePath: string, details: readonly SpanDetail[], lines: readonly string[], spanIds: readonly string[]): RenderedFile {
  const byId = new Map(details.map((detail) => [detail.id, detail]));
  const wanted = new Set<string>();
  for (const id of spanIds) {
    let detail = byId.get(id);
    while (detail && !wanted.has(detail.id)) {
      wanted.add(detail.id);
      detail = detail.parentId === null ? undefined : byId.get(detail.parentId);
    }
  }
  const spans: RenderedSpan[] = details
    .filter((detail) => wanted.has(detail.id))
    .map((detail) => ({ id: detail.id, startLine: detail.startLine, lines: lines.slice(detail.startLine - 1, detail.endLine) }));
  return { path: filePath, spans };
}

export { normalizePath, splitLines };

function plainSpan({ id, kind, startLine, endLine }: SpanDetail): Span {
  return { id, kind, startLine, endLine };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
