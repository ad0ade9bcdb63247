import { parentPort } from 'node:worker_threads';
import { entryFor, IndexCache, type IndexCacheOptions } from './index-cache.js';
import { PythonSpanParser } from './python-spans.js';
import { isTestPath, normalizePath, SpanSearch, type SearchableFile, type SearchOptions } from './span-search.js';
import { SearchRequestError } from './search-request-error.js';
import type { SearchRequest } from './states/search.js';

/**
 * The searches of the process's code indexes, built and answered in one worker thread so that a
 * large repository's build (seconds) and a broad query never stall the event loop that drives
 * every LLM call and verification. One thread serves every index (worker-index.ts numbers them):
 * its modules, the parser's wasm and its isolate are paid once per process, not once per instance.
 *
 * Messages, handled one at a time in order, each naming its index: `start`, `files` (a batch of
 * [path, text] of Python files: each entry is made or read from the cache at once and the text
 * dropped, so the thread never holds a snapshot; a batch is small, so another index's search
 * waits for one batch at most), `build` (answered by `built`), `search` (answered by `result`
 * with the same id) and `drop`.
 */

type Message =
  | { kind: 'start'; index: number; cache: IndexCacheOptions | null }
  | { kind: 'files'; index: number; files: [string, string][] }
  | { kind: 'build'; index: number }
  | { kind: 'search'; index: number; id: number; request: SearchRequest; options: SearchOptions }
  | { kind: 'drop'; index: number };

interface IndexState {
  cache: IndexCache | null;
  /** The searchable files while the index is built, by normalised path. */
  pending: Map<string, SearchableFile>;
  search: SpanSearch | null;
  /** A batch that failed (the parser could not load), reported when the build is asked for. */
  failure: string | null;
}

const port = parentPort!;
let parser: Promise<PythonSpanParser> | null = null;
const indexes = new Map<number, IndexState>();

function messageOf(err: unknown): string {
  return (err as Error)?.message ?? String(err);
}

async function handle(message: Message): Promise<void> {
  const { index } = message;
  if (message.kind === 'start') {
    indexes.set(index, { cache: message.cache && new IndexCache(message.cache), pending: new Map(), search: null, failure: null });
    return;
  }
  if (message.kind === 'drop') {
    indexes.delete(index);
    return;
  }
  const state = indexes.get(index);
  if (message.kind === 'files') {
    if (!state) return;
    try {
      parser ??= PythonSpanParser.create();
      const spanParser = await parser;
      for (const [filePath, text] of message.files) {
        const path = normalizePath(filePath);
        if (!path.endsWith('.py')) continue;
        // Test files are never searched, but their entries are cached for the asking thread's views.
        const entry = entryFor(text, spanParser, state.cache);
        if (!isTestPath(path)) state.pending.set(path, { path, entry, empty: text === '' });
      }
    } catch (err) {
      // The batch is lost, so the index would be wrong: the build reports it.
      state.failure ??= messageOf(err);
    }
    return;
  }
  if (message.kind === 'build') {
    if (!state) return;
    try {
      if (state.failure !== null) throw new Error(state.failure);
      state.search = SpanSearch.build(state.pending.values());
      state.pending.clear();
      state.search.warm();
    } catch (err) {
      port.postMessage({ kind: 'built', index, error: messageOf(err) });
      return;
    }
    port.postMessage({ kind: 'built', index, cache: state.cache?.stats ?? null });
    // Bounding the cache is no search's business: after the build, without blocking searches.
    if (state.cache && state.cache.stats.written > 0) void state.cache.sweep().catch(() => {});
    return;
  }
  try {
    if (!state?.search) throw new Error('the code index worker has no such index built');
    // Ranked candidates: the asking thread counts their tokens (chooseHits) with its own encoder.
    port.postMessage({ kind: 'result', index, id: message.id, candidates: state.search.rank(message.request, message.options) });
  } catch (err) {
    port.postMessage({ kind: 'result', index, id: message.id, error: { request: err instanceof SearchRequestError, message: messageOf(err) } });
  }
}

let queue: Promise<void> = Promise.resolve();

port.on('message', (message: Message) => {
  queue = queue.then(() => handle(message));
});
