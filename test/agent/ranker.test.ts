import MiniSearch from 'minisearch';
import { beforeAll, describe, expect, it } from 'vitest';
import { codeTokens, fieldTermsOf, splitLines, writeFieldTerms } from '../../src/agent/file-entry.js';
import { PythonSpanParser } from '../../src/agent/python-spans.js';
import { Ranker, RANKER_OPTIONS } from '../../src/agent/ranker.js';
import { minigymRepoFiles } from '../helpers/minigym.js';

/** Every span of three bundled repositories, as the code index hands them to its ranker. */
let docs: { id: number; name: string; content: string; path: string }[];

beforeAll(async () => {
  const parser = await PythonSpanParser.create();
  docs = [];
  for (const repo of ['iniform', 'ledgerlite', 'unitkit']) {
    for (const [p, text] of minigymRepoFiles(repo)) {
      if (!p.endsWith('.py')) continue;
      const lines = splitLines(text);
      for (const span of parser.parseDetailed(text)) docs.push({ id: docs.length, name: span.name, content: lines.slice(span.startLine - 1, span.endLine).join('\n'), path: `${repo}/${p}` });
    }
  }
});

/** Queries as the agent writes them: identifiers, prefixes (4 letters or more match longer terms), stop words, repeats, nothing. */
const QUERIES = [
  'money rounding the exchange',
  'write the document back to INI text',
  'quote value cache',
  'parse the tax of an invoice line with rounding parse rounding',
  'convert_temperature from_base UnitError',
  'conv unit temp',
  'section sect sec',
  'HTTPServerError raise ValueError when the key is missing',
  'a the of and',
  '',
  'zzzz_nothing_matches',
];

describe('the code index ranker', () => {
  it('ranks every query exactly as MiniSearch does over the same spans: same docs, same order, the same scores to the bit', () => {
    const reference = new MiniSearch(RANKER_OPTIONS);
    reference.addAll(docs);
    const ranker = Ranker.build(docs.map((d) => ({ name: d.name, path: d.path, content: writeFieldTerms(fieldTermsOf(codeTokens(d.content))) })));
    expect(ranker.documentCount).toBe(docs.length);
    let matched = 0;
    for (const query of QUERIES) {
      const expected = reference.search(query).map((r) => ({ id: r.id as number, score: r.score }));
      const got = ranker.search(query);
      expect(got, query).toEqual(expected);
      // toEqual compares numbers with Object.is: scores equal to the last bit.
      for (let i = 0; i < got.length; i++) expect(Object.is(got[i]!.score, expected[i]!.score)).toBe(true);
      matched += got.length;
    }
    // The comparison is between real rankings, prefix matches included.
    expect(matched).toBeGreaterThan(200);
    expect(ranker.search('conv').length).toBeGreaterThan(ranker.search('convert').length - 1);
    expect(ranker.search('sect').some((r) => docs[r.id]!.content.includes('section'))).toBe(true);
  });
});
