import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, readFileSync, unlinkSync, renameSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Workspace } from '../../src/agent/workspace.js';
import { decodeBytes, encodeText } from '../../src/util/byte-text.js';
import { filesInPatch, normalizePatch, patchFileChanges, patchHash } from '../../src/verify/patch.js';

const DIFF = [
  'diff --git a/src/app.py b/src/app.py',
  'index 1111111..2222222 100644',
  '--- a/src/app.py',
  '+++ b/src/app.py',
  '@@ -1,2 +1,2 @@',
  ' def f():',
  '-    return 1',
  '+    return 2',
  '',
].join('\n');

describe('normalizePatch', () => {
  it('keeps a clean diff as it is', () => {
    expect(normalizePatch(DIFF)).toBe(DIFF);
  });

  it('drops prose and a fence opener before the first diff --git line', () => {
    const text = `I fixed the bug. Here is the patch:\n\n\`\`\`diff\n${DIFF}`;
    expect(normalizePatch(text)).toBe(DIFF);
  });

  it('starts at a bare --- header when there is no diff --git line', () => {
    const plain = '--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n';
    expect(normalizePatch(`Explanation first.\n${plain}`)).toBe(plain);
  });

  it('turns CRLF and lone CR into LF', () => {
    expect(normalizePatch(DIFF.replace(/\n/g, '\r\n'))).toBe(DIFF);
    expect(normalizePatch(DIFF.replace(/\n/g, '\r'))).toBe(DIFF);
  });

  it('ends with exactly one newline', () => {
    expect(normalizePatch(DIFF.trimEnd())).toBe(DIFF);
    expect(normalizePatch(`${DIFF}\n\n\n`)).toBe(DIFF);
  });

  it('keeps a final context line that is a single space', () => {
    const withSpaceContext = `${DIFF} \n`;
    expect(normalizePatch(withSpaceContext)).toBe(withSpaceContext);
  });

  it('maps empty and whitespace-only text to the empty patch', () => {
    expect(normalizePatch('')).toBe('');
    expect(normalizePatch('  \n\t\r\n \n')).toBe('');
  });

  it('keeps text with no diff header (so it fails to apply instead of counting as empty)', () => {
    expect(normalizePatch('I could not fix it.\r\n')).toBe('I could not fix it.\n');
  });

  it('hashes equal changes alike whatever the wrapping', () => {
    const a = patchHash(normalizePatch(`Sure!\n${DIFF.replace(/\n/g, '\r\n')}\n\n`));
    const b = patchHash(normalizePatch(DIFF));
    expect(a).toBe(b);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(patchHash(normalizePatch(DIFF.replace('return 2', 'return 3')))).not.toBe(b);
  });
});

describe('filesInPatch on hand-written diffs', () => {
  it('reads a plain unified diff with --- / +++ headers only', () => {
    expect(filesInPatch('--- a/pkg/mod.py\n+++ b/pkg/mod.py\n@@ -1 +1 @@\n-a\n+b\n')).toEqual(['pkg/mod.py']);
  });

  it('handles created and deleted files through /dev/null', () => {
    const patch = [
      '--- /dev/null',
      '+++ b/new.py',
      '@@ -0,0 +1 @@',
      '+x = 1',
      '--- a/old.py',
      '+++ /dev/null',
      '@@ -1 +0,0 @@',
      '-y = 2',
      '',
    ].join('\n');
    expect(filesInPatch(patch)).toEqual(['new.py', 'old.py']);
    expect(patchFileChanges(patch).map((c) => c.kind)).toEqual(['add', 'delete']);
  });

  it('does not mistake a removed line starting with "-- " for a file header', () => {
    const patch = [
      'diff --git a/q.sql b/q.sql',
      '--- a/q.sql',
      '+++ b/q.sql',
      '@@ -1,2 +1,1 @@',
      '--- comment',
      '++- added line that starts with +-',
      ' select 1;',
      '',
    ].join('\n');
    expect(filesInPatch(patch)).toEqual(['q.sql']);
  });

  it('dedupes and keeps the order of appearance', () => {
    const twice = `${DIFF}${DIFF.replace(/src\/app\.py/g, 'lib/b.py')}${DIFF}`;
    expect(filesInPatch(twice)).toEqual(['src/app.py', 'lib/b.py']);
  });

  it('drops GNU diff timestamps after a tab', () => {
    const patch = '--- a/x.py\t2024-01-01 10:00:00.000000000 +0000\n+++ b/x.py\t2024-01-02 10:00:00.000000000 +0000\n@@ -1 +1 @@\n-a\n+b\n';
    expect(filesInPatch(patch)).toEqual(['x.py']);
  });
});

/** Real `git diff` output, so the parser is checked against what git writes, not what we think it writes. */
describe('filesInPatch on real git diffs', () => {
  const repo = mkdtempSync(join(tmpdir(), 'rft-patch-'));
  afterAll(() => rmSync(repo, { recursive: true, force: true }));
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.email=t@t', '-c', 'user.name=t', ...args], { cwd: repo, encoding: 'utf8' });

  git('init', '-q');
  mkdirSync(join(repo, 'pkg'));
  mkdirSync(join(repo, 'dir with space'));
  writeFileSync(join(repo, 'pkg/keep.py'), 'a = 1\n');
  writeFileSync(join(repo, 'pkg/gone.py'), 'b = 2\n');
  writeFileSync(join(repo, 'pkg/moved.py'), Array.from({ length: 20 }, (_, i) => `line_${i} = ${i}\n`).join(''));
  writeFileSync(join(repo, 'dir with space/file name.py'), 'c = 3\n');
  git('add', '-A');
  git('commit', '-qm', 'base');

  writeFileSync(join(repo, 'pkg/keep.py'), 'a = 2\n');
  unlinkSync(join(repo, 'pkg/gone.py'));
  renameSync(join(repo, 'pkg/moved.py'), join(repo, 'pkg/renamed.py'));
  writeFileSync(join(repo, 'pkg/café.py'), 'd = 4\n');
  writeFileSync(join(repo, 'pkg/blob.bin'), Buffer.from([0, 1, 2, 3, 255]));
  writeFileSync(join(repo, 'dir with space/file name.py'), 'c = 4\n');
  git('add', '-A');
  const diff = git('diff', '--cached', '-M', '--binary', 'HEAD');

  it('lists every touched path: modified, deleted, both sides of a rename, added (unicode, binary, spaces)', () => {
    expect(new Set(filesInPatch(diff))).toEqual(
      new Set([
        'pkg/keep.py',
        'pkg/gone.py',
        'pkg/moved.py',
        'pkg/renamed.py',
        'pkg/café.py',
        'pkg/blob.bin',
        'dir with space/file name.py',
      ]),
    );
    expect(filesInPatch(diff)).toHaveLength(7);
  });

  it('classifies each change', () => {
    const byPath = new Map(patchFileChanges(diff).map((c) => [c.newPath ?? c.oldPath, c]));
    expect(byPath.get('pkg/keep.py')?.kind).toBe('modify');
    expect(byPath.get('pkg/gone.py')).toEqual({ oldPath: 'pkg/gone.py', newPath: null, kind: 'delete' });
    expect(byPath.get('pkg/renamed.py')).toEqual({ oldPath: 'pkg/moved.py', newPath: 'pkg/renamed.py', kind: 'rename' });
    expect(byPath.get('pkg/café.py')).toEqual({ oldPath: null, newPath: 'pkg/café.py', kind: 'add' });
    expect(byPath.get('pkg/blob.bin')?.kind).toBe('add');
  });

  it('normalised output of a wrapped real diff still applies with git apply', () => {
    const wrapped = `Here you go:\r\n\r\n${diff.replace(/\n/g, '\r\n')}\r\n\r\n`;
    const normalized = normalizePatch(wrapped);
    const patchFile = join(repo, '..', `${repo.split('/').pop()}.patch`);
    writeFileSync(patchFile, normalized);
    try {
      git('reset', '-q', '--hard', 'HEAD');
      git('apply', '--check', patchFile);
      git('apply', patchFile);
      expect(readFileSync(join(repo, 'pkg/keep.py'), 'utf8')).toBe('a = 2\n');
    } finally {
      rmSync(patchFile, { force: true });
    }
  });
});

describe('a patch of files whose bytes are not plain UTF-8 LF text', () => {
  const repo = mkdtempSync(join(tmpdir(), 'rft-patch-bytes-'));
  const git = (...args: string[]) => execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' });
  git('init', '-q');
  // A CRLF file, and a Latin-1 file with a coding cookie: both as real repositories have them.
  const crlf = Buffer.from('def f():\r\n    return 1\r\n\r\n\r\ndef g():\r\n    return 2\r\n');
  const latin1 = Buffer.from('# -*- coding: latin-1 -*-\nNAME = "café"\n\ndef h():\n    return 3\n', 'latin1');
  writeFileSync(join(repo, 'crlf.py'), crlf);
  writeFileSync(join(repo, 'latin1.py'), latin1);
  git('add', '-A');
  git('-c', 'user.name=t', '-c', 'user.email=t@t', 'commit', '-qm', 'base');

  it('made by the workspace from the decoded files, normalised and written as bytes, applies with git apply and changes only the edited lines', () => {
    const base = new Map([
      ['crlf.py', decodeBytes(crlf)],
      ['latin1.py', decodeBytes(latin1)],
    ]);
    const workspace = new Workspace(base);
    workspace.write('crlf.py', base.get('crlf.py')!.replace('return 2\r\n', 'return 20\r\n'));
    workspace.write('latin1.py', base.get('latin1.py')!.replace('return 3', 'return 30'));
    const patch = normalizePatch(workspace.diff());
    // Content lines of the CRLF file keep their CR; the Latin-1 context line keeps its byte.
    expect(patch).toContain('-    return 2\r\n+    return 20\r\n');
    expect(patch).toContain(' NAME = "caf\uDCE9"\n');
    const patchFile = join(repo, '..', `${repo.split('/').pop()}-bytes.patch`);
    writeFileSync(patchFile, encodeText(patch));
    try {
      git('apply', '--check', patchFile);
      git('apply', patchFile);
      expect(readFileSync(join(repo, 'crlf.py')).equals(Buffer.from(crlf.toString().replace('return 2\r\n', 'return 20\r\n')))).toBe(true);
      expect(readFileSync(join(repo, 'latin1.py')).equals(Buffer.from(latin1.toString('latin1').replace('return 3', 'return 30'), 'latin1'))).toBe(true);
    } finally {
      rmSync(patchFile, { force: true });
    }
  });

  it('keeps the CRs of content lines but drops those of a patch that is CRLF throughout (transport)', () => {
    const ofCrlfFile = 'diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\r\n+b\r\n';
    expect(normalizePatch(ofCrlfFile)).toBe(ofCrlfFile);
    expect(normalizePatch(ofCrlfFile.replace(/\r?\n/g, '\r\n'))).toBe(ofCrlfFile.replace(/\r\n/g, '\n'));
  });
});
