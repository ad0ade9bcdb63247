import { existsSync, linkSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { loadRecipe } from '../recipe/load.js';
import { RUN_FILES, RunDir, RunStateSchema, type RunState } from '../store/run-dir.js';
import { trajectoryLedgerFiles } from '../store/trajectories.js';
import { SHARDS_DIR } from '../store/ledger.js';
import { loadRunRecipe } from './drive.js';
import { runLayout } from './layout.js';

export class ForkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ForkError';
  }
}

export interface ForkOptions {
  parentDir: string;
  name: string;
  /** The fork shares iterations 0..K-1 whole and iteration K's samples and verdicts. */
  fromIteration: number;
  overrides: readonly string[];
  runsDir: string;
  warn?: (message: string) => void;
}

export interface ForkResult {
  runDir: string;
  /** Files shared with the parent by hard link (same inode, no copy). */
  linkedFiles: number;
}

/**
 * A new run that shares, by hard link, everything the parent recorded up to and including
 * iteration K's samples and verdicts — the evals of M_0..M_K, iterations before K whole — and
 * continues from there with its own settings (e.g. another cap). Nothing is copied and nothing of
 * the parent is ever written through: ledgers copy themselves before their first append in the
 * fork, and every other file is replaced by rename, never edited in place.
 */
export function forkRun(options: ForkOptions): ForkResult {
  const parent = loadRunRecipe(options.parentDir, []);
  const k = options.fromIteration;
  if (!Number.isInteger(k) || k < 0 || k >= parent.recipe.iterations) {
    throw new ForkError(`--from-iteration must be 0..${parent.recipe.iterations - 1} for ${options.parentDir}`);
  }
  const parentState = new Map(Object.entries(readState(options.parentDir)));
  if (parentState.get(`iter-${k}/sample`)?.status !== 'done') {
    throw new ForkError(`${options.parentDir} has not finished sampling and verifying iteration ${k}: resume it first (rft resume ${options.parentDir})`);
  }
  const loaded = { ...loadRecipe(path.join(options.parentDir, RUN_FILES.recipe), [...options.overrides, `name=${options.name}`]), baseDir: parent.baseDir };
  const target = path.resolve(options.runsDir, options.name);
  if (existsSync(path.join(target, RUN_FILES.meta))) throw new ForkError(`${target} exists already; choose another --name`);
  const changedEarly = ['tasks', 'seed', 'sampling', 'agent', 'policy', 'sandbox'].filter(
    (key) => JSON.stringify((loaded.recipe as Record<string, unknown>)[key]) !== JSON.stringify((parent.recipe as Record<string, unknown>)[key]),
  );
  if (changedEarly.length > 0) {
    options.warn?.(`the fork changes ${changedEarly.join(', ')}: the shared samples of iterations 0..${k} were drawn with the parent's settings`);
  }

  const run = RunDir.open({ runsDir: options.runsDir, loaded, forkedFrom: { run_dir: path.resolve(options.parentDir), from_iteration: k }, warn: options.warn });
  try {
    let linked = 0;
    const share = (relative: string) => (linked += linkTree(path.join(options.parentDir, relative), path.join(run.dir, relative)));
    for (let i = 0; i < k; i++) share(path.relative(options.parentDir, runLayout.iterationDir(options.parentDir, i)));
    for (const file of trajectoryLedgerFiles(runLayout.trajectories(options.parentDir, k))) share(path.relative(options.parentDir, file));
    share(path.relative(options.parentDir, runLayout.verdicts(options.parentDir, k)));
    // Sampled on a cluster: the shards' parts of those ledgers (and their records) too.
    share(path.relative(options.parentDir, path.join(runLayout.iterationDir(options.parentDir, k), SHARDS_DIR)));
    for (let m = 0; m <= k; m++) share(path.relative(options.parentDir, runLayout.evalDir(options.parentDir, m)));
    share(path.relative(options.parentDir, runLayout.simModels(options.parentDir)));

    const inherited = [...parentState].filter(([phase]) => {
      const iteration = /^iter-(\d+)\//.exec(phase);
      const evaluated = /^eval\/m(\d+)$/.exec(phase);
      if (iteration) return Number(iteration[1]) < k || phase === `iter-${k}/sample`;
      return evaluated !== null && Number(evaluated[1]) <= k;
    });
    run.writeState({ ...run.readState(), phases: Object.fromEntries(inherited) });
    return { runDir: run.dir, linkedFiles: linked };
  } finally {
    run.close();
  }
}

/** Hard-links every file below `from` into the same place below `to`; returns how many. */
function linkTree(from: string, to: string): number {
  if (!existsSync(from)) return 0;
  if (statSync(from).isFile()) {
    mkdirSync(path.dirname(to), { recursive: true });
    linkSync(from, to);
    return 1;
  }
  mkdirSync(to, { recursive: true });
  return readdirSync(from).reduce((n, name) => n + linkTree(path.join(from, name), path.join(to, name)), 0);
}

function readState(runDir: string): RunState['phases'] {
  return RunStateSchema.parse(JSON.parse(readFileSync(path.join(runDir, RUN_FILES.state), 'utf8'))).phases;
}
