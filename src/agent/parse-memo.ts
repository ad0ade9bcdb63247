import type { PythonSpanParser, SpanDetail } from './python-spans.js';

/**
 * The spans of edited file texts, parsed once per text. Every call of a trajectory that edited a
 * file renders it (file context, budgets, the span to edit) and looks its spans up: without the
 * memo each of those re-parses the whole file with tree-sitter. Keyed by the text itself (an
 * edited text is one string, held by the workspace, so the key's hash is computed once); bounded
 * by characters, least recently used out. Callers must not change the arrays they get.
 */
const MAX_CHARS = 32 * 1024 * 1024;

const memo = new Map<string, SpanDetail[]>();
let memoChars = 0;

export function parsedDetails(parser: PythonSpanParser, text: string): SpanDetail[] {
  const known = memo.get(text);
  if (known) {
    memo.delete(text);
    memo.set(text, known);
    return known;
  }
  const details = parser.parseDetailed(text);
  if (text.length > MAX_CHARS) return details;
  memo.set(text, details);
  memoChars += text.length;
  for (const [old] of memo) {
    if (memoChars <= MAX_CHARS) break;
    memo.delete(old);
    memoChars -= old.length;
  }
  return details;
}
