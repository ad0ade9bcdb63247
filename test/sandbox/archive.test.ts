import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { extractFileTo, filesOfTar, tarOf } from '../../src/sandbox/archive.js';

/** A tar stream as the engine's archive API sends it, in small chunks. */
function streamOf(tar: Buffer): NodeJS.ReadableStream {
  const chunks: Buffer[] = [];
  for (let at = 0; at < tar.length; at += 4096) chunks.push(tar.subarray(at, at + 4096));
  return Readable.from(chunks);
}

describe('tar archives', () => {
  it('extractFileTo streams the named file into place, byte for byte, and reports a missing one', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rft-extract-'));
    const big = Buffer.alloc(3 * 1024 * 1024 + 17, 0);
    for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
    const tar = await tarOf([
      { name: 'other.txt', content: 'not this one' },
      { name: 'snapshot.tar', content: big },
    ]);
    const dest = path.join(dir, 'cached.tar');
    expect(await extractFileTo(streamOf(tar), 'snapshot.tar', dest, 8 * 1024 * 1024)).toBe(true);
    expect(readFileSync(dest).equals(big)).toBe(true);
    expect(await extractFileTo(streamOf(tar), 'absent.tar', path.join(dir, 'none.tar'), 8 * 1024 * 1024)).toBe(false);
    expect(readdirSync(dir)).toEqual(['cached.tar']);
  });

  it('extractFileTo over the size limit fails and leaves neither the file nor a temp file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rft-extract-big-'));
    const tar = await tarOf([{ name: 'snapshot.tar', content: Buffer.alloc(2 * 1024 * 1024, 7) }]);
    await expect(extractFileTo(streamOf(tar), 'snapshot.tar', path.join(dir, 'cached.tar'), 1024 * 1024)).rejects.toThrow(/more than 1048576 bytes/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('filesOfTar passes over files larger than maxFileBytes without keeping them', async () => {
    const tar = await tarOf([
      { name: 'small.py', content: 'x = 1\n' },
      { name: 'data.bin', content: Buffer.alloc(512 * 1024, 1) },
      { name: 'after.py', content: 'y = 2\n' },
    ]);
    const files = await filesOfTar(streamOf(tar), 64 * 1024 * 1024, 100 * 1024);
    expect([...files.keys()].sort()).toEqual(['after.py', 'small.py']);
    expect(files.get('after.py')!.toString()).toBe('y = 2\n');
  });

  it('tarOf writes a string holding escaped bytes as those bytes', async () => {
    const tar = await tarOf([{ name: 'model.patch', content: '-caf\uDCE9\n' }]);
    const files = await filesOfTar(streamOf(tar));
    expect(files.get('model.patch')!.equals(Buffer.from('-caf\u00e9\n', 'latin1'))).toBe(true);
  });
});
