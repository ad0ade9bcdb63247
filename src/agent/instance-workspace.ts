import type Docker from 'dockerode';
import type { AgentIndex } from './code-index.js';
import { indexCacheOptions } from './index-cache.js';
import { PythonSpanParser } from './python-spans.js';
import { takeSnapshot } from './snapshot.js';
import { WorkerCodeIndex } from './worker-index.js';

/** What every sample of one instance shares: the repository snapshot, its code index and the parser. */
export interface PreparedInstance {
  image: string;
  files: ReadonlyMap<string, string>;
  index: AgentIndex;
  parser: PythonSpanParser;
}

let sharedParser: Promise<PythonSpanParser> | null = null;

/** The parser loads its grammar once per process. */
export function spanParser(): Promise<PythonSpanParser> {
  sharedParser ??= PythonSpanParser.create();
  return sharedParser;
}

/** An index nobody asked anything for this long is closed (its worker holds the whole index). */
const IDLE_MS = 120_000;

interface Cached {
  prepared: Promise<PreparedInstance & { index: WorkerCodeIndex }>;
  lastUsed: number;
  /** Callers that have not released it yet. */
  users: number;
}

const byImage = new Map<string, Cached>();
let sweeper: NodeJS.Timeout | null = null;

/**
 * The snapshot and code index of a task image, made once per image and shared by every sample
 * of its instance (and by a later call for the same image while it is in use). The index is
 * built and searched in a worker thread from the files' cached entries (index-cache.ts: only files
 * no earlier instance had are parsed). It is closed when its last user releases it (a rollout,
 * once the instance's samples are taken: its search no longer holds the index thread's memory),
 * or after IDLE_MS without use by a caller that never does.
 */
export async function prepareInstance(docker: Docker, image: string, labels: Record<string, string> = {}): Promise<PreparedInstance & { release(): void }> {
  // By image id: a tag rebuilt meanwhile is another snapshot.
  const key = (await docker.getImage(image).inspect()).Id;
  let cached = byImage.get(key);
  if (!cached) {
    const prepared = (async () => {
      const snapshot = await takeSnapshot(docker, image, { labels });
      const parser = await spanParser();
      return { image, files: snapshot.files, index: await WorkerCodeIndex.start(snapshot.files, parser, indexCacheOptions()), parser };
    })();
    cached = { prepared, lastUsed: Date.now(), users: 0 };
    byImage.set(key, cached);
    prepared.catch(() => byImage.delete(key));
    sweeper ??= setInterval(sweep, IDLE_MS / 4).unref();
  }
  const entry = cached;
  entry.users += 1;
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    if (--entry.users > 0 || byImage.get(key) !== entry) return;
    byImage.delete(key);
    void entry.prepared.then((p) => p.index.close()).catch(() => {});
  };
  let prepared: PreparedInstance & { index: WorkerCodeIndex };
  try {
    prepared = await entry.prepared;
  } catch (err) {
    release();
    throw err;
  }
  const index = prepared.index;
  // Every use of the index keeps it alive.
  const touch = () => (entry.lastUsed = Date.now());
  const tracked: AgentIndex = {
    search: (request, options) => (touch(), index.search(request, options)),
    file: (p) => (touch(), index.file(p)),
    details: (p) => (touch(), index.details(p)),
    renderFile: (p, ids, text) => (touch(), index.renderFile(p, ids, text)),
  };
  touch();
  return { ...prepared, index: tracked, release };
}

function sweep(): void {
  const now = Date.now();
  for (const [key, cached] of byImage) {
    if (now - cached.lastUsed < IDLE_MS) continue;
    byImage.delete(key);
    void cached.prepared.then((p) => p.index.close()).catch(() => {});
  }
  if (byImage.size === 0 && sweeper) {
    clearInterval(sweeper);
    sweeper = null;
  }
}
