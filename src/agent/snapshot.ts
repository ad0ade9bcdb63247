import { createReadStream, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { filesOfTar } from '../sandbox/archive.js';
import { LABEL, Sandbox } from '../sandbox/container.js';
import { decodeBytes } from '../util/byte-text.js';
import { rftCacheDir } from '../util/cache-dir.js';

/** Files bigger than this are not source code the agent should read. */
const MAX_FILE_BYTES = 1024 * 1024;
const MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024;

export interface RepoSnapshot {
  imageId: string;
  /** Text files tracked at HEAD of /testbed, by repository-relative path. Symlinks and binaries are left out. */
  files: ReadonlyMap<string, string>;
}

export function snapshotCacheDir(): string {
  return rftCacheDir('snapshots');
}

/**
 * The tracked files of /testbed at HEAD, taken once per task image (`git archive` in a throwaway
 * container) and cached on disk by image id; every sample of the instance shares it read-only.
 */
export async function takeSnapshot(docker: Docker, image: string, options: { cacheDir?: string; labels?: Record<string, string> } = {}): Promise<RepoSnapshot> {
  const imageId = (await docker.getImage(image).inspect()).Id;
  const cacheDir = options.cacheDir ?? snapshotCacheDir();
  const cached = path.join(cacheDir, `${imageId.replace(/[^A-Za-z0-9]+/g, '_')}.tar`);
  if (!existsSync(cached)) {
    const box = await Sandbox.start(docker, {
      image,
      labels: { ...(options.labels ?? {}), [LABEL.purpose]: 'snapshot' },
      memoryBytes: 512 * 1024 * 1024,
      cpus: 1,
      pids: 64,
    });
    try {
      const made = await box.exec(['git', '-C', '/testbed', 'archive', '--format=tar', '-o', '/tmp/rft-snapshot.tar', 'HEAD'], { timeoutMs: 300_000 });
      if (made.exitCode !== 0) throw new Error(`git archive failed in ${image}: ${made.output.slice(-500)}`);
      // Streamed from the engine into the cache file: a large repository's archive is never held whole.
      mkdirSync(cacheDir, { recursive: true });
      if (!(await box.copyFileOut('/tmp/rft-snapshot.tar', cached, MAX_ARCHIVE_BYTES))) throw new Error(`git archive wrote nothing in ${image}`);
    } finally {
      await box.remove();
    }
  }
  // The archive is read as a stream from the cache file: only the files small enough to keep are ever held.
  return { imageId, files: textFiles(await filesOfTar(createReadStream(cached), MAX_ARCHIVE_BYTES, MAX_FILE_BYTES)) };
}

/**
 * The regular text files of the archive. Only regular files ever reach it (filesOfTar drops
 * symlinks, hard links and devices, so a link in the repository to /etc/passwd is neither read
 * nor offered for editing), and a name that is absolute, climbs out with `..` or lies in .git is
 * dropped too: `git archive` never writes one, a tampered cache file could.
 */
function textFiles(entries: Map<string, Buffer>): Map<string, string> {
  const files = new Map<string, string>();
  for (const [name, content] of [...entries].sort(([a], [b]) => a.localeCompare(b))) {
    if (content.length > MAX_FILE_BYTES || content.includes(0)) continue;
    const clean = name.replace(/^(\.\/)+/, '');
    const parts = clean.split(/[\\/]/);
    if (clean.startsWith('/') || parts.includes('..') || parts.some((p) => p.toLowerCase() === '.git')) continue;
    // Byte-exact: a file that is not UTF-8 keeps its bytes through edits and into the patch.
    files.set(clean, decodeBytes(content));
  }
  return files;
}
