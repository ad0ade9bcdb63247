/**
 * A search request the index cannot run; its message says what is wrong, for the retry prompt.
 * Apart from code-index.ts so the Search state's schema (read by every trajectory reader) does
 * not load the index's tokenizer, parser and search engine.
 */
export class SearchRequestError extends Error {
  override readonly name = 'SearchRequestError';
}
