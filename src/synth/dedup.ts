import { createHash } from 'node:crypto';
import { diffArrays } from 'diff';
import type { FileEdit } from './candidate.js';

/**
 * The key under which two candidate bugs count as the same (design §13: duplicates are dropped):
 * per file, the diff of its lines with comments and whitespace removed (blank lines dropped). So
 * the same bug made by two strategies, or by two seeds, or re-indented or re-commented by an LLM,
 * has one key, while the same change at two places of a file has two. Pure.
 */

/** A line with its comment (a `#` outside quotes) and all whitespace removed. */
export function normaliseLine(line: string): string {
  let quote: string | null = null;
  let out = '';
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote) {
      if (ch === '\\') {
        out += ch + (line[i + 1] ?? '');
        i += 1;
        continue;
      }
      if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
    } else if (ch === '#') {
      break;
    }
    out += ch;
  }
  return out.replace(/\s+/g, '');
}

/** A changed stretch of a file's normalised lines: where it starts (in the normalised base) and what goes out and in. */
export interface NormalisedHunk {
  at: number;
  removed: string[];
  added: string[];
}

/** The file's lines normalised, blank and comment-only lines dropped. */
const normalisedLines = (text: string) => text.split('\n').map(normaliseLine).filter((l) => l !== '');

/** What an edit changes, over normalised lines: layout and comments never show, order does (a swap is a change). */
export function normalisedHunks(edit: FileEdit): NormalisedHunk[] {
  const hunks: NormalisedHunk[] = [];
  let at = 0;
  for (const part of diffArrays(normalisedLines(edit.before), normalisedLines(edit.after))) {
    if (!part.added && !part.removed) {
      at += part.count ?? part.value.length;
      continue;
    }
    const last = hunks.at(-1);
    // A removal and the addition right after it are one hunk.
    const hunk = last && last.at + last.removed.length === at ? last : { at, removed: [], added: [] };
    if (hunk !== last) hunks.push(hunk);
    if (part.removed) {
      hunk.removed.push(...part.value);
      at += part.value.length;
    } else {
      hunk.added.push(...part.value);
    }
  }
  return hunks;
}

/** The dedup key of a candidate's edits (hex); edits that change nothing but layout and comments all share one key. */
export function diffKey(edits: readonly FileEdit[]): string {
  const files = edits
    .map((edit) => ({ path: edit.path, hunks: normalisedHunks(edit) }))
    .filter((f) => f.hunks.length > 0)
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return createHash('sha256').update(JSON.stringify(files)).digest('hex');
}

/** True when the edits change nothing but whitespace and comments (never a bug). */
export function isCosmetic(edits: readonly FileEdit[]): boolean {
  return edits.every((edit) => normalisedHunks(edit).length === 0);
}
