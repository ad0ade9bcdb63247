import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeFileAtomic, writeJsonAtomic } from '../../src/store/atomic.js';

describe('atomic writes', () => {
  it('replaces the content and leaves no temp file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rft-atomic-'));
    const file = path.join(dir, 'state.json');
    writeFileSync(file, '{"old":true}\n');
    writeJsonAtomic(file, { phase: 'sample', n: 2 });
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ phase: 'sample', n: 2 });
    expect(readdirSync(dir)).toEqual(['state.json']);
  });

  it('a process killed while replacing leaves the old or the new content, never a mix', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rft-atomic-kill-'));
    const file = path.join(dir, 'state.json');
    writeJsonAtomic(file, { n: 0, pad: 'x'.repeat(100_000) });
    const atomicModule = path.resolve(import.meta.dirname, '../../dist/store/atomic.js');
    // The writer loops forever; the timeout SIGKILLs it somewhere inside a write.
    const script = `import { writeJsonAtomic } from ${JSON.stringify(atomicModule)};
      for (let n = 1; ; n++) writeJsonAtomic(${JSON.stringify(file)}, { n, pad: 'x'.repeat(100000) });`;
    for (let round = 0; round < 5; round++) {
      spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 150 + round * 37, killSignal: 'SIGKILL' });
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as { n: number; pad: string };
      expect(parsed.pad).toHaveLength(100_000);
    }
  });

  it('writes bytes as given', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rft-atomic-'));
    const file = path.join(dir, 'blob');
    writeFileAtomic(file, Buffer.from([0, 1, 2, 255]));
    expect([...readFileSync(file)]).toEqual([0, 1, 2, 255]);
  });
});
