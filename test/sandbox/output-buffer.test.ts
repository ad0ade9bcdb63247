import { describe, expect, it } from 'vitest';
import { CappedOutput } from '../../src/sandbox/output-buffer.js';
import { parseByteSize } from '../../src/sandbox/limits.js';

describe('capped output', () => {
  it('keeps everything under the cap', () => {
    const out = new CappedOutput(100);
    out.push(Buffer.from('hello '));
    out.push(Buffer.from('world'));
    expect(out.text()).toBe('hello world');
    expect(out.truncated).toBe(false);
  });

  it('keeps the head and the tail past the cap and says how much was dropped', () => {
    const out = new CappedOutput(20);
    out.push(Buffer.from('START-0123456789'));
    for (let i = 0; i < 1000; i++) out.push(Buffer.from('x'.repeat(10)));
    out.push(Buffer.from('0123456789-END'));
    expect(out.truncated).toBe(true);
    expect(out.totalBytes).toBe(16 + 10_000 + 14);
    const text = out.text();
    expect(text.startsWith('START-0123')).toBe(true);
    expect(text.endsWith('56789-END')).toBe(true);
    expect(text).toMatch(/\[rft: \d+ bytes of output truncated\]/);
    expect(text.length).toBeLessThan(100);
  });
});

describe('byte sizes', () => {
  it('reads Docker-style sizes in binary units', () => {
    expect(parseByteSize('512m')).toBe(512 * 1024 ** 2);
    expect(parseByteSize('4g')).toBe(4 * 1024 ** 3);
    expect(parseByteSize('1.5GiB')).toBe(1.5 * 1024 ** 3);
    expect(parseByteSize('100')).toBe(100);
    expect(() => parseByteSize('lots')).toThrow(/not a size/);
  });
});
