import { existsSync, lstatSync, readFileSync, readdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { LABEL } from '../sandbox/container.js';
import { lockState, type LockInfo } from '../store/lock.js';
import { RUN_FILES } from '../store/run-dir.js';

/**
 * Where a run's containers came from: the absolute run directory, beside `rft.run` (the name).
 * Two runs may share a name (in two runs folders); the directory tells their containers apart,
 * and is where `rft gc` finds the run's lock.
 */
export const RUN_DIR_LABEL = 'rft.run_dir';

/** Is a run being driven right now? Read from its lock file, never by taking the lock. */
export type RunActivity =
  | { running: true; holder: LockInfo | null; why: string }
  | { running: false; why: string };

/**
 * A run is running iff its lock is held (lockState, the judgement acquireLock and `rft status`
 * use too). The lock is only read: gc must never take it (that would stop the run it checks from
 * starting, or race with it).
 */
export function runActivity(runDir: string): RunActivity {
  const state = lockState(path.join(runDir, RUN_FILES.lock));
  return state.state === 'held' ? { running: true, holder: state.holder, why: state.why } : { running: false, why: state.why };
}

export interface GcContainer {
  id: string;
  name: string;
  image: string;
  state: string;
  run: string;
  /** The run directory the container belongs to; null when neither its label nor the runs folder says. */
  runDir: string | null;
}

export interface GcDecision {
  container: GcContainer;
  action: 'remove' | 'keep';
  reason: string;
}

export interface GcOptions {
  /** Where runs without an rft.run_dir label (containers of older rft versions) are looked up by name. */
  runsDir: string;
  dryRun: boolean;
}

export interface GcResult {
  decisions: GcDecision[];
  removed: number;
  kept: number;
  /** Removals the engine refused (the container stays): id → message. */
  failures: { id: string; message: string }[];
}

/**
 * `rft gc`: removes the containers of runs that are not running, and nothing else. Only
 * containers labelled `rft.run` are looked at; a container whose run cannot be located (no
 * rft.run_dir label and no such run in the runs folder, e.g. one of `rft verify`) is kept, since
 * nothing says its owner is gone. Containers are listed before the locks are read, so a run that
 * starts meanwhile cannot lose a container it just made: every container listed existed before.
 */
export async function collectGarbage(docker: Docker, options: GcOptions): Promise<GcResult> {
  const listed = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [LABEL.run] }) });
  const activity = new Map<string, RunActivity>();
  const decisions: GcDecision[] = [];
  for (const info of listed) {
    const labels = info.Labels ?? {};
    const run = labels[LABEL.run];
    if (run === undefined) continue; // the engine filtered on the label; never touch anything else
    const container: GcContainer = {
      id: info.Id,
      name: (info.Names?.[0] ?? '').replace(/^\//, ''),
      image: info.Image,
      state: info.State,
      run,
      runDir: locateRun(labels, run, options.runsDir),
    };
    if (container.runDir === null) {
      decisions.push({ container, action: 'keep', reason: `run ${run} not found (no ${RUN_DIR_LABEL} label, no ${path.join(options.runsDir, run)}): cannot tell whether it runs` });
      continue;
    }
    let state = activity.get(container.runDir);
    if (!state) {
      state = runActivity(container.runDir);
      activity.set(container.runDir, state);
    }
    decisions.push({ container, action: state.running ? 'keep' : 'remove', reason: `${container.runDir}: ${state.why}` });
  }
  const failures: GcResult['failures'] = [];
  if (!options.dryRun) {
    await Promise.all(
      decisions
        .filter((d) => d.action === 'remove')
        .map(async (d) => {
          try {
            await docker.getContainer(d.container.id).remove({ force: true, v: true });
          } catch (err) {
            if ((err as { statusCode?: number }).statusCode === 404) return; // gone already
            failures.push({ id: d.container.id, message: (err as Error).message });
          }
        }),
    );
  }
  const toRemove = decisions.filter((d) => d.action === 'remove').length;
  return { decisions, removed: options.dryRun ? 0 : toRemove - failures.length, kept: decisions.length - toRemove, failures };
}

function locateRun(labels: Record<string, string>, run: string, runsDir: string): string | null {
  const labelled = labels[RUN_DIR_LABEL];
  if (labelled && path.isAbsolute(labelled)) return labelled;
  // A run name is a folder name; anything else (a path) is not looked up.
  if (run === '' || run.includes('/') || run.includes('\\') || run === '.' || run === '..') return null;
  const dir = path.resolve(runsDir, run);
  return existsSync(path.join(dir, RUN_FILES.meta)) ? dir : null;
}

/** writeFileAtomic's temp names: `.<file>.<pid>.<8 hex>.tmp`. */
const ATOMIC_TEMP = /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$/;

/**
 * Deletes the temp files of atomic replacements that a killed process left in a run directory
 * (it died after writing the temp file, before renaming it: the target kept its old content, the
 * temp is litter, as large as the file it was to replace). Called under the run's lock, so no
 * other rft process writes there; a temp file of a live process (this one) is left alone.
 */
export function sweepAtomicTemps(runDir: string): string[] {
  const removed: string[] = [];
  const visit = (dir: string): void => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const file = path.join(dir, name);
      const match = ATOMIC_TEMP.exec(name);
      let isDir = false;
      try {
        isDir = lstatSync(file).isDirectory(); // a symlink is never followed out of the run
      } catch {
        continue;
      }
      if (isDir) {
        visit(file);
      } else if (match && !processAlive(Number(match[1]))) {
        try {
          unlinkSync(file);
          removed.push(file);
        } catch {
          // gone already
        }
      }
    }
  };
  visit(runDir);
  return removed;
}

function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  if (isZombie(pid)) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return false;
  }
}
