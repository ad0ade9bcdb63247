import { TextLru } from '../util/text-lru.js';
import type { PythonSpanParser, SpanDetail } from './python-spans.js';

/**
 * The spans of edited file texts, parsed once per text. Every call of a trajectory that edited a
 * file renders it (file context, budgets, the span to edit) and looks its spans up: without the
 * memo each of those re-parses the whole file with tree-sitter. Callers must not change the
 * arrays they get.
 */
const memo = new TextLru<SpanDetail[]>(32 * 1024 * 1024);

export function parsedDetails(parser: PythonSpanParser, text: string): SpanDetail[] {
  let details = memo.get(text);
  if (!details) {
    details = parser.parseDetailed(text);
    memo.set(text, details);
  }
  return details;
}
