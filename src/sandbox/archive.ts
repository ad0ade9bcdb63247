import { Readable } from 'node:stream';
import { extract, pack } from 'tar-stream';

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
    const content = typeof file.content === 'string' ? Buffer.from(file.content, 'utf8') : file.content;
    await new Promise<void>((resolve, reject) => {
      archive.entry({ name: file.name, mode: file.mode ?? 0o644, size: content.length, mtime: new Date(0) }, content, (err) => (err ? reject(err) : resolve()));
    });
  }
  archive.finalize();
  return done;
}

/** The regular files of a tar stream, by name. */
export async function filesOfTar(stream: NodeJS.ReadableStream, maxBytes = 64 * 1024 * 1024): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  const extractor = extract();
  let total = 0;
  const finished = new Promise<void>((resolve, reject) => {
    extractor.on('entry', (header, body, next) => {
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

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return Buffer.concat(chunks);
}
