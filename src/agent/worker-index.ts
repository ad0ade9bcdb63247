import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { chooseHits, isTestPath, normalizePath, renderSpans, SearchRequestError, splitLines, type AgentIndex, type Candidate, type IndexedFile, type SearchHit, type SearchOptions } from './code-index.js';
import { entryKey, IndexCache, type IndexCacheOptions, type IndexCacheStats } from './index-cache.js';
import { parsedDetails } from './parse-memo.js';
import type { RenderedFile } from './prompts.js';
import type { PythonSpanParser, SpanDetail } from './python-spans.js';
import type { SearchRequest } from './states/search.js';

/** Characters of file text per message to the worker: small enough that no one send stalls the event loop. */
const BATCH_CHARS = 1_000_000;

/** The compiled worker module: beside this one in dist/ (tests run the TypeScript sources, so they take dist's). */
function workerFile(): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.js')) return path.join(path.dirname(here), 'index-worker.js');
  const built = path.resolve(path.dirname(here), '../../dist/agent/index-worker.js');
  if (!existsSync(built)) throw new Error(`${built} is missing: run npm run build`);
  return built;
}

/**
 * A code index whose build and searches run in a worker thread (index-worker.ts); the spans and
 * renderings the prompts need are read on this thread, parsing each file on first use. Close it
 * when done (the worker holds the whole index).
 */
export class WorkerCodeIndex implements AgentIndex {
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (candidates: Candidate[]) => void; reject: (err: Error) => void }>();
  private nextId = 0;
  /** What the worker's build found in the cache (null without one). */
  cacheStats: IndexCacheStats | null = null;
  /** Set once close() was asked for, so the worker's end is not reported as a failure. */
  private closed = false;
  /** Set when the worker ended: every later search fails with it at once. */
  private ended: Error | null = null;
  private readonly detailsCache = new Map<string, { details: SpanDetail[]; lines: string[] }>();
  private readonly linesCache = new Map<string, string[]>();
  private readonly normalized: Map<string, string>;

  private constructor(
    private readonly files: ReadonlyMap<string, string>,
    private readonly parser: PythonSpanParser,
    private readonly built: Promise<void>,
    worker: Worker,
    private readonly cache: IndexCache | null,
  ) {
    this.worker = worker;
    this.normalized = new Map([...files.keys()].map((p) => [normalizePath(p), p]));
  }

  /**
   * Starts the worker, sends it the snapshot in batches (yielding between them) and waits for its
   * index. With a cache (index-cache.ts) the worker parses only files it holds no entry for, and
   * this thread reads a file's spans from there too.
   */
  static async start(files: ReadonlyMap<string, string>, parser: PythonSpanParser, cache: IndexCacheOptions | null = null): Promise<WorkerCodeIndex> {
    const worker = new Worker(workerFile());
    worker.unref();
    let onBuilt!: (error?: string) => void;
    const built = new Promise<void>((resolve, reject) => {
      onBuilt = (error) => (error ? reject(new Error(`the code index worker failed: ${error}`)) : resolve());
    });
    const index = new WorkerCodeIndex(files, parser, built, worker, cache && new IndexCache(cache));
    worker.on('message', (message: { kind: string; id?: number; candidates?: Candidate[]; cache?: IndexCacheStats | null; error?: string | { request: boolean; message: string } }) => {
      if (message.kind === 'built') {
        index.cacheStats = message.cache ?? null;
        return onBuilt(message.error as string | undefined);
      }
      const waiting = index.pending.get(message.id!);
      if (!waiting) return;
      index.pending.delete(message.id!);
      if (message.error && typeof message.error === 'object') {
        waiting.reject(message.error.request ? new SearchRequestError(message.error.message) : new Error(message.error.message));
      } else waiting.resolve(message.candidates ?? []);
    });
    worker.on('error', (err) => {
      onBuilt(err.message);
      for (const waiting of index.pending.values()) waiting.reject(err);
      index.pending.clear();
    });
    // A worker can also end without an 'error' (terminated from outside, process.exit in a
    // dependency): whatever still waits on it is failed, never left to wait for ever — a waiting
    // search with no call and no container in flight stalls a whole run without a word.
    worker.on('exit', (code) => {
      const err = new Error(`the code index worker ended (exit code ${code})${index.closed ? '' : ' before it was closed'}`);
      onBuilt(err.message);
      for (const waiting of index.pending.values()) waiting.reject(err);
      index.pending.clear();
      index.ended = err;
    });
    let batch: [string, string][] = [];
    let size = 0;
    for (const [filePath, text] of files) {
      batch.push([filePath, text]);
      size += text.length;
      if (size >= BATCH_CHARS) {
        worker.postMessage({ kind: 'files', files: batch });
        [batch, size] = [[], 0];
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    if (batch.length > 0) worker.postMessage({ kind: 'files', files: batch });
    worker.postMessage({ kind: 'build', cache });
    await built;
    return index;
  }

  /** Ranked in the worker; the hits chosen here within the token budget (chooseHits), with this thread's encoder. */
  search(request: SearchRequest, options: SearchOptions = {}): Promise<SearchHit[]> {
    return this.built.then(() =>
      new Promise<Candidate[]>((resolve, reject) => {
        if (this.ended) return reject(this.ended);
        const id = this.nextId++;
        this.pending.set(id, { resolve, reject });
        this.worker.ref();
        this.worker.postMessage({ kind: 'search', id, request, options });
      })
        .finally(() => {
          if (this.pending.size === 0) this.worker.unref();
        })
        .then((candidates) => chooseHits(candidates, options, (p) => this.linesOf(p))),
    );
  }

  file(filePath: string): IndexedFile | undefined {
    const clean = normalizePath(filePath);
    const original = this.normalized.get(clean);
    if (original === undefined) return undefined;
    const text = this.files.get(original)!;
    const { details, lines } = this.parsed(clean);
    return { path: clean, text, lines, spans: details.map(({ id, kind, startLine, endLine }) => ({ id, kind, startLine, endLine })) };
  }

  details(filePath: string): SpanDetail[] {
    const clean = normalizePath(filePath);
    return this.normalized.has(clean) ? this.parsed(clean).details : [];
  }

  renderFile(filePath: string, spanIds: readonly string[], text?: string): RenderedFile {
    const clean = normalizePath(filePath);
    const original = this.normalized.get(clean);
    // The snapshot's own text (what an unedited file reads as) is the indexed one: not parsed again.
    if (text !== undefined && (original === undefined || text !== this.files.get(original))) {
      return renderSpans(clean, clean.endsWith('.py') ? parsedDetails(this.parser, text) : [], splitLines(text), spanIds);
    }
    if (original === undefined) return { path: clean, spans: [] };
    const { details, lines } = this.parsed(clean);
    return renderSpans(clean, details, lines, spanIds);
  }

  /** Test files are indexed for showing but never searched (as in CodeIndex). */
  isSearchable(filePath: string): boolean {
    return filePath.endsWith('.py') && !isTestPath(filePath);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const waiting of this.pending.values()) waiting.reject(new Error('the code index was closed'));
    this.pending.clear();
    await this.worker.terminate();
  }

  /** A file's spans: from the cache's entry when there is one (the worker just wrote it), else parsed. */
  private detailsOf(text: string): SpanDetail[] {
    return this.cache?.get(entryKey(text))?.spans ?? this.parser.parseDetailed(text);
  }

  /** A file's lines, split once (search hits need them, not the spans). */
  private linesOf(clean: string): string[] {
    let lines = this.linesCache.get(clean);
    if (!lines) this.linesCache.set(clean, (lines = splitLines(this.files.get(this.normalized.get(clean) ?? '') ?? '')));
    return lines;
  }

  private parsed(clean: string): { details: SpanDetail[]; lines: string[] } {
    let entry = this.detailsCache.get(clean);
    if (!entry) {
      const text = this.files.get(this.normalized.get(clean)!) ?? '';
      entry = { details: clean.endsWith('.py') ? this.detailsOf(text) : [], lines: this.linesOf(clean) };
      this.detailsCache.set(clean, entry);
    }
    return entry;
  }
}
