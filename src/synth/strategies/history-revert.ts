import { applyPatch, parsePatch, structuredPatch } from 'diff';
import type { Candidate, FileEdit, FunctionTarget } from '../candidate.js';
import type { RepoView, Strategy, StrategyInput } from '../strategy.js';
import { seededRng, shuffled } from './seeded.js';

/**
 * The history strategy (design §13, SWE-smith's "PR mirror" and R2E-Gym's commit-based tasks): a
 * non-test change from the repository's own history is undone in the base's source files, while
 * the base's tests (which a change usually comes with) stay. Only commits whose reverse applies
 * cleanly at the base and touches a function some passing test executes are proposed. An image
 * without history (git fails, or the base is its only commit) gives nothing.
 */

/** How far back to look, and how big a revert may be (a task is one bug, not a release). */
export const MAX_COMMITS = 300;
export const MAX_SOURCE_FILES = 3;
export const MAX_CHANGED_LINES = 60;

const FIELD = '\u001f';
const RECORD = '\u001e';

/** Test code: a `test`/`tests`/`testing` directory, or a pytest-style file name. */
export function isTestPath(path: string): boolean {
  const parts = path.split('/');
  const base = parts.at(-1)!;
  return parts.slice(0, -1).some((d) => /^(tests?|testing)$/i.test(d)) || /^test_.*\.py$|_tests?\.py$|^conftest\.py$/.test(base);
}

/** Documentation: a docs directory or a text format. */
export function isDocPath(path: string): boolean {
  return /(^|\/)docs?\//.test(path) || /\.(rst|md|txt)$/i.test(path) || /^(README|CHANGELOG|CHANGES|AUTHORS|LICENSE)/i.test(path.split('/').at(-1)!);
}

export interface CommitInfo {
  hash: string;
  subject: string;
  parents: number;
  /** name-status entries: `M`, `A`, `D`… and the path. */
  files: { status: string; path: string }[];
}

/** Parses `git log --format=<RS>%H<US>%P<US>%s --name-status --no-renames` output. */
export function parseLog(out: string): CommitInfo[] {
  const commits: CommitInfo[] = [];
  for (const record of out.split(RECORD)) {
    if (record.trim() === '') continue;
    const [header, ...rest] = record.split('\n');
    const [hash, parents, subject] = header!.split(FIELD);
    if (!hash) continue;
    const files = rest
      .map((line) => line.split('\t'))
      .filter((cols) => cols.length >= 2 && cols[0]!.trim() !== '')
      .map((cols) => ({ status: cols[0]!.trim(), path: cols.at(-1)! }));
    commits.push({ hash, subject: subject ?? '', parents: (parents ?? '').split(' ').filter(Boolean).length, files });
  }
  return commits;
}

/** The source files a revert would touch, or null when the commit cannot be reverted as a bug (tests/docs only, adds or deletes source, too big). */
export function revertableFiles(commit: CommitInfo): string[] | null {
  if (commit.parents !== 1) return null;
  const source = commit.files.filter((f) => !isTestPath(f.path) && !isDocPath(f.path));
  if (source.length === 0 || source.length > MAX_SOURCE_FILES) return null;
  if (source.some((f) => f.status !== 'M' || !f.path.endsWith('.py'))) return null;
  return source.map((f) => f.path);
}

/** 1-based line ranges of the base text a reverse patch of one file rewrites (an insertion counts as the line it goes before). */
function touchedRanges(hunks: readonly { oldStart: number; lines: readonly string[] }[]): [number, number][] {
  const ranges: [number, number][] = [];
  for (const hunk of hunks) {
    let line = hunk.oldStart;
    for (const l of hunk.lines) {
      if (l.startsWith('-')) {
        ranges.push([line, line]);
        line += 1;
      } else if (l.startsWith('+')) {
        ranges.push([line, line]);
      } else if (!l.startsWith('\\')) {
        line += 1;
      }
    }
  }
  return ranges;
}

/** The candidate reverting one commit at the base, or null when it does not apply cleanly or touches no target. */
async function revertCommit(repo: RepoView, commit: CommitInfo, paths: readonly string[], targets: readonly FunctionTarget[]): Promise<Candidate | null> {
  // The commit's change reversed (new → old), per file; applied to the base text as it is now.
  const reverse = await repo.git(['diff', '--no-color', '--no-ext-diff', '--no-renames', commit.hash, `${commit.hash}^`, '--', ...paths]);
  const patches = parsePatch(reverse);
  const edits: FileEdit[] = [];
  const functions: FunctionTarget[] = [];
  let changed = 0;
  for (const patch of patches) {
    const path = (patch.newFileName ?? patch.oldFileName ?? '').replace(/^[ab]\//, '');
    if (!paths.includes(path) || patch.hunks.length === 0) continue;
    changed += patch.hunks.reduce((n, h) => n + h.lines.filter((l) => l.startsWith('+') || l.startsWith('-')).length, 0);
    if (changed > MAX_CHANGED_LINES) return null;
    const before = await repo.readFile(path);
    const after = applyPatch(before, patch);
    if (after === false || after === before) return null;
    edits.push({ path, before, after });
    // Where the revert lands in the base (the commit's own line numbers may have moved since).
    const ranges = touchedRanges(structuredPatch(path, path, before, after, '', '', { context: 0 }).hunks);
    for (const t of targets) {
      if (t.file !== path || functions.includes(t)) continue;
      if (ranges.some(([a, b]) => a <= t.end_line && b >= t.start_line)) functions.push(t);
    }
  }
  if (edits.length === 0 || functions.length === 0) return null;
  return {
    strategy: 'history_revert',
    kind: commit.hash.slice(0, 12),
    functions,
    edits,
    description: `reverts ${commit.hash.slice(0, 12)} "${commit.subject.slice(0, 100)}" in ${edits.map((e) => e.path).join(', ')}`,
  };
}

export const historyRevertStrategy: Strategy = {
  name: 'history_revert',
  async *candidates({ repo, targets, seed, limit }: StrategyInput): AsyncIterable<Candidate> {
    if (limit <= 0 || targets.length === 0) return;
    let log: string;
    try {
      log = await repo.git(['log', '--no-color', '--no-renames', `-n${MAX_COMMITS}`, `--format=${RECORD}%H${FIELD}%P${FIELD}%s`, '--name-status', 'HEAD']);
    } catch {
      return; // no history in this image
    }
    const targetFiles = new Set(targets.map((t) => t.file));
    const usable = parseLog(log).filter((c) => revertableFiles(c)?.some((p) => targetFiles.has(p)));
    let produced = 0;
    for (const commit of shuffled(usable, seededRng(seed, 'history_revert'))) {
      if (produced >= limit) return;
      let candidate: Candidate | null;
      try {
        candidate = await revertCommit(repo, commit, revertableFiles(commit)!, targets);
      } catch {
        candidate = null; // a diff git cannot produce (shallow history) is a commit we skip
      }
      if (!candidate) continue;
      produced += 1;
      yield candidate;
    }
  },
};
