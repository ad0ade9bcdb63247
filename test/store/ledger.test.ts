import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Ledger, LedgerCorruptError, readRecords } from '../../src/store/ledger.js';

const Row = z.object({ id: z.number().int(), text: z.string() });

function freshFile(): string {
  return path.join(mkdtempSync(path.join(tmpdir(), 'rft-ledger-')), 'rows.jsonl');
}

describe('ledger', () => {
  it('appends whole lines and reads them back in order', () => {
    const file = freshFile();
    const { ledger } = Ledger.open(file, Row);
    expect([...readRecords(file, Row)]).toEqual([]);
    ledger.append({ id: 1, text: 'a' });
    ledger.append({ id: 2, text: 'line\nbreak' });
    ledger.close();
    expect(readFileSync(file, 'utf8')).toBe('{"id":1,"text":"a"}\n{"id":2,"text":"line\\nbreak"}\n');
    expect([...readRecords(file, Row)]).toEqual([
      { id: 1, text: 'a' },
      { id: 2, text: 'line\nbreak' },
    ]);
  });

  it('refuses to append a record that does not fit its schema', () => {
    const { ledger } = Ledger.open(freshFile(), Row);
    expect(() => ledger.append({ id: 1.5, text: 'x' } as never)).toThrow();
    ledger.close();
  });

  it('drops a torn last line on open, keeps everything before it, and appends after it', () => {
    const file = freshFile();
    writeFileSync(file, '{"id":1,"text":"a"}\n{"id":2,"text":"b"}\n{"id":3,"te');
    const torn: number[] = [];
    const { ledger, droppedTornBytes } = Ledger.open(file, Row, (bytes) => torn.push(bytes));
    expect([...readRecords(file, Row)].map((r) => r.id)).toEqual([1, 2]);
    expect(droppedTornBytes).toBe('{"id":3,"te'.length);
    expect(torn).toEqual([droppedTornBytes]);
    ledger.append({ id: 3, text: 'c' });
    ledger.close();
    expect([...readRecords(file, Row)].map((r) => r.id)).toEqual([1, 2, 3]);
  });

  it('drops a last line missing only its newline (its writer never returned)', () => {
    const file = freshFile();
    writeFileSync(file, '{"id":1,"text":"a"}\n{"id":2,"text":"b"}');
    expect([...readRecords(file, Row)].map((r) => r.id)).toEqual([1]); // a reader skips it, changing nothing
    const { droppedTornBytes } = Ledger.open(file, Row);
    expect([...readRecords(file, Row)].map((r) => r.id)).toEqual([1]);
    expect(droppedTornBytes).toBeGreaterThan(0);
  });

  it('a file holding only a torn line opens empty', () => {
    const file = freshFile();
    writeFileSync(file, '{"id":');
    Ledger.open(file, Row).ledger.close();
    expect([...readRecords(file, Row)]).toEqual([]);
    expect(readFileSync(file, 'utf8')).toBe('');
  });

  it('a bad line in the middle is an error naming file and line, and nothing is changed', () => {
    const file = freshFile();
    const content = '{"id":1,"text":"a"}\nnot json\n{"id":3,"text":"c"}\n';
    writeFileSync(file, content);
    expect(() => [...readRecords(file, Row)]).toThrow(LedgerCorruptError);
    expect(() => [...readRecords(file, Row)]).toThrow(`${file}:2: not valid JSON`);
    expect(readFileSync(file, 'utf8')).toBe(content);
  });

  it('a record of the wrong shape names its field', () => {
    const file = freshFile();
    writeFileSync(file, '{"id":1,"text":"a"}\n{"id":"two","text":"b"}\n');
    expect(() => [...readRecords(file, Row)]).toThrow(/rows\.jsonl:2: field id:/);
  });

  it('reads record by record with memory bounded by the longest line, not the file (lines longer than a read chunk too)', async () => {
    const { ledgerLines } = await import('../../src/store/ledger.js');
    const file = freshFile();
    const long = 'x'.repeat(100_000);
    writeFileSync(file, `{"id":1,"text":"a"}\n{"id":2,"text":"${long}"}\n{"id":3,"text":"c"}\n{"id":4`);
    const lines = [...ledgerLines(file, 1024)].map((l) => ({ offset: l.offset, length: l.length, line: l.line }));
    expect(lines.map((l) => l.line)).toEqual([1, 2, 3]);
    expect(lines[1]).toEqual({ offset: 20, length: 100_018, line: 2 });
    expect([...readRecords(file, Row)].map((r) => r.text.length)).toEqual([1, 100_000, 1]);
  });

  it('appends from a second opener land after the first', () => {
    const file = freshFile();
    const first = Ledger.open(file, Row).ledger;
    first.append({ id: 1, text: 'a' });
    appendFileSync(file, '{"id":2,"text":"b"}\n');
    first.append({ id: 3, text: 'c' });
    first.close();
    expect([...readRecords(file, Row)].map((r) => r.id)).toEqual([1, 2, 3]);
  });
});

describe('a ledger shared by a hard link (rft fork)', () => {
  it('is copied to an inode of its own before its first append; the other link is untouched', async () => {
    const { linkSync, statSync } = await import('node:fs');
    const parent = freshFile();
    const first = Ledger.open(parent, Row).ledger;
    first.append({ id: 1, text: 'a' });
    first.close();
    const fork = path.join(mkdtempSync(path.join(tmpdir(), 'rft-fork-')), 'rows.jsonl');
    linkSync(parent, fork);
    const opened = Ledger.open(fork, Row);
    expect([...readRecords(fork, Row)]).toEqual([{ id: 1, text: 'a' }]);
    expect(statSync(fork).ino).toBe(statSync(parent).ino); // opening alone keeps the sharing
    opened.ledger.append({ id: 2, text: 'b' });
    opened.ledger.close();
    expect(statSync(fork).ino).not.toBe(statSync(parent).ino);
    expect(readFileSync(parent, 'utf8')).toBe('{"id":1,"text":"a"}\n');
    expect([...readRecords(fork, Row)].map((r) => r.id)).toEqual([1, 2]);
  });

  it('dropping a torn line in a shared ledger does not cut the other link', async () => {
    const { linkSync } = await import('node:fs');
    const parent = freshFile();
    writeFileSync(parent, '{"id":1,"text":"a"}\n{"id":2,"te');
    const fork = path.join(mkdtempSync(path.join(tmpdir(), 'rft-fork-')), 'rows.jsonl');
    linkSync(parent, fork);
    Ledger.open(fork, Row).ledger.close();
    expect([...readRecords(fork, Row)]).toHaveLength(1);
    expect(readFileSync(parent, 'utf8')).toBe('{"id":1,"text":"a"}\n{"id":2,"te');
  });
});
