import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadInstances } from '../../src/tasks/load.js';
import type { Instance } from '../../src/tasks/instance.js';

export const MINIGYM_DIR = path.resolve(import.meta.dirname, '../fixtures/minigym');
export const MINIGYM_TASKS = path.join(MINIGYM_DIR, 'tasks.jsonl');

export function minigymInstances(): Instance[] {
  return loadInstances(MINIGYM_TASKS);
}

export function minigymInstance(id: string): Instance {
  const found = minigymInstances().find((i) => i.instance_id === id);
  if (!found) throw new Error(`no bundled instance ${id}`);
  return found;
}

/** The files of a bundled repository (repos/<repo>) by '/'-separated path, as the agent's code index reads them. */
export function minigymRepoFiles(repo: string): Map<string, string> {
  const root = path.join(MINIGYM_DIR, 'repos', repo);
  const files = new Map<string, string>();
  for (const rel of readdirSync(root, { recursive: true, encoding: 'utf8' }).sort()) {
    const full = path.join(root, rel);
    // A host-side test run may leave Python caches in the tree; they are not the repository.
    if (statSync(full).isFile() && !rel.split(path.sep).includes('__pycache__')) files.set(rel.split(path.sep).join('/'), readFileSync(full, 'utf8'));
  }
  return files;
}

export interface Edit {
  file: string;
  from: string;
  to: string;
}

/**
 * A real `git diff` of edits made to a copy of a bundled repository (after an optional patch),
 * so tests can build wrong, hostile or partial patches without writing diff text by hand.
 */
export function makePatch(repo: string, edits: readonly Edit[], options: { after?: string } = {}): string {
  const dir = mkdtempSync(path.join(tmpdir(), `rft-patch-${repo}-`));
  cpSync(path.join(MINIGYM_DIR, 'repos', repo), dir, { recursive: true });
  const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd: dir, encoding: 'utf8' });
  git('init', '-q');
  git('add', '-A');
  git('commit', '-qm', 'base');
  if (options.after) {
    writeFileSync(path.join(dir, '.rft-after.patch'), options.after);
    git('apply', '.rft-after.patch');
    git('add', '-A', '--', '.', ':!.rft-after.patch');
    git('commit', '-qm', 'after');
  }
  for (const edit of edits) {
    const file = path.join(dir, edit.file);
    let text = '';
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      // a new file
    }
    if (edit.from !== '' && !text.includes(edit.from)) throw new Error(`${edit.file} has no ${JSON.stringify(edit.from)}`);
    writeFileSync(file, edit.from === '' ? text + edit.to : text.replace(edit.from, edit.to));
  }
  git('add', '-A', '--', '.', ':!.rft-after.patch');
  return git('diff', '--cached', options.after ? 'HEAD~1' : 'HEAD');
}
