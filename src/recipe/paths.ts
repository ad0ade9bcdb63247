import { accessSync, constants, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { isTiktokenEncoding } from '../sft/tokenizer.js';
import { commandProgram, isPathWord } from './command-words.js';
import type { LoadedRecipe, RecipeProblem } from './load.js';

/**
 * The files a recipe names, each resolved against the one base of every relative path in a
 * recipe: the recipe file's folder (a run keeps the folder it was created with, run.json
 * base_dir). Task files, ids files, a tokenizer folder, and the program or script of the
 * trainer and server commands (which run with that folder as their working directory).
 */
export interface RecipePath {
  /** Dotted field, e.g. `tasks.train.path`. */
  field: string;
  fieldPath: string[];
  what: 'task file' | 'ids file' | 'tokenizer folder' | 'program' | 'script';
  /** As written in the recipe. */
  written: string;
  resolved: string;
}

export function recipePaths(loaded: Pick<LoadedRecipe, 'recipe' | 'baseDir'>): RecipePath[] {
  const { recipe, baseDir } = loaded;
  const at = (p: string) => path.resolve(baseDir, p);
  const out: RecipePath[] = [];
  for (const set of ['train', 'eval'] as const) {
    const taskSet = recipe.tasks[set];
    if (!taskSet) continue;
    out.push({ field: `tasks.${set}.path`, fieldPath: ['tasks', set, 'path'], what: 'task file', written: taskSet.path, resolved: at(taskSet.path) });
    if (taskSet.ids_file !== null) {
      out.push({ field: `tasks.${set}.ids_file`, fieldPath: ['tasks', set, 'ids_file'], what: 'ids file', written: taskSet.ids_file, resolved: at(taskSet.ids_file) });
    }
  }
  const tokenizer = recipe.sft.tokenizer;
  if (tokenizer !== null && !isTiktokenEncoding(tokenizer)) {
    out.push({ field: 'sft.tokenizer', fieldPath: ['sft', 'tokenizer'], what: 'tokenizer folder', written: tokenizer, resolved: at(tokenizer) });
  }
  const commands: [string[], string][] = [];
  if (recipe.finetune.backend === 'command') commands.push([['finetune', 'command'], recipe.finetune.command]);
  if (recipe.serve.kind === 'command') commands.push([['serve', 'command'], recipe.serve.command]);
  for (const [fieldPath, command] of commands) {
    const started = commandProgram(command);
    if (!started) continue;
    const field = fieldPath.join('.');
    if (isPathWord(started.program)) out.push({ field, fieldPath, what: 'program', written: started.program, resolved: at(started.program) });
    if (started.script !== null) out.push({ field, fieldPath, what: 'script', written: started.script, resolved: at(started.script) });
  }
  return out;
}

/** Why a named path is not usable, or null when it is. */
export function pathProblem(p: RecipePath): string | null {
  const shown = p.written === p.resolved ? p.resolved : `${p.resolved} (${p.written} resolved against the recipe's folder)`;
  if (!existsSync(p.resolved)) return `${p.what} not found: ${shown}`;
  const isDir = statSync(p.resolved).isDirectory();
  if (p.what === 'tokenizer folder') {
    if (!isDir) return `not a folder: ${shown}; a tokenizer folder holds tokenizer.json and tokenizer_config.json`;
    const missing = ['tokenizer.json', 'tokenizer_config.json'].filter((name) => !existsSync(path.join(p.resolved, name)));
    if (missing.length > 0) return `${missing.join(' and ')} missing in the tokenizer folder ${shown}`;
    return null;
  }
  // A task "file" may be a folder of task files (rft tasks convert reads both).
  if (isDir && p.what !== 'task file') return `${p.what} is a folder: ${shown}`;
  if (p.what === 'program') {
    try {
      accessSync(p.resolved, constants.X_OK);
    } catch {
      return `program is not executable: ${shown} (chmod +x it, or start it with bash/node/python)`;
    }
  }
  return null;
}

/** Every named path that is missing, as recipe problems naming the field, the line and the resolved path. */
export function missingPathProblems(loaded: Pick<LoadedRecipe, 'recipe' | 'baseDir' | 'where'>): RecipeProblem[] {
  return recipePaths(loaded).flatMap((p) => {
    const message = pathProblem(p);
    if (message === null) return [];
    const where = loaded.where?.(p.fieldPath) ?? { line: null, override: null };
    return [{ field: p.field, message, ...where }];
  });
}
