import { structuredPatch } from 'diff';
import type { FileEdit } from './candidate.js';

/**
 * Unified diffs of whole-file edits, in the form `git apply` takes (`diff --git` headers, a/ and
 * b/ prefixes, three lines of context), made on the host from the texts: the same edits always
 * give the same bytes.
 */
export function unifiedDiff(edits: readonly FileEdit[], direction: 'forward' | 'reverse'): string {
  return [...edits]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((edit) => {
      const [from, to] = direction === 'forward' ? [edit.before, edit.after] : [edit.after, edit.before];
      const patch = structuredPatch(`a/${edit.path}`, `b/${edit.path}`, from, to, '', '', { context: 3 });
      const hunks = patch.hunks.map((h) => `@@ -${h.oldStart},${h.oldLines} +${h.newStart},${h.newLines} @@\n${h.lines.join('\n')}\n`);
      if (hunks.length === 0) return '';
      return `diff --git a/${edit.path} b/${edit.path}\n--- a/${edit.path}\n+++ b/${edit.path}\n${hunks.join('')}`;
    })
    .join('');
}
