import { readFileSync } from 'node:fs';
import path from 'node:path';
import lodash from 'lodash';
import { LineCounter, parse as parseYamlValue, parseDocument, isMap, isPair, isScalar, type Document } from 'yaml';
import type { z } from 'zod';
import { hashOf } from '../util/canonical.js';
import { isNoneWord } from '../util/none-word.js';
import { RecipeSchema, type Recipe } from './schema.js';

const { cloneDeep, get, set } = lodash;

/** One thing wrong with a recipe, located as precisely as the source allows. */
export interface RecipeProblem {
  /** Dotted path of the field, e.g. `select.cap` ('' for the document itself). */
  field: string;
  message: string;
  /** 1-based line in the recipe file, when the field came from the file. */
  line: number | null;
  /** The `--set` argument the field came from, when it came from one. */
  override: string | null;
}

export class RecipeError extends Error {
  constructor(
    readonly file: string,
    readonly problems: RecipeProblem[],
  ) {
    super(problems.map((p) => formatProblem(file, p)).join('\n'));
    this.name = 'RecipeError';
  }
}

function formatProblem(file: string, p: RecipeProblem): string {
  const where = p.override !== null ? `${file} (${p.override})` : p.line !== null ? `${file}:${p.line}` : file;
  return p.field ? `${where}: ${p.field}: ${p.message}` : `${where}: ${p.message}`;
}

export interface LoadedRecipe {
  recipe: Recipe;
  /** sha256 of the canonical JSON of the resolved recipe: what a run directory is bound to. */
  hash: string;
  /** The recipe file; relative paths inside the recipe are relative to its folder. */
  file: string;
  /** The folder every relative path of the recipe resolves against (its file's folder; a run keeps the one it was created with). */
  baseDir: string;
  /** Where a field's value came from (line of the file or a --set), for errors found after parsing. */
  where?: (fieldPath: readonly PropertyKey[]) => Pick<RecipeProblem, 'line' | 'override'>;
}

export function loadRecipe(file: string, overrides: readonly string[] = []): LoadedRecipe {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found; start from a bundled one: `cp recipes/demo.yaml recipes/my-recipe.yaml` (its relative paths resolve against its folder), then check it with `rft recipe check recipes/my-recipe.yaml`' : (err as Error).message;
    throw new RecipeError(file, [{ field: '', message: reason, line: null, override: null }]);
  }
  return parseRecipe(text, file, overrides);
}

export function parseRecipe(text: string, file: string, overrides: readonly string[] = []): LoadedRecipe {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new RecipeError(
      file,
      doc.errors.map((e) => ({
        field: '',
        message: `YAML syntax: ${(e.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')}`,
        line: e.linePos?.[0]?.line ?? null,
        override: null,
      })),
    );
  }
  const data: unknown = doc.toJS() ?? {};
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new RecipeError(file, [{ field: '', message: 'a recipe is a YAML mapping of keys to values', line: 1, override: null }]);
  }

  const { data: withOverrides, origins } = applyOverrides(data as Record<string, unknown>, overrides, file);
  const result = RecipeSchema.safeParse(withOverrides);
  const locate = (fieldPath: readonly PropertyKey[]): Pick<RecipeProblem, 'line' | 'override'> => {
    const override = originOf([...fieldPath], origins);
    if (override !== null) return { line: null, override };
    return { line: lineOf(doc, lineCounter, [...fieldPath]), override: null };
  };
  if (!result.success) {
    const problems = result.error.issues.flatMap((issue) => problemsOf(issue, locate));
    throw new RecipeError(file, lodash.sortBy(problems, (p) => p.line ?? Number.MAX_SAFE_INTEGER));
  }
  const recipe = result.data;
  return { recipe, hash: hashOf(recipe), file, baseDir: path.dirname(path.resolve(file)), where: locate };
}

/** Resolves a path written in a recipe against the recipe's folder. */
export function resolveRecipePath(loaded: Pick<LoadedRecipe, 'baseDir'>, p: string): string {
  return path.resolve(loaded.baseDir, p);
}

// ---------------------------------------------------------------------------------------------
// --set a.b=c overrides

interface OverrideOrigin {
  path: string[];
  arg: string;
}

/**
 * Applies `a.b=c` overrides. The value is typed by the schema: it is read as YAML (so 3 is a
 * number, null is null, [1, 2] a list) unless only its plain-string reading satisfies the field
 * (a model called `7`, a name like `001`). `none` reads as null, as `null` does.
 */
function applyOverrides(
  data: Record<string, unknown>,
  overrides: readonly string[],
  file: string,
): { data: Record<string, unknown>; origins: OverrideOrigin[] } {
  let current = cloneDeep(data);
  const origins: OverrideOrigin[] = [];
  for (const arg of overrides) {
    const eq = arg.indexOf('=');
    const fieldPath = eq > 0 ? arg.slice(0, eq).split('.') : [];
    if (eq <= 0 || fieldPath.some((segment) => segment === '')) {
      throw new RecipeError(file, [
        { field: '', message: `--set takes key.path=value, got "${arg.slice(0, 80)}"`, line: null, override: `--set ${arg.slice(0, 80)}` },
      ]);
    }
    const raw = arg.slice(eq + 1);
    // A comma-separated value is also tried as a list, first: `policy.base_url=http://a/v1,http://b/v1`
    // is two replicas (a URL parser takes the whole as one URL), `repos=a/b,c/d` two repositories.
    // A field that takes no list refuses the split form, and the value is read as before.
    const commaList = /,/.test(raw) && !/^\s*[[{"']/.test(raw) ? [raw.split(',').map((part) => readYamlScalar(part.trim()))] : [];
    // `none` is null as `null` is (src/util/none-word.ts); a field that takes no null keeps the word.
    const candidates = [...commaList, ...(isNoneWord(raw) ? [null] : []), readYamlScalar(raw), raw];
    let chosen = withValue(current, fieldPath, isNoneWord(raw) ? null : readYamlScalar(raw));
    if (commaList.length > 0) {
      // Nothing fits: if the field takes a list (its problems are the items', not its type), report those.
      const listIssues = RecipeSchema.safeParse(withValue(current, fieldPath, commaList[0])).error?.issues ?? [];
      const own = listIssues.filter((issue) => startsWith(issue.path, fieldPath));
      if (own.length > 0 && own.every((issue) => typeof issue.path[fieldPath.length] === 'number')) chosen = withValue(current, fieldPath, commaList[0]);
    }
    for (const candidate of candidates) {
      const attempt = withValue(current, fieldPath, candidate);
      const issues = RecipeSchema.safeParse(attempt).error?.issues ?? [];
      if (!issues.some((issue) => startsWith(issue.path, fieldPath))) {
        chosen = attempt;
        break;
      }
    }
    current = chosen;
    origins.push({ path: fieldPath, arg: `--set ${arg}` });
  }
  return { data: current, origins };
}

function readYamlScalar(raw: string): unknown {
  try {
    return parseYamlValue(raw);
  } catch {
    return raw;
  }
}

function withValue(data: Record<string, unknown>, fieldPath: string[], value: unknown): Record<string, unknown> {
  const copy = cloneDeep(data);
  // An override below a null (e.g. tasks.eval.path when eval is null) creates the mapping.
  for (let i = 1; i < fieldPath.length; i++) {
    const parent = fieldPath.slice(0, i);
    if (get(copy, parent) === null) set(copy, parent, {});
  }
  return set(copy, fieldPath, value);
}

function startsWith(issuePath: PropertyKey[], prefix: string[]): boolean {
  return prefix.every((segment, i) => issuePath[i] !== undefined && String(issuePath[i]) === segment);
}

function originOf(fieldPath: PropertyKey[], origins: OverrideOrigin[]): string | null {
  // The last override that covers the field (or a parent of it) is where its value came from.
  for (let i = origins.length - 1; i >= 0; i--) {
    const origin = origins[i]!;
    if (startsWith(fieldPath, origin.path) || startsWith(origin.path.map(String), fieldPath.map(String))) {
      return origin.arg;
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------
// Issues → problems with lines

function problemsOf(
  issue: z.core.$ZodIssue,
  locate: (fieldPath: readonly PropertyKey[]) => Pick<RecipeProblem, 'line' | 'override'>,
): RecipeProblem[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => {
      const fieldPath = [...issue.path, key];
      return { field: dotted(fieldPath), message: 'unknown key (a typo?)', ...locate(fieldPath) };
    });
  }
  return [{ field: dotted(issue.path), message: messageOf(issue), ...locate(issue.path) }];
}

function messageOf(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && /received undefined$/.test(issue.message)) {
    return `is required (expected ${issue.expected})`;
  }
  if (issue.code === 'invalid_union' && 'options' in issue && Array.isArray(issue.options)) {
    return `must be one of ${issue.options.map(String).join(', ')}`;
  }
  if (issue.code === 'invalid_union' && issue.errors.length > 0) {
    // A one-or-many field (base_url: a URL or a list): the branch that matched the value's type
    // says what is wrong with it; the others only say "expected array".
    const told = issue.errors.flat().find((inner) => inner.code !== 'invalid_type');
    if (told) return messageOf(told);
  }
  return issue.message.replace(/^Invalid input: /, '');
}

function dotted(fieldPath: PropertyKey[]): string {
  return fieldPath.map(String).join('.');
}

/** The line of the deepest node along the path that exists in the document. */
function lineOf(doc: Document, lineCounter: LineCounter, fieldPath: PropertyKey[]): number | null {
  for (let depth = fieldPath.length; depth >= 0; depth--) {
    const prefix = fieldPath.slice(0, depth);
    const parent = depth === 0 ? doc.contents : doc.getIn(prefix.slice(0, -1), true);
    if (depth > 0 && isMap(parent)) {
      // Point at the key itself: for an unknown key or a bad value, that is the line to fix.
      const pair = parent.items.find((item) => isPair(item) && isScalar(item.key) && String(item.key.value) === String(prefix.at(-1)));
      const node = pair && isScalar(pair.key) ? pair.key : null;
      if (node?.range) return lineCounter.linePos(node.range[0]).line;
    }
    const node = depth === 0 ? doc.contents : doc.getIn(prefix, true);
    const range = (node as { range?: [number, number, number] } | null)?.range;
    if (range) return lineCounter.linePos(range[0]).line;
  }
  return null;
}
