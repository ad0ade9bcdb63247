import { parentPort } from 'node:worker_threads';
import { CodeIndex, SearchRequestError, type SearchOptions } from './code-index.js';
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
  | { kind: 'build' }
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
    index = PythonSpanParser.create()
      .then((parser) => CodeIndex.build(files, parser))
      .then((built) => (built.warm(), built));
    index.then(
      () => port.postMessage({ kind: 'built' }),
      (err: unknown) => port.postMessage({ kind: 'built', error: (err as Error).message ?? String(err) }),
    );
    return;
  }
  if (message.kind === 'search') {
    void (async () => {
      try {
        const hits = (await index!).search(message.request, message.options);
        port.postMessage({ kind: 'result', id: message.id, hits });
      } catch (err) {
        port.postMessage({ kind: 'result', id: message.id, error: { request: err instanceof SearchRequestError, message: (err as Error).message ?? String(err) } });
      }
    })();
  }
});
