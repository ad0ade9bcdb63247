import { existsSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodeIndex } from '../../src/agent/code-index.js';
import { fileEntryOf } from '../../src/agent/file-entry.js';
import { entryKey, IndexCache, indexCacheOptions } from '../../src/agent/index-cache.js';
import { PythonSpanParser } from '../../src/agent/python-spans.js';
import type { SearchRequest } from '../../src/agent/states/search.js';
import { minigymRepoFiles } from '../helpers/minigym.js';

let parser: PythonSpanParser;
let dir: string;

beforeAll(async () => {
  parser = await PythonSpanParser.create();
  dir = mkdtempSync(path.join(tmpdir(), 'rft-index-cache-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Two repositories in one tree, so the index has some size. */
function treeA(): Map<string, string> {
  const files = new Map<string, string>();
  for (const repo of ['iniform', 'ledgerlite']) for (const [p, text] of minigymRepoFiles(repo)) files.set(`${repo}/${p}`, text);
  return files;
}

/** Tree A at a neighbouring commit: a few files changed, one added, one removed. */
function treeB(): Map<string, string> {
  const files = treeA();
  const pythonFiles = [...files.keys()].filter((p) => p.endsWith('.py') && !p.includes('/tests/'));
  const [changed1, changed2, removed] = [pythonFiles[1]!, pythonFiles[4]!, pythonFiles[6]!];
  files.set(changed1, `${files.get(changed1)}\n\nclass QuoteCache:\n    """Remembers quoted values."""\n\n    def quote(self, value):\n        return repr(value)\n`);
  files.set(changed2, files.get(changed2)!.replace(/def /, 'def renamed_helper_x(a, b):\n    return a + b\n\n\ndef '));
  files.delete(removed);
  files.set('ledgerlite/ledgerlite/ledger_fx.py', 'import math\n\n\ndef convert_rate(amount, rate):\n    """Converts an amount at a rate."""\n    return math.floor(amount * rate)\n');
  return files;
}

const req = (r: Partial<SearchRequest>): SearchRequest => ({ class_names: [], function_names: [], ...r });

/** Every kind of search the agent makes (SearchCode's requests and the likely files). */
const REQUESTS: [SearchRequest, { maxHits?: number; maxTokens?: number }?][] = [
  [req({ class_names: ['Section'] })],
  [req({ class_names: ['QuoteCache'] })],
  [req({ function_names: ['quote', 'unquote'] })],
  [req({ function_names: ['convert_rate', 'renamed_helper_x'] })],
  [req({ class_names: ['QuoteCache', 'Money'], function_names: ['quote'] })],
  [req({ class_names: ['Nowhere'], function_names: ['quote'] })],
  [req({ code_snippet: 'def   quote(value' })],
  [req({ code_snippet: 'return math.floor(amount' })],
  [req({ query: 'write the document back to INI text', file_pattern: 'iniform/**/*.py' })],
  [req({ query: 'money rounding currency exchange rate' })],
  [req({ query: 'quote value cache' }), { maxTokens: 300 }],
  [req({ query: 'parse the tax of an invoice line with rounding'.repeat(3) }), { maxHits: 30, maxTokens: 12_000 }],
  [req({ function_names: ['quote'], file_pattern: '*.py' })],
];

async function answers(index: CodeIndex, files: ReadonlyMap<string, string>): Promise<unknown[]> {
  const out: unknown[] = REQUESTS.map(([request, options]) => index.search(request, options));
  for (const file of files.keys()) {
    const details = index.details(file);
    out.push(file, details, index.file(file)?.lines.length, index.renderFile(file, details.slice(0, 3).map((d) => d.id)));
  }
  return out;
}

describe('the code index cache', () => {
  it('answers every search exactly as a fresh build, on a tree assembled from the cached files of a neighbouring tree', async () => {
    const cache = new IndexCache({ dir: path.join(dir, 'neighbours'), maxBytes: 2 ** 30 });
    const a = treeA();
    const b = treeB();
    await CodeIndex.build(a, parser, cache);
    const pythonA = [...a.keys()].filter((p) => p.endsWith('.py')).length;
    expect(cache.stats).toMatchObject({ hits: 0, written: pythonA });
    const warm = await CodeIndex.build(b, parser, cache);
    // Only the two changed files and the added one were parsed.
    expect(cache.stats.written - pythonA).toBe(3);
    const fresh = await CodeIndex.build(b, parser);
    const got = await answers(warm, b);
    expect(got).toEqual(await answers(fresh, b));
    // The searches found the changed and added code (the comparison is not between two empty answers).
    const hits = got.slice(0, REQUESTS.length) as { filePath: string }[][];
    expect(hits[1]!.length).toBeGreaterThan(0);
    expect(hits[3]!.map((h) => h.filePath)).toContain('ledgerlite/ledgerlite/ledger_fx.py');
    expect(hits[7]!.length).toBeGreaterThan(0);
    expect(hits[11]!.length).toBeGreaterThan(2);
  });

  it('rebuilds an entry that is cut, corrupt or stored under another key, and never reads another version', async () => {
    const options = { dir: path.join(dir, 'damaged'), maxBytes: 2 ** 30 };
    const text = minigymRepoFiles('iniform').get('iniform/writer.py')!;
    const other = minigymRepoFiles('iniform').get('iniform/lexer.py')!;
    const key = entryKey(text);
    const cache = new IndexCache(options);
    const entry = fileEntryOf(text, parser);
    cache.put(key, entry);
    expect(cache.get(key)).toEqual(entry);
    const file = cache.pathOf(key);
    const full = JSON.stringify({ key, entry });
    const damaged = [full.slice(0, full.length / 2), '', 'null', JSON.stringify({ key: entryKey(other), entry: fileEntryOf(other, parser) }), JSON.stringify({ key, entry: { ...entry, terms: entry.terms.slice(1) } })];
    for (const bytes of damaged) {
      writeFileSync(file, bytes);
      const reader = new IndexCache(options);
      expect(reader.get(key)).toBeUndefined();
      expect(reader.stats.rejected).toBe(1);
      // A build over the damaged entry parses the file and writes the entry again.
      const index = await CodeIndex.build(new Map([['w.py', text]]), parser, reader);
      expect(index.details('w.py')).toEqual(entry.spans);
      expect(new IndexCache(options).get(key)).toEqual(entry);
    }
    expect(new IndexCache(options, 'another-version').get(key)).toBeUndefined();
  });

  it('stays within its bound: the least recently used entries go first, and dead writers’ temp files', async () => {
    const options = { dir: path.join(dir, 'bounded'), maxBytes: 2 ** 30 };
    const cache = new IndexCache(options);
    const texts = [...minigymRepoFiles('iniform').entries()].filter(([p]) => p.endsWith('.py')).map(([, t]) => t).slice(0, 6);
    const keys = texts.map((t) => entryKey(t));
    keys.forEach((k, i) => cache.put(k, fileEntryOf(texts[i]!, parser)));
    // Entry i was last used i minutes ago, but entry 5 is read now (a hit makes it recent).
    const ago = (ms: number) => new Date(Date.now() - ms);
    keys.forEach((k, i) => utimesSync(cache.pathOf(k), ago(i * 60_000), ago(i * 60_000)));
    expect(cache.get(keys[5]!)).toBeDefined();
    const temp = path.join(path.dirname(cache.pathOf(keys[0]!)), '.dead.1.tmp');
    writeFileSync(temp, 'x');
    utimesSync(temp, ago(7_200_000), ago(7_200_000));
    expect((await cache.sweep()).removed).toBe(0);
    expect(existsSync(temp)).toBe(false);
    // A bound that holds the two most recently used entries: the other four go.
    const keep = statSync(cache.pathOf(keys[0]!)).size + statSync(cache.pathOf(keys[5]!)).size;
    const result = await new IndexCache({ ...options, maxBytes: Math.ceil(keep / 0.8) }).sweep();
    expect(result.removed).toBe(4);
    expect(keys.map((k) => existsSync(cache.pathOf(k)))).toEqual([true, false, false, false, false, true]);
    // A removed entry is a miss: it is parsed and written again.
    await CodeIndex.build(new Map([['again.py', texts[3]!]]), parser, cache);
    expect(existsSync(cache.pathOf(keys[3]!))).toBe(true);
  });

  it('is configured by RFT_INDEX_CACHE_MB under rft’s cache folder, and refuses a bad size by name', () => {
    expect(indexCacheOptions({ RFT_CACHE_DIR: '/c' })).toEqual({ dir: '/c/index', maxBytes: 2048 * 2 ** 20 });
    expect(indexCacheOptions({ XDG_CACHE_HOME: '/x', RFT_INDEX_CACHE_MB: '10' })).toEqual({ dir: '/x/rft/index', maxBytes: 10 * 2 ** 20 });
    expect(indexCacheOptions({ RFT_INDEX_CACHE_MB: '0' })).toBeNull();
    expect(() => indexCacheOptions({ RFT_INDEX_CACHE_MB: 'lots' })).toThrow(/RFT_INDEX_CACHE_MB must be a number of megabytes/);
  });
});
