import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { buildTaskImages, COMMIT_ENV, COMMIT_GIT_FLAGS } from '../../src/tasks/build-images.js';
import { InstanceSchema, type Instance } from '../../src/tasks/instance.js';
import { MYPY_TREE, REAL_RUNNER_TASKS, SYMPY_PRE16_LAYOUT, SYMPY_PRE16_TASKS, UPSTREAM_TREES, type Edit, type RealRunnerTask } from '../fixtures/realrunner/tasks.js';
import { ensureRunnerBase, LAYOUTS, RUNNER_TEMPLATE, type Layout } from './layouts.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
export const FIXTURE_CACHE = process.env.RFT_FIXTURE_CACHE ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'rft', 'fixtures');

// The same commit recipe the image build uses (src/tasks/build-images.ts), free of the machine's git config.
const GIT_ENV = { ...process.env, ...COMMIT_ENV, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: os.devNull };
const git = (cwd: string, ...args: string[]): string =>
  execFileSync('git', [...COMMIT_GIT_FLAGS, ...args], { cwd, env: GIT_ENV, encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });

/** Downloads (once, cached) the Debian source and binary packages; returns the cache folder. */
export function fetchFixtureSources(): string {
  const run = spawnSync('bash', [path.join(ROOT, 'scripts/fetch-fixture-sources.sh')], {
    encoding: 'utf8',
    env: { ...process.env, RFT_FIXTURE_CACHE: FIXTURE_CACHE },
  });
  if (run.status !== 0) throw new Error(`scripts/fetch-fixture-sources.sh failed:\n${run.stderr}`);
  return FIXTURE_CACHE;
}

/** The upstream tree of a source package, unpacked once into the cache (only the parts a task needs). */
function upstreamTree(cache: string, tree: RealRunnerTask['tree']): string {
  const dir = path.join(cache, 'trees', tree);
  if (existsSync(path.join(dir, '.complete'))) return dir;
  if (tree === 'mypy') return mypyTree(cache, dir);
  if (tree === 'sympy-pre1.6') return sympyPre16Tree(cache, dir);
  const spec = UPSTREAM_TREES[tree];
  const tarball = readdirSync(path.join(cache, 'src')).find((name) => spec.tarball.test(name));
  if (!tarball) throw new Error(`no ${tree} source tarball in ${cache}/src`);
  const scratch = mkdtempSync(path.join(cache, `.unpack-${tree}-`));
  execFileSync('tar', ['-xzf', path.join(cache, 'src', tarball), '-C', scratch, ...spec.keep.map((p) => `${spec.top}/${p}`)]);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(path.dirname(dir), { recursive: true });
  renameSync(path.join(scratch, spec.top), dir);
  rmSync(scratch, { recursive: true, force: true });
  writeFileSync(path.join(dir, '.complete'), '');
  return dir;
}

/** mypy's tree: the binary package's `mypy/` without compiled modules, plus our suite (MYPY_TREE). */
function mypyTree(cache: string, dir: string): string {
  const deb = readdirSync(path.join(cache, 'debs')).find((name) => MYPY_TREE.deb.test(name));
  if (!deb) throw new Error(`no python3-mypy package in ${cache}/debs`);
  const scratch = mkdtempSync(path.join(cache, '.unpack-mypy-'));
  execFileSync('dpkg-deb', ['-x', path.join(cache, 'debs', deb), scratch]);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  cpSync(path.join(scratch, 'usr/lib/python3/dist-packages/mypy'), path.join(dir, 'mypy'), {
    recursive: true,
    filter: (src) => !src.endsWith('.so') && path.basename(src) !== '__pycache__',
  });
  rmSync(scratch, { recursive: true, force: true });
  for (const [file, text] of Object.entries(MYPY_TREE.files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  }
  writeFileSync(path.join(dir, '.complete'), '');
  return dir;
}

/** The sympy tree laid out as releases before 1.6 laid it out (SYMPY_PRE16_LAYOUT). */
function sympyPre16Tree(cache: string, dir: string): string {
  const layout = SYMPY_PRE16_LAYOUT;
  const scratch = mkdtempSync(path.join(cache, '.relayout-sympy-'));
  cpSync(upstreamTree(cache, layout.from), scratch, { recursive: true, filter: (src) => path.basename(src) !== '.complete' });
  const moved = path.join(scratch, layout.moved);
  for (const entry of readdirSync(moved, { withFileTypes: true })) {
    // The package's own tests test the new layout; its __init__ only re-exports test and doctest.
    if (entry.isFile() && entry.name.endsWith('.py') && entry.name !== '__init__.py') renameSync(path.join(moved, entry.name), path.join(scratch, layout.into, entry.name));
  }
  rmSync(moved, { recursive: true, force: true });
  for (const file of pythonFiles(scratch)) {
    const text = readFileSync(file, 'utf8');
    const renamed = layout.rename.reduce((t, [from, to]) => t.replaceAll(from, to), text);
    if (renamed !== text) writeFileSync(file, renamed);
  }
  applyEdits(scratch, [layout.entry]);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(path.dirname(dir), { recursive: true });
  renameSync(scratch, dir);
  writeFileSync(path.join(dir, '.complete'), '');
  return dir;
}

/** The Python sources of a tree (bin/'s scripts have no suffix but are Python too). */
function pythonFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && (entry.name.endsWith('.py') || path.basename(entry.parentPath) === 'bin'))
    .map((entry) => path.join(entry.parentPath, entry.name));
}

function applyEdits(dir: string, edits: readonly Edit[]): void {
  for (const edit of edits) {
    const file = path.join(dir, edit.file);
    const text = readFileSync(file, 'utf8');
    if (edit.from !== '' && !text.includes(edit.from)) throw new Error(`${edit.file} has no ${JSON.stringify(edit.from)}`);
    writeFileSync(file, edit.from === '' ? text + edit.to : text.replace(edit.from, edit.to));
  }
}

/** The diff an edit list makes on the committed base, the tree put back afterwards. */
function diffOf(repo: string, edits: readonly Edit[]): string {
  applyEdits(repo, edits);
  const diff = git(repo, 'diff', 'HEAD');
  git(repo, 'checkout', '-q', 'HEAD', '--', '.');
  return diff;
}

export interface RealRunnerFixture {
  task: RealRunnerTask;
  instance: Instance;
  /** Source tree (with the bug, committed as the base commit) the images are built from. */
  sourceDir: string;
  predictions: { gold: string; wrong: string; breaksP2P: string; forged: string };
}

/** Instances and predictions of the real-runner tasks, their trees made (once) in the cache. */
export function realRunnerFixtures(cache = fetchFixtureSources(), tasks: readonly RealRunnerTask[] = REAL_RUNNER_TASKS): RealRunnerFixture[] {
  return tasks.map((task) => {
    const repo = path.join(cache, 'repos', task.instance_id);
    const made = path.join(cache, 'repos', `${task.instance_id}.json`);
    if (!existsSync(made)) {
      rmSync(repo, { recursive: true, force: true });
      mkdirSync(path.dirname(repo), { recursive: true });
      cpSync(upstreamTree(cache, task.tree), repo, { recursive: true, filter: (src) => path.basename(src) !== '.complete' });
      applyEdits(repo, task.bug);
      git(repo, 'init', '-q', '-b', 'main');
      git(repo, 'add', '-A');
      git(repo, 'commit', '-q', '--no-verify', '-m', 'base');
      const record = {
        base_commit: git(repo, 'rev-parse', 'HEAD').trim(),
        gold: diffOf(repo, task.gold),
        test_patch: diffOf(repo, task.test),
        wrong: diffOf(repo, task.wrong),
        breaksP2P: diffOf(repo, task.breaksP2P),
        forged: diffOf(repo, task.forged),
      };
      rmSync(path.join(repo, '.git'), { recursive: true, force: true });
      writeFileSync(made, JSON.stringify(record));
    }
    const record = JSON.parse(readFileSync(made, 'utf8')) as { base_commit: string; gold: string; test_patch: string; wrong: string; breaksP2P: string; forged: string };
    const instance = InstanceSchema.parse({
      instance_id: task.instance_id,
      repo: task.repo,
      base_commit: record.base_commit,
      problem_statement: task.problem_statement,
      version: task.version,
      patch: record.gold,
      test_patch: record.test_patch,
      FAIL_TO_PASS: task.FAIL_TO_PASS,
      PASS_TO_PASS: task.PASS_TO_PASS,
    });
    return { task, instance, sourceDir: repo, predictions: { gold: record.gold, wrong: record.wrong, breaksP2P: record.breaksP2P, forged: record.forged } };
  });
}

/**
 * Everything the real-runner tests need, built once and cached (the sources on disk, the images in
 * the engine): the runner bases of both layouts and one image per task and layout.
 */
export async function ensureRealRunnerImages(docker: Docker, log: (line: string) => void = () => {}): Promise<RealRunnerFixture[]> {
  const cache = fetchFixtureSources();
  const fixtures = realRunnerFixtures(cache);
  for (const layout of LAYOUTS as Layout[]) await buildFixtureImages(docker, cache, fixtures, layout, log);
  return fixtures;
}

/** The pre-1.6 sympy task (SYMPY_PRE16_TASKS), built in the system layout only, on the same runner base. */
export async function ensureSympyPre16Images(docker: Docker, log: (line: string) => void = () => {}): Promise<RealRunnerFixture[]> {
  const cache = fetchFixtureSources();
  const fixtures = realRunnerFixtures(cache, SYMPY_PRE16_TASKS);
  await buildFixtureImages(docker, cache, fixtures, 'system', log);
  return fixtures;
}

/** One image per fixture in one layout, on that layout's runner base (built first if missing). */
async function buildFixtureImages(docker: Docker, cache: string, fixtures: RealRunnerFixture[], layout: Layout, log: (line: string) => void): Promise<void> {
  const byId = new Map(fixtures.map((f) => [f.instance.instance_id, f]));
  await buildTaskImages({
    docker,
    instances: fixtures.map((f) => f.instance),
    reposDir: path.join(cache, 'repos'),
    sourceDirFor: (instance) => byId.get(instance.instance_id)!.sourceDir,
    baseImage: await ensureRunnerBase(docker, layout, path.join(cache, 'debs')),
    imageTemplate: RUNNER_TEMPLATE[layout],
    log,
  });
}
