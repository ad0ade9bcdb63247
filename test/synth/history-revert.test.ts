import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Candidate, FunctionTarget } from '../../src/synth/candidate.js';
import { historyRevertStrategy, isDocPath, isTestPath, parseLog, revertableFiles } from '../../src/synth/strategies/history-revert.js';
import type { RepoView } from '../../src/synth/strategy.js';
import { collect } from './collect.js';

// history_revert on a small git repository built here, read through a RepoView over the checkout (as the pipeline's reads /testbed).

let dir: string;

function git(...args: string[]): string {
  return execFileSync('git', ['-C', dir, ...args], { encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x', GIT_CONFIG_NOSYSTEM: '1', HOME: dir } });
}

function commit(message: string, files: Record<string, string>): string {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  git('add', '-A');
  git('commit', '-q', '-m', message);
  return git('rev-parse', 'HEAD').trim();
}

const calc = (add: string, scale: string, unused = '    return 0') => `def add(a, b):\n${add}\n\n\ndef scale(x, k):\n${scale}\n\n\ndef unused():\n${unused}\n`;

const view = (): RepoView => ({
  readFile: async (path) => readFileSync(join(dir, path), 'utf8'),
  git: async (args) => git(...args),
});

const TARGETS: FunctionTarget[] = [
  { file: 'pkg/calc.py', name: 'add', start_line: 1, end_line: 2 },
  { file: 'pkg/calc.py', name: 'scale', start_line: 5, end_line: 8 },
];
const hashes: Record<string, string> = {};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rft-history-'));
  git('init', '-q', '-b', 'main');
  commit('initial', { 'pkg/calc.py': calc('    return a + b', '    return x * k'), 'tests/test_calc.py': 'def test_add():\n    pass\n' });
  hashes.scale = commit('scale: negative factors clamp to zero', {
    'pkg/calc.py': calc('    return a + b', '    if k < 0:\n        return 0\n    return x * k'),
    'tests/test_calc.py': 'def test_add():\n    pass\n\n\ndef test_scale_negative():\n    pass\n',
  });
  commit('docs', { 'README.md': 'calc\n' });
  commit('more tests', { 'tests/test_more.py': 'def test_more():\n    pass\n' });
  commit('add a module', { 'pkg/extra.py': 'X = 1\n' });
  hashes.add = commit('add: coerce to int', { 'pkg/calc.py': calc('    return int(a) + int(b)', '    if k < 0:\n        return 0\n    return x * k') });
  commit('unused: return one', { 'pkg/calc.py': calc('    return int(a) + int(b)', '    if k < 0:\n        return 0\n    return x * k', '    return 1') });
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('history_revert', () => {
  it('reverts the source side of the commits that changed a target function, keeping the tests they came with', async () => {
    const all = await collect(historyRevertStrategy.candidates({ repo: view(), targets: TARGETS, seed: 1, limit: 10 }));
    expect(all.map((c) => c.kind).sort()).toEqual([hashes.add!.slice(0, 12), hashes.scale!.slice(0, 12)].sort());
    const base = readFileSync(join(dir, 'pkg/calc.py'), 'utf8');
    const scale = all.find((c) => c.kind === hashes.scale!.slice(0, 12))!;
    expect(scale.strategy).toBe('history_revert');
    expect(scale.functions.map((f) => f.name)).toEqual(['scale']);
    expect(scale.edits).toEqual([{ path: 'pkg/calc.py', before: base, after: calc('    return int(a) + int(b)', '    return x * k', '    return 1') }]);
    expect(scale.description).toContain('scale: negative factors clamp to zero');
    const add = all.find((c) => c.kind === hashes.add!.slice(0, 12))!;
    expect(add.functions.map((f) => f.name)).toEqual(['add']);
    expect(add.edits[0]!.after).toBe(calc('    return a + b', '    if k < 0:\n        return 0\n    return x * k', '    return 1'));
  });

  it('is deterministic under the seed and stops at the limit', async () => {
    const a = await collect(historyRevertStrategy.candidates({ repo: view(), targets: TARGETS, seed: 9, limit: 10 }));
    const b = await collect(historyRevertStrategy.candidates({ repo: view(), targets: TARGETS, seed: 9, limit: 10 }));
    expect(b).toEqual(a);
    expect(await collect(historyRevertStrategy.candidates({ repo: view(), targets: TARGETS, seed: 9, limit: 1 }))).toEqual(a.slice(0, 1));
  });

  it('gives nothing when no commit touches a target, the image has no history, or the base is the only commit', async () => {
    expect(await collect(historyRevertStrategy.candidates({ repo: view(), targets: [{ file: 'pkg/other.py', name: 'f', start_line: 1, end_line: 2 }], seed: 1, limit: 5 }))).toEqual([]);
    const noGit: RepoView = { readFile: view().readFile, git: async () => Promise.reject(new Error('fatal: not a git repository')) };
    expect(await collect(historyRevertStrategy.candidates({ repo: noGit, targets: TARGETS, seed: 1, limit: 5 }))).toEqual([]);
    const single = mkdtempSync(join(tmpdir(), 'rft-history-single-'));
    try {
      const run = (...args: string[]) => execFileSync('git', ['-C', single, ...args], { encoding: 'utf8', env: { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@x', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@x', HOME: single } });
      run('init', '-q');
      mkdirSync(join(single, 'pkg'));
      writeFileSync(join(single, 'pkg/calc.py'), calc('    return a + b', '    return x * k'));
      run('add', '-A');
      run('commit', '-q', '-m', 'base');
      const repo: RepoView = { readFile: async (p) => readFileSync(join(single, p), 'utf8'), git: async (args) => run(...args) };
      expect(await collect(historyRevertStrategy.candidates({ repo, targets: TARGETS, seed: 1, limit: 5 }))).toEqual([]);
    } finally {
      rmSync(single, { recursive: true, force: true });
    }
  });

  it('tells tests and docs from source, and which commits can be reverted', () => {
    expect(isTestPath('tests/test_x.py')).toBe(true);
    expect(isTestPath('django/contrib/admin/tests.py')).toBe(false);
    expect(isTestPath('pkg/testing/util.py')).toBe(true);
    expect(isTestPath('pkg/foo_test.py')).toBe(true);
    expect(isTestPath('pkg/conftest.py')).toBe(true);
    expect(isTestPath('pkg/contest.py')).toBe(false);
    expect(isDocPath('docs/index.py')).toBe(true);
    expect(isDocPath('CHANGES.rst')).toBe(true);
    expect(isDocPath('pkg/core.py')).toBe(false);
    const [c] = parseLog('\u001eabc\u001fp1\u001fsubject\n\nM\tpkg/a.py\nM\ttests/test_a.py\n');
    expect(c).toEqual({ hash: 'abc', subject: 'subject', parents: 1, files: [{ status: 'M', path: 'pkg/a.py' }, { status: 'M', path: 'tests/test_a.py' }] });
    expect(revertableFiles(c!)).toEqual(['pkg/a.py']);
    expect(revertableFiles({ ...c!, parents: 2 })).toBeNull();
    expect(revertableFiles({ ...c!, files: [{ status: 'A', path: 'pkg/a.py' }] })).toBeNull();
    expect(revertableFiles({ ...c!, files: [{ status: 'M', path: 'tests/test_a.py' }] })).toBeNull();
  });
});
