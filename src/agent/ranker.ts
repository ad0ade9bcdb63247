import MiniSearch, { type Options } from 'minisearch';
import { codeTokens, fieldTermsOf, processTerm, type FieldTerms } from './file-entry.js';

/**
 * The BM25 ranker of the code index (MiniSearch), assembled from each span's terms instead of
 * re-tokenising every span's code: the terms come from the file entries (index-cache.ts), so an
 * index built from cached files tokenises nothing but names and paths.
 *
 * The assembly yields exactly the index `MiniSearch.addAll` builds from the same documents:
 * `loadJS` (MiniSearch's own deserialiser) gets the field lengths and the running average that
 * `add` computes (same arithmetic, same order), then the term tree is filled in the order `add`
 * first meets the terms, with the per-field, per-document counts it would hold.
 * test/agent/index-cache.test.ts compares the result with addAll's, term tree included. The tree
 * is filled directly (MiniSearch's `_index`, a SearchableMap): through loadJS's plain objects,
 * keyed by document number, the assembly took seconds on a large repository.
 */

/** One span as the ranker indexes it. `content` is FileEntry.terms: `<length> <term>[:<count>] …`. */
export interface RankerDoc {
  name: string;
  content: string;
  path: string;
}

export interface RankerFields {
  id: number;
  name: string;
  content: string;
  path: string;
}

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

export type Ranker = MiniSearch<RankerFields>;

const NAME = 0;
const CONTENT = 1;
const PATH = 2;

/** The part of MiniSearch's state the assembly fills (MiniSearch 7: a SearchableMap of term → field → document → count). */
interface RankerInternals {
  _index: { set(term: string, data: Map<number, Map<number, number>>): unknown; size: number };
}

export function assembleRanker(docs: readonly RankerDoc[]): Ranker {
  const fieldTerms = new Map<string, FieldTerms>();
  // name and path terms repeat across the spans of a file and across methods: tokenised once each.
  const termsOf = (text: string): FieldTerms => {
    let found = fieldTerms.get(text);
    if (!found) fieldTerms.set(text, (found = fieldTermsOf(codeTokens(text))));
    return found;
  };
  const index = new Map<string, Map<number, Map<number, number>>>();
  const post = (term: string, fieldId: number, id: number, count: number): void => {
    let data = index.get(term);
    if (!data) index.set(term, (data = new Map()));
    let docs = data.get(fieldId);
    if (!docs) data.set(fieldId, (docs = new Map()));
    docs.set(id, count);
  };
  const documentIds: Record<number, number> = {};
  const fieldLength: Record<number, number[]> = {};
  const averageFieldLength: number[] = [];
  // MiniSearch's addFieldLength, to the bit.
  const addLength = (fieldId: number, id: number, length: number): void => {
    const average = averageFieldLength[fieldId] || 0;
    averageFieldLength[fieldId] = (average * id + length) / (id + 1);
  };
  docs.forEach((doc, id) => {
    documentIds[id] = id;
    const name = termsOf(doc.name);
    const path = termsOf(doc.path);
    const parts = doc.content.split(' ');
    const contentLength = Number(parts[0]);
    fieldLength[id] = [name.length, contentLength, path.length];
    addLength(NAME, id, name.length);
    for (const [term, count] of name.terms) post(term, NAME, id, count);
    addLength(CONTENT, id, contentLength);
    for (let i = 1; i < parts.length; i++) {
      const part = parts[i]!;
      const colon = part.indexOf(':');
      if (colon < 0) post(part, CONTENT, id, 1);
      else post(part.slice(0, colon), CONTENT, id, Number(part.slice(colon + 1)));
    }
    addLength(PATH, id, path.length);
    for (const [term, count] of path.terms) post(term, PATH, id, count);
  });
  const ranker = MiniSearch.loadJS(
    {
      documentCount: docs.length,
      nextId: docs.length,
      documentIds,
      fieldIds: { name: NAME, content: CONTENT, path: PATH },
      fieldLength,
      averageFieldLength,
      storedFields: {},
      dirtCount: 0,
      index: [],
      serializationVersion: 2,
    },
    RANKER_OPTIONS,
  ) as Ranker;
  const tree = (ranker as unknown as RankerInternals)._index;
  if (typeof tree?.set !== 'function' || tree.size !== 0) throw new Error('minisearch: unexpected internals (the code index assembles MiniSearch 7 indexes)');
  for (const [term, data] of index) tree.set(term, data);
  return ranker;
}
