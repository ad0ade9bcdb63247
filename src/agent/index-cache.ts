import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { readdir, stat, unlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { rftCacheDir } from '../util/cache-dir.js';
import { FileEntrySchema, fileEntryOf, type FileEntry } from './file-entry.js';
import type { PythonSpanParser } from './python-spans.js';

/**
 * The code index's files on disk, kept by the hash of their text, so that an instance whose
 * repository shares most files with one indexed before (neighbouring base commits) parses only
 * the files that changed. Layout: <dir>/<version>/<first 2 hex of the key>/<key>.json, one
 * FileEntry per file.
 *
 * - Versioned: <version> is a hash of the code that makes an entry (file-entry, python-spans and
 *   the tree-sitter grammar), so a new rft never reads an older one's entries.
 * - Safe for concurrent runs: an entry is written to a temp file beside it and renamed over it; a
 *   reader sees a whole entry or none. Entries are not fsync'd: a crash can leave an empty or cut
 *   file, and any entry that does not parse, fails its schema or names another key is rebuilt
 *   (and rewritten), never trusted.
 * - Bounded: after a build that wrote entries, the whole cache is swept; past maxBytes the least
 *   recently used entries (by mtime, refreshed on every hit) are removed down to 80% of it.
 */

export const IndexCacheOptionsSchema = z.object({ dir: z.string(), maxBytes: z.number().int().nonnegative() }).strict();
export type IndexCacheOptions = z.infer<typeof IndexCacheOptionsSchema>;

/** Default bound of the index cache (RFT_INDEX_CACHE_MB): a large repository takes ~100 MB. */
export const DEFAULT_INDEX_CACHE_MB = 2048;

/** Where an entry is stored: the key is checked on read, so a file moved or copied in is not trusted. */
const StoredSchema = z.object({ key: z.string(), entry: FileEntrySchema }).strict();

/** Temp files older than this were left by a process that died mid-write. */
const STALE_TEMP_MS = 3_600_000;

/**
 * The index cache's settings from the environment: $RFT_INDEX_CACHE_MB bounds it (0 turns it
 * off; default DEFAULT_INDEX_CACHE_MB), under rft's cache folder (see rftCacheDir).
 */
export function indexCacheOptions(env: NodeJS.ProcessEnv = process.env): IndexCacheOptions | null {
  const raw = env.RFT_INDEX_CACHE_MB;
  let mb = DEFAULT_INDEX_CACHE_MB;
  if (raw !== undefined && raw.trim() !== '') {
    mb = Number(raw);
    if (!Number.isFinite(mb) || mb < 0) throw new Error(`RFT_INDEX_CACHE_MB must be a number of megabytes (0 turns the index cache off), not ${JSON.stringify(raw)}`);
  }
  if (mb === 0) return null;
  return { dir: rftCacheDir('index', env), maxBytes: Math.round(mb * 2 ** 20) };
}

let fingerprint: string | undefined;

/** The hash of the code an entry depends on (see the module comment). */
export function indexCodeVersion(): string {
  if (fingerprint) return fingerprint;
  const hash = createHash('sha256');
  hash.update('file-entry format 1\0');
  for (const name of ['file-entry', 'python-spans']) {
    for (const ext of ['.js', '.ts']) {
      const file = fileURLToPath(new URL(`./${name}${ext}`, import.meta.url));
      if (existsSync(file)) {
        hash.update(readFileSync(file));
        break;
      }
    }
  }
  const require = createRequire(import.meta.url);
  for (const dep of ['tree-sitter-python/tree-sitter-python.wasm', 'web-tree-sitter']) hash.update(readFileSync(require.resolve(dep)));
  fingerprint = hash.digest('hex').slice(0, 16);
  return fingerprint;
}

/** The key of a file's text. */
export function entryKey(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export interface IndexCacheStats {
  hits: number;
  misses: number;
  /** Entries that were there but not trusted (cut, corrupt, another key). */
  rejected: number;
  written: number;
  /** Writes that failed (disk full, no permission): the build goes on without them. */
  writeErrors: number;
}

export class IndexCache {
  readonly stats: IndexCacheStats = { hits: 0, misses: 0, rejected: 0, written: 0, writeErrors: 0 };
  private readonly root: string;
  private readonly madeDirs = new Set<string>();

  constructor(
    readonly options: IndexCacheOptions,
    readonly version: string = indexCodeVersion(),
  ) {
    this.root = path.join(options.dir, version);
  }

  pathOf(key: string): string {
    return path.join(this.root, key.slice(0, 2), `${key}.json`);
  }

  /** The entry stored under the key, or undefined (missing, or not to be trusted). */
  get(key: string): FileEntry | undefined {
    const file = this.pathOf(key);
    let raw: string;
    try {
      raw = readFileSync(file, 'utf8');
    } catch {
      this.stats.misses++;
      return undefined;
    }
    let stored: z.infer<typeof StoredSchema> | undefined;
    try {
      const parsed = StoredSchema.safeParse(JSON.parse(raw));
      if (parsed.success && parsed.data.key === key && parsed.data.entry.terms.length === parsed.data.entry.spans.length) stored = parsed.data;
    } catch {
      stored = undefined;
    }
    if (!stored) {
      this.stats.rejected++;
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    try {
      const now = new Date();
      utimesSync(file, now, now); // recently used: the sweep keeps it
    } catch {
      // removed meanwhile by another run's sweep: the entry read is whole all the same
    }
    return stored.entry;
  }

  /** Stores an entry (temp file + rename); a failure is counted, never thrown. */
  put(key: string, entry: FileEntry): void {
    const file = this.pathOf(key);
    const dir = path.dirname(file);
    const temp = path.join(dir, `.${key}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      if (!this.madeDirs.has(dir)) {
        mkdirSync(dir, { recursive: true });
        this.madeDirs.add(dir);
      }
      writeFileSync(temp, JSON.stringify({ key, entry }));
      renameSync(temp, file);
      this.stats.written++;
    } catch {
      this.stats.writeErrors++;
      try {
        unlinkSync(temp);
      } catch {
        // never created
      }
    }
  }

  /**
   * Removes the least recently used entries (of every version) while the cache is over its bound,
   * down to 80% of it, and temp files left by dead writers. Another run sweeping at the same time
   * removes some of the same files: a missing file is skipped.
   */
  async sweep(now = Date.now()): Promise<{ bytes: number; removed: number }> {
    const files: { file: string; size: number; mtimeMs: number }[] = [];
    const walk = async (dir: string, depth: number): Promise<void> => {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        return;
      }
      for (const name of names) {
        const full = path.join(dir, name);
        if (depth < 2) {
          await walk(full, depth + 1);
          continue;
        }
        try {
          const info = await stat(full);
          if (!info.isFile()) continue;
          if (name.endsWith('.tmp')) {
            if (now - info.mtimeMs > STALE_TEMP_MS) await unlink(full).catch(() => {});
            continue;
          }
          files.push({ file: full, size: info.size, mtimeMs: info.mtimeMs });
        } catch {
          // removed meanwhile
        }
      }
    };
    await walk(this.options.dir, 0);
    let bytes = files.reduce((n, f) => n + f.size, 0);
    let removed = 0;
    if (bytes <= this.options.maxBytes) return { bytes, removed };
    const target = this.options.maxBytes * 0.8;
    files.sort((a, b) => a.mtimeMs - b.mtimeMs || (a.file < b.file ? -1 : 1));
    for (const f of files) {
      if (bytes <= target) break;
      await unlink(f.file).catch(() => {});
      bytes -= f.size;
      removed++;
    }
    return { bytes, removed };
  }
}

/** A Python file's entry: from the cache when it holds one for this text, else parsed (and stored there). */
export function entryFor(text: string, parser: PythonSpanParser, cache: IndexCache | null): FileEntry {
  if (!cache) return fileEntryOf(text, parser);
  const key = entryKey(text);
  const cached = cache.get(key);
  if (cached) return cached;
  const entry = fileEntryOf(text, parser);
  cache.put(key, entry);
  return entry;
}
