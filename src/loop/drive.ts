import { existsSync } from 'node:fs';
import path from 'node:path';
import { assertReady } from '../doctor/preflight.js';
import { loadRecipe, type LoadedRecipe } from '../recipe/load.js';
import { RunDir, RUN_FILES } from '../store/run-dir.js';
import { loadRunRecipe } from './run-recipe.js';
import type { StartSimulatedPolicy } from '../policy/simulated.js';
import { runLoop, type LoopResult } from './run-loop.js';

export { loadRunRecipe, NotARunDirError } from './run-recipe.js';

export interface DriveOptions {
  /** A recipe file (rft run) … */
  recipeFile?: string;
  /** … or an existing run directory (rft resume). */
  runDir?: string;
  overrides?: readonly string[];
  runsDir: string;
  allowRecipeChange?: boolean;
  retryFailed?: boolean;
  /** Stop once this iteration is sampled and verified. */
  stopAfterSampling?: number;
  /** Starts the SIMULATED policy when the recipe asks for it (src/cli/sim.ts startSimulatedPolicy). */
  startSimulated?: StartSimulatedPolicy;
  log: (message: string) => void;
  warn: (message: string) => void;
}

export interface DriveResult extends LoopResult {
  runDir: string;
  resumed: boolean;
}

/**
 * Opens (or creates) the run directory under its lock and drives the loop. The first Ctrl-C stops
 * starting new work and waits for nothing long: no LLM call starts, trajectories in flight end at
 * their next call unrecorded (their cost goes to stops.jsonl), verifications already running end,
 * a fine-tune keeps running and is re-attached to on resume. A second one exits at once. Either
 * way every record already written stays, and the run continues with `rft resume`.
 */
export async function driveRun(options: DriveOptions): Promise<DriveResult> {
  const loaded = options.runDir ? loadRunRecipe(options.runDir, options.overrides ?? []) : loadRecipe(options.recipeFile!, options.overrides ?? []);
  const runsDir = options.runDir ? path.dirname(path.resolve(options.runDir)) : options.runsDir;
  // Before the run directory is made or locked: a machine that cannot run the recipe leaves no run behind.
  // The endpoint (M_0's, which rft never serves) is checked before a run's first calls only: a resumed
  // run may have no work left for M_0, and its user may have stopped that server.
  const firstStart = !options.runDir && !existsSync(path.join(path.resolve(runsDir), loaded.recipe.name, RUN_FILES.meta));
  await assertReady(loaded, { runsDir, checkEndpoint: firstStart, warn: options.warn });
  const run = RunDir.open({ runsDir, loaded, allowRecipeChange: options.allowRecipeChange ?? false, warn: options.warn });
  const controller = new AbortController();
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      options.warn(`${signal} again: quitting now. Resume with: rft resume ${path.relative(process.cwd(), run.dir) || run.dir}`);
      run.close();
      process.exit(130);
    }
    stopping = true;
    options.warn(`${signal}: stopping: no new LLM call starts, trajectories in flight end unrecorded at their next call (press Ctrl-C again to quit now)`);
    controller.abort(new Error(`stopped by ${signal}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    if (!run.created) options.log(`continuing ${run.dir}: what is recorded is kept, only what is missing runs`);
    const result = await runLoop({ run, loaded, log: options.log, warn: options.warn, stopping: () => stopping, signal: controller.signal, retryFailed: options.retryFailed ?? false, stopAfterSampling: options.stopAfterSampling, startSimulated: options.startSimulated }).catch((err: unknown) => {
      if (stopping) return null;
      throw err;
    });
    const final: LoopResult = result ?? { status: 'stopped', rows: [], table: '', simRequests: 0, reason: null };
    return { ...final, runDir: run.dir, resumed: !run.created };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    run.close();
  }
}


