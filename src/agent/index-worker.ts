import { parentPort } from 'node:worker_threads';
import { CodeIndex, SearchRequestError, type SearchOptions } from './code-index.js';
import { IndexCache, type IndexCacheOptions } from './index-cache.js';
import { PythonSpanParser } from './python-spans.js';
import type { SearchRequest } from './states/search.js';

/**
 * The code index of one repository snapshot, built and searched in a worker thread so that a
 * large repository's build (seconds) and a broad query never stall the event loop that drives
 * every LLM call and verification. Messages: `files` (a batch of [path, text]), `build`,
 * `search` (answered by `result` with the same id).
 */

type Message =
  | { kind: 'files'; files: [string, string][] }
  | { kind: 'build'; cache: IndexCacheOptions | null }
  | { kind: 'search'; id: number; request: SearchRequest; options: SearchOptions };

const port = parentPort!;
const files = new Map<string, string>();
let index: Promise<CodeIndex> | null = null;

port.on('message', (message: Message) => {
  if (message.kind === 'files') {
    for (const [path, text] of message.files) files.set(path, text);
    return;
  }
  if (message.kind === 'build') {
    const cache = message.cache && new IndexCache(message.cache);
    index = PythonSpanParser.create()
      .then((parser) => CodeIndex.build(files, parser, cache))
      .then((built) => {
        built.warm();
        // The texts are the index's now; the batches are not needed again.
        files.clear();
        return built;
      });
    index.then(
      () => {
        port.postMessage({ kind: 'built', cache: cache?.stats ?? null });
        // Bounding the cache is no search's business: after the build, without blocking searches.
        if (cache && cache.stats.written > 0) void cache.sweep().catch(() => {});
      },
      (err: unknown) => port.postMessage({ kind: 'built', error: (err as Error).message ?? String(err) }),
    );
    return;
  }
  if (message.kind === 'search') {
    void (async () => {
      try {
        // Ranked candidates: the asking thread counts their tokens (chooseHits) with its own encoder.
        const candidates = (await index!).rank(message.request, message.options);
        port.postMessage({ kind: 'result', id: message.id, candidates });
      } catch (err) {
        port.postMessage({ kind: 'result', id: message.id, error: { request: err instanceof SearchRequestError, message: (err as Error).message ?? String(err) } });
      }
    })();
  }
});
