import { z } from 'zod';
import { canonicalJson, sha256Hex } from '../util/canonical.js';
import type { Instance } from '../tasks/instance.js';
import { filesInPatch, patchFileChanges } from './patch.js';
import { repoFamily, RUNNER_KINDS, RUNNERS } from './runners.js';

/** Which runner family prints the log and how its results are read (runners.ts). */
export const ParserKindSchema = z.enum(RUNNER_KINDS);
export type ParserKind = z.infer<typeof ParserKindSchema>;

/**
 * The Python environment the tests run in.
 * - `conda`: activate the conda env `conda_env` under `conda_root` first, exactly as SWE-bench's and
 *   SWE-Gym's eval scripts do (`source <root>/bin/activate` then `conda activate <env>`): their images
 *   keep pytest, tox and the libraries there, and only /root/.bashrc (never read by a
 *   non-interactive shell) activates it;
 * - `system`: run the command as the image's PATH finds it;
 * - `auto` (the default): `conda` when the image has `<conda_root>/bin/activate`, else `system`
 *   (decided in the container; the verdict records which one ran).
 */
export const PythonEnvModeSchema = z.enum(['auto', 'conda', 'system']);
export type PythonEnvMode = z.infer<typeof PythonEnvModeSchema>;
export const PythonEnvSchema = z
  .object({
    mode: PythonEnvModeSchema,
    conda_root: z.string().regex(/^\/[A-Za-z0-9_./-]*$/, 'an absolute path of [A-Za-z0-9_./-]'),
    conda_env: z.string().regex(/^[A-Za-z0-9_.-]+$/, 'a conda env name of [A-Za-z0-9_.-]'),
  })
  .strict();
export type PythonEnv = z.infer<typeof PythonEnvSchema>;
export const DEFAULT_PYTHON_ENV: PythonEnv = { mode: 'auto', conda_root: '/opt/miniconda3', conda_env: 'testbed' };

/**
 * What the eval script puts back before the test patch is applied (see eval-script.ts):
 * - files: every path the test patch touches → HEAD if tracked there, else deleted;
 * - dirs: the test directories those files live in → tracked files to HEAD, untracked removed;
 * - names: file-name globs handled anywhere in the tree → tracked changes back to HEAD, untracked
 *   files (ignored ones too) deleted.
 */
export const ProtectedPathsSchema = z.object({
  files: z.array(z.string().min(1)),
  dirs: z.array(z.string().min(1)),
  names: z.array(z.string().min(1)),
});
export type ProtectedPaths = z.infer<typeof ProtectedPathsSchema>;

/**
 * Everything that decides a verdict besides the patch. Its hash is part of the verdict cache key,
 * so changing the command, the files, the timeout or the hardening re-verifies.
 */
export const EvalSpecSchema = z.object({
  /** Shell command prefix, trusted (it comes from the task or the table below). */
  test_cmd: z.string().min(1),
  /** Every path the test patch touches. */
  test_files: z.array(z.string().min(1)),
  /** Arguments appended to test_cmd, each shell-quoted when rendered. */
  test_args: z.array(z.string()),
  parser: ParserKindSchema,
  python_env: PythonEnvSchema,
  /** How the repository's reference parser rewrote ids (repos.ts); observed ids get the same form. */
  id_rewrite: z.enum(['path_basename', 'mousebutton']).nullable(),
  timeout_s: z.number().int().positive(),
  env: z.object({ TZ: z.literal('UTC'), PYTHONHASHSEED: z.string().regex(/^\d+$/) }).strict(),
  protected_paths: ProtectedPathsSchema,
});
export type EvalSpec = z.infer<typeof EvalSpecSchema>;

interface RepoCommand {
  test_cmd: string;
  parser: ParserKind;
  /** Commands for specific `version`s of the repo, where they differ. */
  versions?: Record<string, string>;
}

/** Test command and parser per known repository (the facts live in repos.ts, by family). */
export const REPO_TEST_COMMANDS: Readonly<Record<string, RepoCommand>> = Object.fromEntries(
  RUNNER_KINDS.flatMap((kind) =>
    Object.entries(RUNNERS[kind].repos).map(([repo, facts]) => [
      repo,
      { test_cmd: facts.test_cmd, parser: kind, ...(facts.versions ? { versions: facts.versions } : {}) },
    ]),
  ),
);

/** The bundled task set's repositories (`minigym/<name>`). */
export const MINIGYM_TEST_COMMAND: RepoCommand = { test_cmd: 'python3 -m pytest -rA -p no:cacheprovider', parser: 'pytest' };

export const DEFAULT_TEST_COMMAND: RepoCommand = { test_cmd: 'pytest -rA', parser: 'pytest' };

export const DEFAULT_TIMEOUT_S = 1800;

/** Table entry for a repository; owner/name match case-insensitively (datasets disagree on MONAI's case). */
export function repoCommand(repo: string): RepoCommand | null {
  if (repo.toLowerCase().startsWith('minigym/')) return MINIGYM_TEST_COMMAND;
  const family = repoFamily(repo);
  if (!family) return null;
  return { test_cmd: family.facts.test_cmd, parser: family.kind, ...(family.facts.versions ? { versions: family.facts.versions } : {}) };
}

export interface ResolvedCommand {
  test_cmd: string;
  parser: ParserKind;
  source: 'instance' | 'repo' | 'default';
}

/**
 * The test command for an instance: its own `test_cmd`, else the repository table (by version
 * where the table says), else `pytest -rA`. An instance's own command keeps the repository's
 * parser kind when the repository is known (its log looks like its repository's), else pytest.
 */
export function resolveTestCommand(instance: Pick<Instance, 'repo' | 'version' | 'test_cmd'>): ResolvedCommand {
  const entry = repoCommand(instance.repo);
  const own = instance.test_cmd?.trim();
  if (own) return { test_cmd: own, parser: entry?.parser ?? 'pytest', source: 'instance' };
  if (entry) {
    const byVersion = instance.version != null ? entry.versions?.[instance.version] : undefined;
    return { test_cmd: byVersion ?? entry.test_cmd, parser: entry.parser, source: 'repo' };
  }
  return { ...DEFAULT_TEST_COMMAND, source: 'default' };
}

/**
 * Extensions SWE-bench drops from the test patch's files before passing them to the test command
 * (NON_TEST_EXTS; "csv" without a dot is theirs too).
 */
export const NON_TEST_EXTS = ['.json', '.png', 'csv', '.txt', '.md', '.jpg', '.jpeg', '.pkl', '.yml', '.yaml', '.toml'];

/**
 * Directory names that mark a test tree. The restore covers the outermost such directory above
 * each test-patch file (`tests/` for `tests/test_s3/test_x.py`, `pandas/tests/` for
 * `pandas/tests/frame/test_api.py`), so helpers shared across the tree are covered too. A file
 * with no such ancestor (`test_requests.py` at the root, a `foo_test.py` beside its module)
 * protects only itself: restoring its directory would revert the fix.
 */
const TEST_DIR_NAME = /^(tests?|testing|test[-_]?data|unittests?)$/i;

export function testDirsFor(files: string[]): string[] {
  const dirs = new Set<string>();
  for (const file of files) {
    const parts = file.split('/').slice(0, -1);
    const at = parts.findIndex((part) => TEST_DIR_NAME.test(part));
    if (at >= 0) dirs.add(parts.slice(0, at + 1).join('/'));
  }
  // A directory inside another one adds nothing.
  return [...dirs].filter((d) => ![...dirs].some((o) => o !== d && d.startsWith(`${o}/`))).sort();
}

/**
 * Names that change how tests are collected or run wherever they appear: pytest configuration
 * (conftest.py, its ini files — pytest.toml and the dot-names are pytest 8.1+/9), the ignore
 * rules that decide what `git clean` keeps, and the start-up hooks Python runs before any test
 * (sitecustomize, usercustomize, .pth files; /testbed is on sys.path in these images).
 */
export const PROTECTED_NAMES = [
  'conftest.py',
  'pytest.ini',
  '.pytest.ini',
  'pytest.toml',
  '.pytest.toml',
  'tox.ini',
  'setup.cfg',
  'pyproject.toml',
  '.gitignore',
  'sitecustomize.py',
  'usercustomize.py',
  '*.pth',
];

/**
 * What follows the test command. Normally the test patch's files, minus the ones it deletes and
 * SWE-bench's non-test extensions. A command ending in `-k` (mypy) wants one expression of test
 * names instead: the last `::` part of each FAIL_TO_PASS / PASS_TO_PASS id (mypy's data-driven
 * cases), or, with no ids, the `[case name]` headers the test patch adds — the convention of the
 * SWE-smith/SWE-Gym harnesses for mypy.
 */
export function testArgsFor(
  testCmd: string,
  instance: Pick<Instance, 'test_patch' | 'FAIL_TO_PASS' | 'PASS_TO_PASS'>,
  parser: ParserKind = 'pytest',
): string[] {
  if (/(^|\s)-k$/.test(testCmd.trim())) {
    const fromIds = [...instance.FAIL_TO_PASS, ...instance.PASS_TO_PASS].map((id) => id.split('::').pop() ?? id);
    const fromPatch = [...instance.test_patch.matchAll(/^\+\[case ([^\]]+)\]/gm)].map((m) => m[1] ?? '');
    const names = [...new Set(fromIds.length > 0 ? fromIds : fromPatch)].filter((n) => n !== '').sort();
    return [names.join(' or ')];
  }
  const files: string[] = [];
  for (const change of patchFileChanges(instance.test_patch)) {
    const path = change.newPath;
    if (path === null || NON_TEST_EXTS.some((ext) => path.endsWith(ext))) continue;
    if (!files.includes(path)) files.push(path);
  }
  return RUNNERS[parser].directives(files);
}

function assertSafeRelativePath(path: string): void {
  const parts = path.split('/');
  if (path.startsWith('/') || parts.includes('..') || parts.includes('.git') || path.includes('\0') || path.includes('\n')) {
    throw new Error(`test patch path ${JSON.stringify(path)} must be relative, inside the repository, outside .git, on one line`);
  }
}

export interface EvalSpecOptions {
  timeout_s?: number;
  pythonHashSeed?: string;
  /** The task set's / recipe's setting (default: auto-detect conda's `testbed`). */
  pythonEnv?: PythonEnvMode | Partial<PythonEnv>;
}

/** The eval spec of an instance (see EvalSpecSchema). Throws when the test patch names unsafe paths. */
export function buildEvalSpec(
  instance: Pick<Instance, 'repo' | 'version' | 'test_cmd' | 'test_patch' | 'FAIL_TO_PASS' | 'PASS_TO_PASS'>,
  options: EvalSpecOptions = {},
): EvalSpec {
  const command = resolveTestCommand(instance);
  const files = filesInPatch(instance.test_patch);
  files.forEach(assertSafeRelativePath);
  const pythonEnv = typeof options.pythonEnv === 'string' ? { mode: options.pythonEnv } : (options.pythonEnv ?? {});
  return EvalSpecSchema.parse({
    test_cmd: command.test_cmd,
    test_files: files,
    test_args: testArgsFor(command.test_cmd, instance, command.parser),
    parser: command.parser,
    python_env: { ...DEFAULT_PYTHON_ENV, ...pythonEnv },
    id_rewrite: repoFamily(instance.repo)?.facts.id_rewrite ?? null,
    timeout_s: options.timeout_s ?? DEFAULT_TIMEOUT_S,
    env: { TZ: 'UTC', PYTHONHASHSEED: options.pythonHashSeed ?? '0' },
    protected_paths: { files, dirs: testDirsFor(files), names: PROTECTED_NAMES },
  });
}

/** sha256 of the spec's canonical (sorted-key) JSON: equal specs hash alike whatever their key order. */
export function specHash(spec: EvalSpec): string {
  return sha256Hex(canonicalJson(EvalSpecSchema.parse(spec)));
}
