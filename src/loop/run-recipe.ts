import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadRecipe, type LoadedRecipe } from '../recipe/load.js';
import { RunMetaSchema, RUN_FILES } from '../store/run-dir.js';

/*
 * Reading a run's recipe back, apart from drive.ts: status, show and report need only this, and
 * importing the loop that drives a run would load its Docker, HTTP and trainer clients first.
 */

/** The path given is not a usable run directory. */
export class NotARunDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotARunDirError';
  }
}

/** The recipe a run was created from (its resolved copy), with relative paths against the original folder. */
export function loadRunRecipe(runDir: string, overrides: readonly string[]): LoadedRecipe {
  const metaFile = path.join(runDir, RUN_FILES.meta);
  if (!existsSync(metaFile)) {
    // RunDir.open writes recipe.yaml, state.json, then run.json: a process killed in between left a run never started.
    const interrupted = existsSync(path.join(runDir, RUN_FILES.recipe))
      ? `${runDir} was interrupted while being created, before anything was recorded: start it again with \`rft run <recipe>\` (same recipe and --runs-dir); `
      : '';
    throw new NotARunDirError(`${interrupted}${runDir} is not a run directory (no ${RUN_FILES.meta}); runs are made by \`rft run <recipe.yaml>\``);
  }
  let meta;
  try {
    meta = RunMetaSchema.parse(JSON.parse(readFileSync(metaFile, 'utf8')));
  } catch (err) {
    throw new NotARunDirError(`${metaFile} is damaged (${(err as Error).message.split('\n')[0]}); nothing was changed`);
  }
  const loaded = loadRecipe(path.join(runDir, RUN_FILES.recipe), overrides);
  return { ...loaded, baseDir: meta.base_dir };
}
