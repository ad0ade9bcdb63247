import { fileDiff } from '../agent/workspace.js';
import type { FileEdit } from './candidate.js';

/**
 * Unified diffs of whole-file edits, in the form `git apply` takes, by the agent's own per-file
 * diff (the form its patches are verified in): the same edits always give the same bytes.
 */
export function unifiedDiff(edits: readonly FileEdit[], direction: 'forward' | 'reverse'): string {
  return [...edits]
    .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .map((edit) => (direction === 'forward' ? fileDiff(edit.path, edit.before, edit.after) : fileDiff(edit.path, edit.after, edit.before)))
    .join('');
}
