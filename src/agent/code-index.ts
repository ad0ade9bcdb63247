import type { SearchRequest } from './states/search.js';
import { renderFiles, type RenderedFile, type RenderedSpan } from './prompts.js';
import { PythonSpanParser, type Span, type SpanDetail } from './python-spans.js';
import { codeTokens, splitLines } from './file-entry.js';
import { entryFor, type IndexCache } from './index-cache.js';
import { parsedDetails } from './parse-memo.js';
import { compare, isTestPath, MAX_SKIPPED_OVER_BUDGET, DEFAULT_MAX_HITS, normalizePath, SpanSearch, type Candidate, type SearchableFile, type SearchOptions } from './span-search.js';
import { TextLru } from '../util/text-lru.js';
import { encoder } from '../util/tokens.js';
import { SearchRequestError } from './search-request-error.js';

/**
 * The code index the SearchCode state queries (design §5): every file of a repository snapshot,
 * its Python files split into spans, and the search over them (span-search.ts). Test files are
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

export { SearchRequestError, isTestPath, normalizePath, DEFAULT_MAX_HITS, type Candidate, type SearchOptions };
export { globMatcher, globToRegExp, MAX_GLOB_LENGTH } from './glob.js';
export const DEFAULT_MAX_TOKENS = 8000;

export { codeTokens };

interface IndexedPython {
  details: SpanDetail[];
  /** The file's lines, split on first use. */
  lines?: string[];
}

function countTokens(text: string): number {
  // Special-token text counts as text here (no allowed or disallowed specials).
  return encoder('cl100k_base').encode(text, [], []).length;
}

export class CodeIndex implements AgentIndex {
  private constructor(
    private readonly parser: PythonSpanParser,
    /** Every file of the snapshot (Python or not), by normalised path, sorted. */
    private readonly texts: ReadonlyMap<string, string>,
    private readonly python: ReadonlyMap<string, IndexedPython>,
    private readonly spans: SpanSearch,
  ) {}

  /**
   * Indexes a snapshot: path (repository-relative) → text. Only `*.py` files get spans. With a
   * cache, a file whose text was indexed before (by any run) is not parsed again; the index is the
   * same either way.
   */
  static async build(files: ReadonlyMap<string, string>, parser?: PythonSpanParser, cache: IndexCache | null = null): Promise<CodeIndex> {
    const spanParser = parser ?? (await PythonSpanParser.create());
    const texts = new Map<string, string>();
    const python = new Map<string, IndexedPython>();
    const searchable: SearchableFile[] = [];
    const paths = [...files.keys()].map((path) => [normalizePath(path), files.get(path)!] as const);
    paths.sort(([a], [b]) => compare(a, b));
    for (const [path, text] of paths) texts.set(path, text);
    for (const [path, text] of texts) {
      if (!path.endsWith('.py')) continue;
      const entry = entryFor(text, spanParser, cache);
      python.set(path, { details: entry.spans });
      if (!isTestPath(path)) searchable.push({ path, entry, empty: text === '' });
    }
    return new CodeIndex(spanParser, texts, python, SpanSearch.build(searchable));
  }

  file(path: string): IndexedFile | undefined {
    const clean = normalizePath(path);
    const text = this.texts.get(clean);
    if (text === undefined) return undefined;
    const details = this.python.get(clean)?.details ?? [];
    return { path: clean, text, lines: this.linesOf(clean), spans: details.map(plainSpan) };
  }

  /** Pays every search's one-time set-up now (see SpanSearch.warm). */
  warm(): void {
    this.spans.warm();
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

  /** The spans a search may return, best first (see SpanSearch.rank). */
  rank(request: SearchRequest, options: SearchOptions = {}): Candidate[] {
    return this.spans.rank(request, options);
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

  /** A file's lines, split once. */
  private linesOf(path: string): string[] {
    const indexed = this.python.get(path);
    if (indexed?.lines) return indexed.lines;
    const lines = splitLines(this.texts.get(path) ?? '');
    if (indexed) indexed.lines = lines;
    return lines;
  }
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

export { splitLines };

function plainSpan({ id, kind, startLine, endLine }: SpanDetail): Span {
  return { id, kind, startLine, endLine };
}
