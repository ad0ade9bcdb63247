import SearchableMap from 'minisearch/SearchableMap';
import type { Options } from 'minisearch';
import { codeTokens, fieldTermsOf, processTerm, type FieldTerms } from './file-entry.js';

/**
 * The BM25 ranker of the code index: MiniSearch 7's scoring (BM25+, prefix matches for query
 * terms of 4 characters or more, fields boosted name 2, content 1, path 0.5, OR of the query's
 * terms, times the number of query terms a span matched), over postings held in typed arrays.
 *
 * Why not MiniSearch's own index: it keeps term → field → document → count as nested Maps, 80 MB
 * of heap for Debian's sympy tree (77 k terms, 1.09 M postings) where these arrays take ~9 MB
 * (issue 26: a build's peak RSS under 400 MB). The term dictionary is MiniSearch's own radix tree
 * (its SearchableMap), filled in the order MiniSearch's `addAll` first meets the terms, so prefix
 * matches come in MiniSearch's order and every score is summed in the same order, to the bit:
 * test/agent/ranker.test.ts compares `search` with MiniSearch's on the same spans.
 *
 * The spans' terms come from the file entries (index-cache.ts), so an index built from cached
 * files tokenises nothing but names and paths.
 */

/** One span as the ranker indexes it. `content` is FileEntry.terms: `<length> <term>[:<count>] …`. */
export interface RankerDoc {
  name: string;
  content: string;
  path: string;
}

/** The fields of a span as MiniSearch would index them (the reference the tests compare with). */
export interface RankerFields {
  id: number;
  name: string;
  content: string;
  path: string;
}

/** MiniSearch options that rank exactly as Ranker does (for the tests' reference index). */
export const RANKER_OPTIONS: Options<RankerFields> = {
  fields: ['name', 'content', 'path'],
  tokenize: codeTokens,
  processTerm,
  searchOptions: {
    tokenize: codeTokens,
    processTerm,
    boost: { name: 2, content: 1, path: 0.5 },
    combineWith: 'OR',
    prefix: (term) => term.length >= 4,
  },
};

/** Fields in MiniSearch's order (its `fields` option), and their boosts. */
const FIELDS = 3;
const NAME = 0;
const CONTENT = 1;
const PATH = 2;
const BOOST = [2, 1, 0.5] as const;

/** MiniSearch 7's defaults: BM25+ parameters and the weight of a prefix match. */
const K = 1.2;
const B = 0.7;
const D = 0.5;
const PREFIX_WEIGHT = 0.375;
/** Query terms this long or longer also match the terms they are a prefix of. */
const MIN_PREFIX = 4;

export interface RankedDoc {
  /** The doc's index in the list the ranker was built from. */
  id: number;
  score: number;
}

interface Match {
  score: number;
  /** The query terms the doc matched (their number multiplies the score). */
  terms: string[];
}

/** A growable Int32Array. */
class IntList {
  data = new Int32Array(1024);
  length = 0;
  push(value: number): void {
    if (this.length === this.data.length) {
      const grown = new Int32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = value;
  }
}

export class Ranker {
  private constructor(
    /** Term → term number, in the order the spans first use the terms. */
    private readonly dictionary: SearchableMap<number>,
    /** Postings of term t in field f: entries starts[t·3+f] … starts[t·3+f+1] of docs and counts, docs ascending. */
    private readonly starts: Int32Array,
    private readonly docs: Int32Array,
    private readonly counts: Int32Array,
    /** Per doc d and field f, its length (distinct tokens) at d·3+f. */
    private readonly lengths: Int32Array,
    private readonly averages: readonly number[],
    readonly documentCount: number,
  ) {}

  static build(docs: readonly RankerDoc[]): Ranker {
    const fieldTerms = new Map<string, FieldTerms>();
    // name and path terms repeat across the spans of a file and across methods: tokenised once each.
    const termsOf = (text: string): FieldTerms => {
      let found = fieldTerms.get(text);
      if (!found) fieldTerms.set(text, (found = fieldTermsOf(codeTokens(text))));
      return found;
    };
    const numbers = new Map<string, number>();
    const postTerm = new IntList();
    const postDoc = new IntList();
    const postCount = new IntList();
    const post = (term: string, field: number, doc: number, count: number): void => {
      let number = numbers.get(term);
      if (number === undefined) numbers.set(term, (number = numbers.size));
      postTerm.push(number * FIELDS + field);
      postDoc.push(doc);
      postCount.push(count);
    };
    const lengths = new Int32Array(docs.length * FIELDS);
    const averages = [0, 0, 0];
    // MiniSearch's running average of a field's length, to the bit (same arithmetic, same order).
    const addLength = (field: number, doc: number, length: number): void => {
      lengths[doc * FIELDS + field] = length;
      averages[field] = (averages[field]! * doc + length) / (doc + 1);
    };
    docs.forEach((doc, id) => {
      const name = termsOf(doc.name);
      addLength(NAME, id, name.length);
      for (const [term, count] of name.terms) post(term, NAME, id, count);
      const parts = doc.content.split(' ');
      addLength(CONTENT, id, Number(parts[0]));
      for (let i = 1; i < parts.length; i++) {
        const part = parts[i]!;
        const colon = part.indexOf(':');
        if (colon < 0) post(part, CONTENT, id, 1);
        else post(part.slice(0, colon), CONTENT, id, Number(part.slice(colon + 1)));
      }
      const path = termsOf(doc.path);
      addLength(PATH, id, path.length);
      for (const [term, count] of path.terms) post(term, PATH, id, count);
    });
    // Postings grouped by (term, field), docs ascending within a group: a stable counting sort.
    const slots = numbers.size * FIELDS;
    const starts = new Int32Array(slots + 1);
    for (let i = 0; i < postTerm.length; i++) starts[postTerm.data[i]! + 1]!++;
    for (let s = 0; s < slots; s++) starts[s + 1]! += starts[s]!;
    const next = starts.slice(0, slots);
    const sortedDocs = new Int32Array(postTerm.length);
    const sortedCounts = new Int32Array(postTerm.length);
    for (let i = 0; i < postTerm.length; i++) {
      const at = next[postTerm.data[i]!]!++;
      sortedDocs[at] = postDoc.data[i]!;
      sortedCounts[at] = postCount.data[i]!;
    }
    const dictionary = new SearchableMap<number>();
    for (const [term, number] of numbers) dictionary.set(term, number);
    return new Ranker(dictionary, starts, sortedDocs, sortedCounts, lengths, averages, docs.length);
  }

  /** The docs matching a free-text query, best first (ties in the order they were first matched), as MiniSearch's `search`. */
  search(query: string): RankedDoc[] {
    let combined: Map<number, Match> | null = null;
    for (const token of codeTokens(query)) {
      const term = processTerm(token);
      if (!term) continue;
      const results = new Map<number, Match>();
      const exact = this.dictionary.get(term);
      if (exact !== undefined) this.termResults(term, exact, 1, results);
      if (term.length >= MIN_PREFIX) {
        for (const [derived, number] of this.dictionary.atPrefix(term)) {
          const distance = derived.length - term.length;
          if (!distance) continue;
          this.termResults(term, number, (PREFIX_WEIGHT * derived.length) / (derived.length + 0.3 * distance), results);
        }
      }
      if (!combined) {
        combined = results;
        continue;
      }
      for (const [doc, partial] of results) {
        const existing = combined.get(doc);
        if (!existing) combined.set(doc, partial);
        else {
          existing.score = existing.score + partial.score;
          for (const t of partial.terms) if (!existing.terms.includes(t)) existing.terms.push(t);
        }
      }
    }
    const ranked: RankedDoc[] = [];
    for (const [id, { score, terms }] of combined ?? []) ranked.push({ id, score: score * (terms.length || 1) });
    return ranked.sort((a, b) => b.score - a.score);
  }

  private termResults(source: string, number: number, weight: number, results: Map<number, Match>): void {
    for (let field = 0; field < FIELDS; field++) {
      const from = this.starts[number * FIELDS + field]!;
      const to = this.starts[number * FIELDS + field + 1]!;
      const matching = to - from;
      if (matching === 0) continue;
      const average = this.averages[field]!;
      const inverse = Math.log(1 + (this.documentCount - matching + 0.5) / (matching + 0.5));
      for (let i = from; i < to; i++) {
        const doc = this.docs[i]!;
        const frequency = this.counts[i]!;
        const length = this.lengths[doc * FIELDS + field]!;
        const raw = inverse * (D + (frequency * (K + 1)) / (frequency + K * (1 - B + (B * length) / average)));
        // MiniSearch's product, in its order (its term and document boosts are 1 here).
        const scored = weight * BOOST[field]! * raw;
        const result = results.get(doc);
        if (!result) results.set(doc, { score: scored, terms: [source] });
        else {
          result.score += scored;
          if (!result.terms.includes(source)) result.terms.push(source);
        }
      }
    }
  }
}
