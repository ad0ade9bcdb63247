import { patchFileChanges } from './patch.js';

/** One line a diff adds: the file it lands in and its line number there (1-based). */
export interface AddedLine {
  file: string;
  line: number;
  text: string;
}

/**
 * The lines a unified/git diff adds, with where each lands in the new file. Sections are matched
 * to patchFileChanges' file list in order (so quoting, renames and `a/` `b/` prefixes are read
 * once, there); hunk bodies are walked by their line counts, so an added line whose text starts
 * with `++ ` is never taken for a header. Sections of deleted files add nothing.
 */
export function addedLines(patch: string): AddedLine[] {
  const files = patchFileChanges(patch).map((c) => c.newPath);
  const lines = patch.replace(/\r\n?/g, '\n').split('\n');
  const out: AddedLine[] = [];
  let section = -1;
  let headerOpen = false; // a `diff --git` section whose ---/+++ pair is not read yet
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.startsWith('diff --git ')) {
      section += 1;
      headerOpen = true;
      continue;
    }
    if (line.startsWith('--- ') && (lines[i + 1] ?? '').startsWith('+++ ')) {
      if (!headerOpen) section += 1;
      headerOpen = false;
      i += 1;
      continue;
    }
    const hunk = /^@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(line);
    if (!hunk) continue;
    headerOpen = false;
    let oldLeft = hunk[1] === undefined ? 1 : Number(hunk[1]);
    let newLeft = hunk[3] === undefined ? 1 : Number(hunk[3]);
    let at = Number(hunk[2]);
    const file = files[section] ?? null;
    while ((oldLeft > 0 || newLeft > 0) && i + 1 < lines.length) {
      const body = lines[i + 1] ?? '';
      const tag = body[0];
      if (tag === '-') oldLeft -= 1;
      else if (tag === '+') {
        if (file !== null) out.push({ file, line: at, text: body.slice(1) });
        at += 1;
        newLeft -= 1;
      } else if (tag === ' ' || body === '') {
        at += 1;
        oldLeft -= 1;
        newLeft -= 1;
      } else if (tag !== '\\') break;
      i += 1;
    }
  }
  return out;
}
