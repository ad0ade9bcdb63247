import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';

/**
 * A real small filesystem for tests of full disks: a tmpfs mounted (as root) on a folder of its
 * own under a fresh mkdtemp folder, so test files running in parallel never share one. Its size
 * counts whole 4 KiB pages: a write that needs a page the filesystem no longer has is cut short
 * by the kernel (a short write), and the next one fails with ENOSPC.
 */
export interface Tmpfs {
  dir: string;
  /** Changes the size limit in place (`mount -o remount`): files stay. */
  resize(bytes: number): void;
  unmount(): void;
}

export function mountTmpfs(bytes: number, prefix = 'rft-tmpfs-'): Tmpfs {
  const parent = mkdtempSync(path.join(tmpdir(), prefix));
  const dir = path.join(parent, 'fs');
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}`, 'tmpfs', dir]);
  let mounted = true;
  return {
    dir,
    resize: (size) => execFileSync('mount', ['-o', `remount,size=${size}`, dir]),
    unmount: () => {
      if (!mounted) return;
      try {
        execFileSync('umount', [dir], { stdio: 'ignore' });
      } catch {
        // Still held open (a failed test's writer): detach it now, freed when the last file closes.
        execFileSync('umount', ['-l', dir]);
      }
      mounted = false;
      rmSync(parent, { recursive: true, force: true });
    },
  };
}

/** mountTmpfs for one test file: every filesystem it mounts is unmounted after the file's tests. */
export function tmpfsMounter(prefix: string): (bytes: number) => Tmpfs {
  const mounts: Tmpfs[] = [];
  afterAll(() => {
    for (const m of mounts) m.unmount();
  });
  return (bytes) => {
    const m = mountTmpfs(bytes, prefix);
    mounts.push(m);
    return m;
  };
}
