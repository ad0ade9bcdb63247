import { encodeText } from '../util/byte-text.js';
import { sha256Hex } from '../util/canonical.js';

/**
 * Canonical form of a model patch. Two samples that end in the same change must hash alike so
 * the verdict cache verifies it once, whatever prose, line endings or trailing blank lines the
 * producer added.
 *
 * - Text before the first line starting with `diff --git` or `--- ` is dropped (models like to
 *   explain themselves first; a ```diff fence opener goes with it).
 * - Line endings converted in transport (every line ending in CRLF, or only lone CRs) become LF.
 *   A diff with LF headers and CR-terminated content lines is a diff of a file with CRLF line
 *   endings, as git writes it: its CRs are the file's bytes and stay, or it would not apply.
 * - Trailing empty lines are removed and exactly one newline is added. Only empty lines: a line
 *   holding a single space is a context line of the diff, and dropping it would break the hunk.
 * - Empty or whitespace-only input becomes '' (the `empty_patch` outcome).
 * - Text with no diff header at all is kept (normalised): it is not an empty patch, and applying
 *   it fails visibly as `apply_failed` instead of being hidden among the empty ones.
 */
export function normalizePatch(text: string): string {
  let unified = text.replace(/^\uFEFF/, '');
  if (!unified.includes('\n')) unified = unified.replace(/\r/g, '\n'); // CR-only line endings
  if (unified.trim() === '') return '';
  const lines = unified.split('\n');
  const start = lines.findIndex((line) => line.startsWith('diff --git') || line.startsWith('--- '));
  let kept = start > 0 ? lines.slice(start) : lines;
  while (kept.length > 0 && (kept[kept.length - 1] === '' || kept[kept.length - 1] === '\r')) kept.pop();
  // Every line CR-terminated, headers included: CRLF from transport, not from the files.
  if (kept.length > 0 && kept.every((line) => line.endsWith('\r'))) kept = kept.map((line) => line.slice(0, -1));
  const body = kept.join('\n');
  return body.trim() === '' ? '' : `${body}\n`;
}

/** Content address of a normalised patch (sha256, lower-case hex). */
export function patchHash(normalized: string): string {
  // The bytes the container receives: two patches differing only in a non-UTF-8 byte are two patches.
  return sha256Hex(encodeText(normalized));
}

export type FileChangeKind = 'add' | 'delete' | 'modify' | 'rename' | 'copy';

/** One file section of a diff. A null path is /dev/null: the file did not exist on that side. */
export interface FileChange {
  oldPath: string | null;
  newPath: string | null;
  kind: FileChangeKind;
}

/**
 * Paths a diff touches, deduplicated, in order of appearance: both sides of a rename, the
 * surviving path of an added or deleted file. Built on `patchFileChanges`.
 */
export function filesInPatch(patch: string): string[] {
  const seen = new Set<string>();
  for (const change of patchFileChanges(patch)) {
    for (const path of [change.oldPath, change.newPath]) {
      if (path !== null) seen.add(path);
    }
  }
  return [...seen];
}

interface Section {
  git: boolean; // opened by a `diff --git` line
  headerSeen: boolean; // its ---/+++ pair has been read
  gitOld: string | null;
  gitNew: string | null;
  oldPath: string | null | undefined; // undefined: not stated by a ---/rename/copy line
  newPath: string | null | undefined;
  created: boolean;
  deleted: boolean;
  renamed: boolean;
  copied: boolean;
}

/**
 * File sections of a unified or git diff. Hunk bodies are skipped by their line counts, so a
 * removed line whose text starts with `-- ` (a SQL or Lua comment, say) is never taken for a
 * file header. Paths lose the `a/` / `b/` prefix (the -p1 that git apply and patch use); C-quoted
 * git paths are unquoted; a tab after a path (git's marker for names with spaces, or GNU diff's
 * timestamp) ends it.
 */
export function patchFileChanges(patch: string): FileChange[] {
  const lines = patch.replace(/\r\n?/g, '\n').split('\n');
  const sections: Section[] = [];
  let current: Section | null = null;
  const open = (git: boolean): Section => {
    current = {
      git,
      headerSeen: false,
      gitOld: null,
      gitNew: null,
      oldPath: undefined,
      newPath: undefined,
      created: false,
      deleted: false,
      renamed: false,
      copied: false,
    };
    sections.push(current);
    return current;
  };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.startsWith('diff --git ')) {
      const section = open(true);
      const pair = parseGitHeaderPaths(line.slice('diff --git '.length));
      if (pair) {
        section.gitOld = pair[0];
        section.gitNew = pair[1];
      }
      continue;
    }
    const next = lines[i + 1] ?? '';
    if (line.startsWith('--- ') && next.startsWith('+++ ')) {
      // A ---/+++ pair belongs to the open git section until that section has stated its paths.
      const cur = current as Section | null;
      const section = cur && cur.git && !cur.headerSeen ? cur : open(false);
      section.headerSeen = true;
      section.oldPath = parseHeaderPath(line.slice(4), 'a/');
      section.newPath = parseHeaderPath(next.slice(4), 'b/');
      i += 1;
      continue;
    }
    const hunk = /^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@/.exec(line);
    if (hunk) {
      let oldLeft = hunk[1] === undefined ? 1 : Number(hunk[1]);
      let newLeft = hunk[2] === undefined ? 1 : Number(hunk[2]);
      while ((oldLeft > 0 || newLeft > 0) && i + 1 < lines.length) {
        const body = lines[i + 1] ?? '';
        const tag = body[0];
        if (tag === '-') oldLeft -= 1;
        else if (tag === '+') newLeft -= 1;
        else if (tag === ' ' || body === '') {
          oldLeft -= 1;
          newLeft -= 1;
        } else if (tag !== '\\') break; // malformed hunk: let the outer loop look at the line
        i += 1;
      }
      continue;
    }
    const section = current as Section | null;
    if (!section || !section.git || section.headerSeen) continue;
    if (line.startsWith('new file mode')) section.created = true;
    else if (line.startsWith('deleted file mode')) section.deleted = true;
    else if (line.startsWith('rename from ')) {
      section.renamed = true;
      section.oldPath = unquote(line.slice('rename from '.length));
    } else if (line.startsWith('rename to ')) {
      section.renamed = true;
      section.newPath = unquote(line.slice('rename to '.length));
    } else if (line.startsWith('copy from ')) {
      section.copied = true;
      section.oldPath = unquote(line.slice('copy from '.length));
    } else if (line.startsWith('copy to ')) {
      section.copied = true;
      section.newPath = unquote(line.slice('copy to '.length));
    }
  }

  const changes: FileChange[] = [];
  for (const s of sections) {
    // git headers name both sides even for created/deleted files; the mode lines say which.
    let oldPath = s.oldPath !== undefined ? s.oldPath : s.gitOld;
    let newPath = s.newPath !== undefined ? s.newPath : s.gitNew;
    if (s.created) oldPath = null;
    if (s.deleted) newPath = null;
    if (oldPath === null && newPath === null) continue;
    let kind: FileChangeKind;
    if (oldPath === null) kind = 'add';
    else if (newPath === null) kind = 'delete';
    else if (s.copied) kind = 'copy';
    else if (s.renamed || oldPath !== newPath) kind = 'rename';
    else kind = 'modify';
    changes.push({ oldPath, newPath, kind });
  }
  return changes;
}

/** `a/x b/y` (either side possibly C-quoted) → ['x', 'y'], or null when it cannot be split. */
function parseGitHeaderPaths(rest: string): [string, string] | null {
  if (rest.startsWith('"')) {
    const first = readQuoted(rest);
    if (!first) return null;
    const tail = rest.slice(first.length).trimStart();
    const second = tail.startsWith('"') ? unquote(tail) : tail;
    return [stripPrefix(unquote(first), 'a/'), stripPrefix(second, 'b/')];
  }
  if (rest.endsWith('"')) {
    const at = rest.lastIndexOf(' "');
    if (at < 0) return null;
    return [stripPrefix(rest.slice(0, at), 'a/'), stripPrefix(unquote(rest.slice(at + 1)), 'b/')];
  }
  // Unquoted names may hold spaces; like git, prefer the split where both sides name one file.
  const candidates: [string, string][] = [];
  for (let at = rest.indexOf(' b/'); at >= 0; at = rest.indexOf(' b/', at + 1)) {
    candidates.push([stripPrefix(rest.slice(0, at), 'a/'), rest.slice(at + 3)]);
  }
  return candidates.find(([a, b]) => a === b) ?? candidates[0] ?? null;
}

function parseHeaderPath(raw: string, prefix: string): string | null {
  let path = raw.startsWith('"') ? unquote(readQuoted(raw) ?? raw) : raw.split('\t')[0] ?? raw;
  if (!raw.startsWith('"')) path = path.replace(/\s+$/, '');
  if (path === '/dev/null') return null;
  return stripPrefix(path, prefix);
}

function stripPrefix(path: string, prefix: string): string {
  return path.startsWith(prefix) ? path.slice(prefix.length) : path;
}

/** The leading C-quoted string of `text` including its quotes, or null if unterminated. */
function readQuoted(text: string): string | null {
  for (let i = 1; i < text.length; i++) {
    if (text[i] === '\\') i += 1;
    else if (text[i] === '"') return text.slice(0, i + 1);
  }
  return null;
}

const ESCAPES: Record<string, number> = { a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13, '"': 34, '\\': 92 };

/** Undo git's C-style path quoting ("a/caf\303\251.py" → a/café.py); other text is returned as is. */
function unquote(text: string): string {
  const quoted = readQuoted(text);
  if (!text.startsWith('"') || quoted === null) return text;
  const inner = quoted.slice(1, -1);
  const bytes: number[] = [];
  for (let i = 0; i < inner.length; i++) {
    if (inner[i] !== '\\') {
      const ch = String.fromCodePoint(inner.codePointAt(i) ?? 0);
      bytes.push(...Buffer.from(ch, 'utf8'));
      i += ch.length - 1;
      continue;
    }
    const octal = /^[0-7]{3}/.exec(inner.slice(i + 1));
    if (octal) {
      bytes.push(parseInt(octal[0], 8));
      i += 3;
      continue;
    }
    const esc = inner[i + 1] ?? '';
    bytes.push(ESCAPES[esc] ?? esc.charCodeAt(0));
    i += 1;
  }
  return Buffer.from(bytes).toString('utf8');
}
