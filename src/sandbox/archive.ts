import { Readable } from 'node:stream';
import { extract, pack } from 'tar-stream';
import { writeStreamAtomic } from '../store/atomic.js';
import { encodeText } from '../util/byte-text.js';

export interface FileEntry {
  /** Path inside the archive, relative (no leading slash). */
  name: string;
  content: string | Buffer;
  mode?: number;
}

/** A tar archive of the given files: how content reaches a container, never via shell arguments. */
export async function tarOf(files: readonly FileEntry[]): Promise<Buffer> {
  const archive = pack();
  const done = collect(archive as unknown as AsyncIterable<Buffer>);
  for (const file of files) {
    // encodeText: a patch made from a file that is not UTF-8 carries that file's own bytes.
    const content = typeof file.content === 'string' ? encodeText(file.content) : file.content;
    await new Promise<void>((resolve, reject) => {
      archive.entry({ name: file.name, mode: file.mode ?? 0o644, size: content.length, mtime: new Date(0) }, content, (err) => (err ? reject(err) : resolve()));
    });
  }
  archive.finalize();
  return done;
}

/**
 * The regular files of a tar stream, by name. Files over `maxFileBytes` are passed over unread
 * (a repository's large data files never reach memory); `maxBytes` bounds what is kept.
 */
export async function filesOfTar(stream: NodeJS.ReadableStream, maxBytes = 64 * 1024 * 1024, maxFileBytes = Infinity): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const extractor = extract();
  let total = 0;
  const finished = new Promise<void>((resolve, reject) => {
    extractor.on('entry', (header, body, next) => {
      if ((header.size ?? 0) > maxFileBytes) return passOver(body, next, reject);
      const chunks: Buffer[] = [];
      body.on('data', (data: unknown) => {
        const chunk = data as Buffer;
        total += chunk.length;
        if (total > maxBytes) {
          extractor.destroy(new Error(`archive larger than ${maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      body.on('end', () => {
        if (header.type === 'file') files.set(header.name, Buffer.concat(chunks));
        next();
      });
      body.on('error', reject);
    });
    extractor.on('finish', resolve);
    extractor.on('error', reject);
  });
  (stream as Readable).pipe(extractor);
  await finished;
  return files;
}

/**
 * Streams the regular file `name` of a tar stream (the archive the engine makes of one path)
 * into `dest` (atomically), never holding it whole; false when the archive has no such file.
 */
export async function extractFileTo(stream: NodeJS.ReadableStream, name: string, dest: string, maxBytes: number): Promise<boolean> {
  const extractor = extract();
  let found = false;
  const finished = new Promise<void>((resolve, reject) => {
    extractor.on('entry', (header, body, next) => {
      if (found || header.type !== 'file' || header.name.replace(/^\.?\//, '') !== name) return passOver(body, next, reject);
      found = true;
      writeStreamAtomic(dest, body as AsyncIterable<Buffer>, maxBytes).then(() => next(), (err: unknown) => {
        extractor.destroy(err as Error);
        reject(err);
      });
    });
    extractor.on('finish', resolve);
    extractor.on('error', reject);
  });
  (stream as Readable).pipe(extractor);
  await finished;
  return found;
}

/** Drains an entry the caller does not want, then moves the extractor on to the next one. */
function passOver(body: { on(event: 'end' | 'error', listener: (err?: unknown) => void): unknown; resume(): unknown }, next: () => void, reject: (err: unknown) => void): void {
  body.on('end', next);
  body.on('error', reject);
  body.resume();
}

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}
