import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRecipe } from '../../src/recipe/load.js';
import { missingPathProblems, recipePaths } from '../../src/recipe/paths.js';
import { rft } from '../cli/helpers.js';

/** A recipe in <tmp>/recipes/ whose relative paths point next to it and one level up. */
function layout(extra = ''): { dir: string; file: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-paths-'));
  mkdirSync(path.join(dir, 'recipes'));
  mkdirSync(path.join(dir, 'scripts'));
  writeFileSync(path.join(dir, 'scripts', 'train.sh'), '#!/bin/sh\n');
  const file = path.join(dir, 'recipes', 'r.yaml');
  writeFileSync(
    file,
    `name: t
tasks:
  train:
    path: ../tasks.jsonl
    ids_file: ids.txt
policy: {kind: simulated, model: sim-base}
sft:
  tokenizer: ../tok
finetune:
  backend: command
  command: bash ../scripts/train.sh --dataset {dataset}
  base_model: sim-base
serve:
  kind: command
  command: ./serve.sh {model} --port {port}
${extra}`,
  );
  return { dir, file };
}

describe('one base for paths: the recipe file\'s folder', () => {
  it('resolves task files, ids files, the tokenizer folder and the commands\' program and script against the recipe folder, not the current directory', () => {
    const { dir, file } = layout();
    const loaded = loadRecipe(file);
    expect(loaded.baseDir).toBe(path.join(dir, 'recipes'));
    expect(recipePaths(loaded).map((p) => [p.field, p.what, p.resolved])).toEqual([
      ['tasks.train.path', 'task file', path.join(dir, 'tasks.jsonl')],
      ['tasks.train.ids_file', 'ids file', path.join(dir, 'recipes', 'ids.txt')],
      ['sft.tokenizer', 'tokenizer folder', path.join(dir, 'tok')],
      ['finetune.command', 'script', path.join(dir, 'scripts', 'train.sh')],
      ['serve.command', 'program', path.join(dir, 'recipes', 'serve.sh')],
    ]);
  });

  it('an encoding name is not a path', () => {
    const { file } = layout();
    const loaded = loadRecipe(file, ['sft.tokenizer=cl100k_base']);
    expect(recipePaths(loaded).map((p) => p.field)).not.toContain('sft.tokenizer');
  });

  it('each missing file is a problem naming the field, the line (or the --set) and the resolved path', () => {
    const { dir, file } = layout();
    mkdirSync(path.join(dir, 'tok'));
    writeFileSync(path.join(dir, 'tok', 'tokenizer.json'), '{}');
    const problems = missingPathProblems(loadRecipe(file, ['tasks.train.ids_file=../ids.txt']));
    expect(problems).toEqual([
      { field: 'tasks.train.path', line: 4, override: null, message: `task file not found: ${path.join(dir, 'tasks.jsonl')} (../tasks.jsonl resolved against the recipe's folder)` },
      { field: 'tasks.train.ids_file', line: null, override: '--set tasks.train.ids_file=../ids.txt', message: `ids file not found: ${path.join(dir, 'ids.txt')} (../ids.txt resolved against the recipe's folder)` },
      { field: 'sft.tokenizer', line: 8, override: null, message: `tokenizer_config.json missing in the tokenizer folder ${path.join(dir, 'tok')} (../tok resolved against the recipe's folder)` },
      { field: 'serve.command', line: 15, override: null, message: `program not found: ${path.join(dir, 'recipes', 'serve.sh')} (./serve.sh resolved against the recipe's folder)` },
    ]);
  });

  it('rft recipe check, run from another folder: exit 2, each missing file with file:line, field and resolved path; the resolved recipe still printed', () => {
    const { dir, file } = layout();
    const out = rft(['recipe', 'check', file], { cwd: tmpdir() });
    expect(out.status).toBe(2);
    expect(out.stdout).toMatch(/^# sha256 [0-9a-f]{64}\n/);
    expect(out.stderr).toContain(`rft: ${file}:4: tasks.train.path: task file not found: ${path.join(dir, 'tasks.jsonl')}`);
    expect(out.stderr).toContain(`${file}:5: tasks.train.ids_file: ids file not found: ${path.join(dir, 'recipes', 'ids.txt')}`);
    expect(out.stderr).toContain(`${file}:8: sft.tokenizer: tokenizer folder not found: ${path.join(dir, 'tok')}`);
    expect(out.stderr).not.toContain('finetune.command');

    // Every file there: the check passes from any folder.
    writeFileSync(path.join(dir, 'tasks.jsonl'), '');
    writeFileSync(path.join(dir, 'recipes', 'ids.txt'), 'a__b-1\n');
    mkdirSync(path.join(dir, 'tok'));
    for (const name of ['tokenizer.json', 'tokenizer_config.json']) writeFileSync(path.join(dir, 'tok', name), '{}');
    writeFileSync(path.join(dir, 'recipes', 'serve.sh'), '#!/bin/sh\n', { mode: 0o755 });
    const passed = rft(['recipe', 'check', file], { cwd: '/' });
    expect(passed.status, passed.stderr).toBe(0);
  });

  it('the shipped recipes call the bundled scripts from their own folder', () => {
    for (const name of ['demo.yaml', 'moatless-7b.yaml']) {
      const loaded = loadRecipe(path.resolve(import.meta.dirname, '../../recipes', name));
      const script = recipePaths(loaded).find((p) => p.field === 'finetune.command' && p.what === 'script');
      expect(script?.written).toMatch(/^\.\.\/scripts\//);
      expect(missingPathProblems(loaded).filter((p) => p.field === 'finetune.command')).toEqual([]);
    }
  });
});
