import { createTwoFilesPatch } from 'diff';

/** An edit the agent may not make: the retry message says why. */
export class WorkspaceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkspaceError';
  }
}

/**
 * A trajectory's view of the repository: the shared read-only snapshot plus its own edited
 * copies of the files it changed (copy-on-write). Nothing is ever written to disk, so no model
 * output can land outside the trajectory's copy.
 */
export class Workspace {
  private readonly edited = new Map<string, string>();

  constructor(
    private readonly base: ReadonlyMap<string, string>,
    private readonly isProtected: (path: string) => boolean = () => false,
  ) {}

  /** A repository-relative path the agent may name, or a WorkspaceError saying why not. */
  checkPath(path: string): string {
    if (typeof path !== 'string' || path.trim() === '') throw new WorkspaceError('file_path is empty');
    if (/[\u0000-\u001f\u007f]/.test(path)) throw new WorkspaceError('file_path contains a control character');
    // Backslashes are separators here (as in the code index), so `\\x` is as absolute as `/x`.
    const slashed = path.replace(/\\/g, '/');
    if (slashed.startsWith('/') || /^[A-Za-z]:\//.test(slashed)) throw new WorkspaceError(`file_path ${JSON.stringify(shown(path))} is absolute; use a path relative to the repository root`);
    const parts = slashed.split('/');
    if (parts.includes('..')) throw new WorkspaceError(`file_path ${JSON.stringify(shown(path))} leaves the repository`);
    if (parts.some((p) => p.toLowerCase() === '.git')) throw new WorkspaceError(`file_path ${JSON.stringify(shown(path))} is inside .git`);
    const clean = parts.filter((p) => p !== '' && p !== '.').join('/');
    if (!this.base.has(clean)) throw new WorkspaceError(`file ${JSON.stringify(shown(path))} is not in the repository`);
    if (this.isProtected(clean)) throw new WorkspaceError(`file ${JSON.stringify(shown(path))} is a test file; fix the code, not the tests`);
    return clean;
  }

  read(path: string): string | undefined {
    return this.edited.get(path) ?? this.base.get(path);
  }

  write(path: string, text: string): void {
    const clean = this.checkPath(path);
    if (text === this.base.get(clean)) this.edited.delete(clean);
    else this.edited.set(clean, text);
  }

  changedFiles(): string[] {
    return [...this.edited.keys()].sort();
  }

  /** The edits as one unified diff that `git apply` accepts on the base commit. */
  diff(): string {
    return this.changedFiles()
      .map((path) => fileDiff(path, this.base.get(path) ?? '', this.edited.get(path)!))
      .join('');
  }
}

/** A path as a message quotes it: control characters made visible, long ones cut. */
function shown(path: string): string {
  const clean = path.replace(/[\u0000-\u001f\u007f]/g, '?');
  return clean.length > 200 ? `${clean.slice(0, 200)}…` : clean;
}

export function fileDiff(path: string, before: string, after: string): string {
  if (before === after) return '';
  const body = createTwoFilesPatch(`a/${path}`, `b/${path}`, before, after, undefined, undefined, { context: 3 });
  // jsdiff opens with a line of '='; git wants its own header there.
  return body.replace(/^=+\n/, `diff --git a/${path} b/${path}\n`);
}
