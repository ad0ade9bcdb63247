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

interface Reply {
  kind: 'built' | 'result';
  index: number;
  id?: number;
  candidates?: Candidate[];
  cache?: IndexCacheStats | null;
  error?: string | { request: boolean; message: string };
}

/** What an index is told by the thread: its answers, and the thread's end. */
interface Listener {
  reply(message: Reply): void;
  ended(code: number | null, err?: Error): void;
}

/**
 * The process's index thread (index-worker.ts), shared by every WorkerCodeIndex: a thread per
 * index paid its modules, the parser's wasm and an isolate (~0.4 s of CPU and tens of MB) once per
 * instance. It keeps the process alive only while something waits on it. If it ends, the indexes
 * it served fail and the next index starts a new one.
 */
class IndexThread {
  readonly worker = new Worker(workerFile());
  private readonly listeners = new Map<number, Listener>();
  private waiting = 0;

  constructor() {
    this.worker.unref();
    this.worker.on('message', (message: Reply) => this.listeners.get(message.index)?.reply(message));
    this.worker.on('error', (err) => this.end(null, err));
    // A worker can also end without an 'error' (terminated from outside, process.exit in a
    // dependency): whatever still waits on it is failed, never left to wait for ever — a waiting
    // search with no call and no container in flight stalls a whole run without a word.
    this.worker.on('exit', (code) => this.end(code));
  }

  listen(index: number, listener: Listener): void {
    this.listeners.set(index, listener);
  }

  forget(index: number): void {
    if (this.listeners.delete(index)) this.worker.postMessage({ kind: 'drop', index });
  }

  /** Something waits on the thread (a build, a search): the process stays up until it is answered. */
  hold(): void {
    if (this.waiting++ === 0) this.worker.ref();
  }

  release(): void {
    if (--this.waiting === 0) this.worker.unref();
  }

  private end(code: number | null, err?: Error): void {
    if (thread === this) thread = null;
    for (const listener of this.listeners.values()) listener.ended(code, err);
    this.listeners.clear();
  }
}

let thread: IndexThread | null = null;
/** Numbers of indexes and of searches, unique in the process. */
let indexes = 0;
let searches = 0;

/**
 * A code index whose build and searches run in the process's index thread; the spans and
 * renderings the prompts need are read on this thread, parsing each file on first use. Close it
 * when done (the thread holds its search).
 */
export class WorkerCodeIndex implements AgentIndex {
  private readonly pending = new Map<number, { resolve: (candidates: Candidate[]) => void; reject: (err: Error) => void }>();
  private readonly number = indexes++;
  /** What the worker's build found in the cache (null without one). */
  cacheStats: IndexCacheStats | null = null;
  /** Set once close() was asked for, so the thread's end is not reported as a failure. */
  private closed = false;
  /** Set when the thread ended: every later search fails with it at once. */
  private ended: Error | null = null;
  private readonly detailsCache = new Map<string, { details: SpanDetail[]; lines: string[] }>();
  private readonly linesCache = new Map<string, string[]>();
  private readonly normalized: Map<string, string>;

  private constructor(
    private readonly files: ReadonlyMap<string, string>,
    private readonly parser: PythonSpanParser,
    private readonly built: Promise<void>,
    private readonly thread: IndexThread,
    private readonly cache: IndexCache | null,
  ) {
    this.normalized = new Map([...files.keys()].map((p) => [normalizePath(p), p]));
  }

  /** The thread this index is searched in. */
  get worker(): Worker {
    return this.thread.worker;
  }

  /**
   * Sends the snapshot's Python files to the index thread in batches (yielding between them) and
   * waits for its search. With a cache (index-cache.ts) the thread parses only files it holds no
   * entry for, and this thread reads a file's spans from there too.
   */
  static async start(files: ReadonlyMap<string, string>, parser: PythonSpanParser, cache: IndexCacheOptions | null = null): Promise<WorkerCodeIndex> {
    const shared = (thread ??= new IndexThread());
    let onBuilt!: (error?: string) => void;
    const built = new Promise<void>((resolve, reject) => {
      onBuilt = (error) => (error ? reject(new Error(`the code index worker failed: ${error}`)) : resolve());
    });
    const index = new WorkerCodeIndex(files, parser, built, shared, cache && new IndexCache(cache));
    shared.listen(index.number, {
      reply: (message) => {
        if (message.kind === 'built') {
          index.cacheStats = message.cache ?? null;
          return onBuilt(message.error as string | undefined);
        }
        const waiting = index.pending.get(message.id!);
        if (!waiting) return;
        index.pending.delete(message.id!);
        shared.release();
        if (message.error && typeof message.error === 'object') {
          waiting.reject(message.error.request ? new SearchRequestError(message.error.message) : new Error(message.error.message));
        } else waiting.resolve(message.candidates ?? []);
      },
      ended: (code, err) => {
        const ended = err ?? new Error(`the code index worker ended (exit code ${code})${index.closed ? '' : ' before it was closed'}`);
        onBuilt(ended.message);
        for (const waiting of index.pending.values()) waiting.reject(ended);
        index.pending.clear();
        index.ended = ended;
      },
    });
    shared.worker.postMessage({ kind: 'start', index: index.number, cache });
    shared.hold();
    try {
      let batch: [string, string][] = [];
      let size = 0;
      for (const [filePath, text] of files) {
        if (!filePath.endsWith('.py')) continue; // the thread indexes Python files only
        batch.push([filePath, text]);
        size += text.length;
        if (size >= BATCH_CHARS) {
          shared.worker.postMessage({ kind: 'files', index: index.number, files: batch });
          [batch, size] = [[], 0];
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      if (batch.length > 0) shared.worker.postMessage({ kind: 'files', index: index.number, files: batch });
      shared.worker.postMessage({ kind: 'build', index: index.number });
      await built;
    } catch (err) {
      await index.close();
      throw err;
    } finally {
      shared.release();
    }
    return index;
  }

  /** Ranked in the index thread; the hits chosen here within the token budget (chooseHits), with this thread's encoder. */
  search(request: SearchRequest, options: SearchOptions = {}): Promise<SearchHit[]> {
    return this.built
      .then(
        () =>
          new Promise<Candidate[]>((resolve, reject) => {
            if (this.ended) return reject(this.ended);
            if (this.closed) return reject(new Error('the code index was closed'));
            const id = searches++;
            this.pending.set(id, { resolve, reject });
            this.thread.hold();
            this.thread.worker.postMessage({ kind: 'search', index: this.number, id, request, options });
          }),
      )
      .then((candidates) => chooseHits(candidates, options, (p) => this.linesOf(p)));
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

  /** Rejects what still waits and frees the index's search in the thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const waiting of this.pending.values()) {
      waiting.reject(new Error('the code index was closed'));
      this.thread.release();
    }
    this.pending.clear();
    this.thread.forget(this.number);
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
