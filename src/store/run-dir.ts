import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import lodash from 'lodash';
import { stringify as toYaml, parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { LoadedRecipe } from '../recipe/load.js';
import type { Recipe } from '../recipe/schema.js';
import { writeFileAtomic, writeJsonAtomic } from './atomic.js';
import { Ledger, wholeLinesEnd, type OpenedLedger } from './ledger.js';
import { acquireLock, type RunLock } from './lock.js';

export const RunMetaSchema = z.object({
  name: z.string(),
  recipe_hash: z.string(),
  /** Folder that relative paths in the recipe are resolved against. */
  base_dir: z.string(),
  created_at: z.string(),
  recipe_history: z
    .array(
      z.object({
        hash: z.string(),
        replaced_at: z.string(),
        /** Why it could be replaced: asked for (--allow-recipe-change), or the run had recorded nothing under it. */
        note: z.string().nullable().default(null),
      }),
    )
    .default([]),
  /** A forked run: which run it shares files with, and through which iteration's samples. */
  forked_from: z.object({ run_dir: z.string(), from_iteration: z.number().int().nonnegative() }).nullable().default(null),
});
export type RunMeta = z.infer<typeof RunMetaSchema>;

export const PhaseStatusSchema = z.enum(['pending', 'running', 'done', 'failed']);

export const RunStateSchema = z.object({
  version: z.literal(1),
  updated_at: z.string(),
  /** Keyed by phase, e.g. `iter-0/sample`; the ledgers hold the detail. */
  phases: z.record(z.string(), z.object({ status: PhaseStatusSchema, updated_at: z.string(), note: z.string().nullable().default(null) })),
});
export type RunState = z.infer<typeof RunStateSchema>;

export class RecipeMismatchError extends Error {
  constructor(
    readonly runDir: string,
    readonly changedFields: string[],
  ) {
    super(
      `${runDir} was created from a different recipe (changed: ${changedFields.slice(0, 8).join(', ') || 'unknown'}` +
        `${changedFields.length > 8 ? ', …' : ''}); use a new --name, or pass --allow-recipe-change to continue it with the new recipe`,
    );
    this.name = 'RecipeMismatchError';
  }
}

/** The run's folder exists and holds something that is not an rft run: never take it over. */
export class RunDirOccupiedError extends Error {
  constructor(dir: string, entries: string[]) {
    super(`${dir} exists and is not an rft run (it holds ${entries.slice(0, 5).join(', ')}${entries.length > 5 ? ', …' : ''}); choose another --name or move it away — nothing was changed`);
    this.name = 'RunDirOccupiedError';
  }
}

export interface OpenRunOptions {
  runsDir: string;
  loaded: LoadedRecipe;
  /** Continue a run whose recipe changed (the old hash is kept in run.json's history). */
  allowRecipeChange?: boolean;
  warn?: (message: string) => void;
  /** Set by rft fork when it creates the run. */
  forkedFrom?: RunMeta['forked_from'];
}

export const RUN_FILES = {
  meta: 'run.json',
  recipe: 'recipe.yaml',
  state: 'state.json',
  lock: 'lock',
} as const;

/** What RunDir.open writes before run.json: a folder holding only these is a run whose creation was cut short. */
const CREATION_FILES = new Set<string>([RUN_FILES.recipe, RUN_FILES.state, RUN_FILES.lock]);

/** An open run directory, held under its lock until closed. */
export class RunDir {
  private constructor(
    readonly dir: string,
    readonly meta: RunMeta,
    readonly recipe: Recipe,
    private readonly lock: RunLock,
    readonly created: boolean,
  ) {}

  static open({ runsDir, loaded, allowRecipeChange = false, warn = () => {}, forkedFrom = null }: OpenRunOptions): RunDir {
    const dir = path.resolve(runsDir, loaded.recipe.name);
    mkdirSync(dir, { recursive: true });
    if (!existsSync(path.join(dir, RUN_FILES.meta))) {
      const foreign = readdirSync(dir).filter((name) => !CREATION_FILES.has(name) && !name.startsWith(`${RUN_FILES.lock}.`) && !/^\..*\.tmp$/.test(name));
      if (foreign.length > 0) throw new RunDirOccupiedError(dir, foreign);
    }
    const lock = acquireLock(path.join(dir, RUN_FILES.lock), warn);
    try {
      const metaFile = path.join(dir, RUN_FILES.meta);
      const now = new Date().toISOString();
      if (!existsSync(metaFile)) {
        const meta: RunMeta = { name: loaded.recipe.name, recipe_hash: loaded.hash, base_dir: loaded.baseDir, created_at: now, recipe_history: [], forked_from: forkedFrom };
        writeRecipe(dir, loaded);
        writeJsonAtomic(path.join(dir, RUN_FILES.state), { version: 1, updated_at: now, phases: {} } satisfies RunState);
        writeJsonAtomic(metaFile, meta);
        return new RunDir(dir, meta, loaded.recipe, lock, true);
      }
      const meta = readJson(metaFile, RunMetaSchema);
      if (meta.recipe_hash === loaded.hash) return new RunDir(dir, meta, loaded.recipe, lock, false);
      const changed = changedFields(readRecordedRecipe(dir), loaded.recipe);
      // A run that recorded nothing (it failed before its first sample) holds nothing the new
      // recipe could contradict: it starts again from the new recipe, as a new run would.
      const fresh = meta.forked_from === null && recordedNothing(dir);
      if (!fresh && !allowRecipeChange) throw new RecipeMismatchError(dir, changed);
      const note = fresh ? 'replaced: nothing was recorded under it' : 'changed with --allow-recipe-change';
      warn(
        fresh
          ? `the recipe of ${dir} was replaced (changed: ${changed.join(', ')}): the run had recorded nothing under the old one (no trajectory, verdict, dataset or fine-tune), so it starts again from the new one`
          : `continuing ${dir} with a changed recipe (changed: ${changed.join(', ')})`,
      );
      const updated: RunMeta = {
        ...meta,
        recipe_hash: loaded.hash,
        base_dir: loaded.baseDir,
        recipe_history: [...meta.recipe_history, { hash: meta.recipe_hash, replaced_at: now, note }],
      };
      writeRecipe(dir, loaded);
      // Phases noted under the old recipe (begun, nothing recorded) mean nothing under the new one.
      if (fresh) writeJsonAtomic(path.join(dir, RUN_FILES.state), { version: 1, updated_at: now, phases: {} } satisfies RunState);
      writeJsonAtomic(metaFile, updated);
      return new RunDir(dir, updated, loaded.recipe, lock, fresh);
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  path(...parts: string[]): string {
    return path.join(this.dir, ...parts);
  }

  readState(): RunState {
    return readJson(this.path(RUN_FILES.state), RunStateSchema);
  }

  writeState(state: RunState): void {
    writeJsonAtomic(this.path(RUN_FILES.state), RunStateSchema.parse({ ...state, updated_at: new Date().toISOString() }));
  }

  /** Opens (creating folders as needed) an append-only ledger inside the run. */
  openLedger<T>(relativePath: string, schema: z.ZodType<T>, warn: (message: string) => void = () => {}): OpenedLedger<T> {
    const file = this.path(relativePath);
    return Ledger.open(file, schema, (bytes) => warn(`${file}: dropped a torn last line (${bytes} bytes) left by an interrupted write`));
  }

  close(): void {
    this.lock.release();
  }
}

/**
 * Files a run may have before it records anything: its own bookkeeping, what preflight leaves out
 * (redone on every start), and the images it pulled (src/sandbox/pulled-images.ts: still the
 * run's to remove under a new recipe).
 */
const BOOKKEEPING_FILES = new Set<string>([RUN_FILES.meta, RUN_FILES.recipe, RUN_FILES.state, RUN_FILES.lock, 'excluded.json', 'pulled-images.jsonl', 'joining.json']);

/**
 * Has the run recorded nothing: no trajectory, verdict, dataset, fine-tune or model? Beyond its
 * bookkeeping it may hold only ledgers without a whole line (opened, never written, or torn),
 * temp files of atomic writes, and empty folders; anything else is a record.
 */
export function recordedNothing(dir: string): boolean {
  const walk = (folder: string, top: boolean): boolean =>
    readdirSync(folder).every((name) => {
      const file = path.join(folder, name);
      // The lock's side files (a takeover's claim is a symbolic link to no file): see lock.ts.
      if (top && name.startsWith(`${RUN_FILES.lock}.`)) return true;
      if (statSync(file).isDirectory()) return walk(file, false);
      if (top && BOOKKEEPING_FILES.has(name)) return true;
      if (/^\..*\.tmp$/.test(name)) return true;
      if (name === 'instances.json') return true; // a phase's membership: decided again while its ledger is empty
      return name.endsWith('.jsonl') && wholeLinesEnd(file).validBytes === 0;
    });
  return walk(dir, true);
}

function writeRecipe(dir: string, loaded: LoadedRecipe): void {
  const header = `# Resolved recipe of run ${loaded.recipe.name} (every default filled in), from ${loaded.file}\n# sha256 ${loaded.hash}\n`;
  writeFileAtomic(path.join(dir, RUN_FILES.recipe), header + toYaml(loaded.recipe, { lineWidth: 0 }));
}

function readRecordedRecipe(dir: string): unknown {
  try {
    return parseYaml(readFileSync(path.join(dir, RUN_FILES.recipe), 'utf8'));
  } catch {
    return {};
  }
}

/** Dotted paths whose values differ between two recipes. */
export function changedFields(before: unknown, after: unknown, prefix = ''): string[] {
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  if (!isObject(before) || !isObject(after)) return lodash.isEqual(before, after) ? [] : [prefix || '(recipe)'];
  const keys = lodash.union(Object.keys(before), Object.keys(after)).sort();
  return keys.flatMap((key) => changedFields(before[key], after[key], prefix ? `${prefix}.${key}` : key));
}

function readJson<T>(file: string, schema: z.ZodType<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: cannot read (${(err as Error).message})`);
  }
  const result = schema.safeParse(value);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new Error(`${file}: field ${issue.path.map(String).join('.') || '(file)'}: ${issue.message}`);
  }
  return result.data;
}
