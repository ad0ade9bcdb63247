import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readRecords } from '../../src/store/ledger.js';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseRecipe } from '../../src/recipe/load.js';
import { RunLockedError } from '../../src/store/lock.js';
import { RecipeMismatchError, RunDir } from '../../src/store/run-dir.js';

const RECIPE = `name: exp
tasks:
  train: {path: tasks.jsonl}
policy: {kind: simulated, model: sim-base}
finetune: {backend: command, command: "true", base_model: sim-base}
`;

function runsDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'rft-runs-'));
}

describe('run directory', () => {
  it('is created with the resolved recipe, its hash, and an empty state', () => {
    const runs = runsDir();
    const loaded = parseRecipe(RECIPE, 'r.yaml');
    const run = RunDir.open({ runsDir: runs, loaded });
    expect(run.created).toBe(true);
    expect(run.dir).toBe(path.join(runs, 'exp'));
    const recipeText = readFileSync(run.path('recipe.yaml'), 'utf8');
    expect(recipeText).toContain(`# sha256 ${loaded.hash}`);
    expect(recipeText).toContain('samples_per_task: 30');
    expect(parseRecipe(recipeText, 'again.yaml').hash).toBe(loaded.hash);
    expect(run.meta.recipe_hash).toBe(loaded.hash);
    expect(run.readState().phases).toEqual({});
    run.close();
  });

  it('is held by one process at a time', () => {
    const runs = runsDir();
    const loaded = parseRecipe(RECIPE, 'r.yaml');
    const run = RunDir.open({ runsDir: runs, loaded });
    expect(() => RunDir.open({ runsDir: runs, loaded })).toThrow(RunLockedError);
    run.close();
    RunDir.open({ runsDir: runs, loaded }).close();
  });

  it('reopens with the same recipe and keeps state and ledgers', () => {
    const runs = runsDir();
    const loaded = parseRecipe(RECIPE, 'r.yaml');
    const run = RunDir.open({ runsDir: runs, loaded });
    run.writeState({ ...run.readState(), phases: { 'iter-0/sample': { status: 'running', updated_at: 'x', note: null } } });
    const { ledger } = run.openLedger('iter-0/trajectories.jsonl', z.object({ n: z.number() }));
    ledger.append({ n: 1 });
    ledger.close();
    run.close();
    const again = RunDir.open({ runsDir: runs, loaded });
    expect(again.created).toBe(false);
    expect(again.readState().phases['iter-0/sample']?.status).toBe('running');
    again.openLedger('iter-0/trajectories.jsonl', z.object({ n: z.number() })).ledger.close();
    expect([...readRecords(again.path('iter-0/trajectories.jsonl'), z.object({ n: z.number() }))]).toEqual([{ n: 1 }]);
    again.close();
  });

  it('refuses a different recipe, naming what changed, and keeps the run as it was', () => {
    const runs = runsDir();
    RunDir.open({ runsDir: runs, loaded: parseRecipe(RECIPE, 'r.yaml') }).close();
    const before = readFileSync(path.join(runs, 'exp', 'recipe.yaml'), 'utf8');
    const changed = parseRecipe(RECIPE, 'r.yaml', ['select.cap=1', 'sampling.temperature=0.5']);
    let error: unknown;
    try {
      RunDir.open({ runsDir: runs, loaded: changed });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(RecipeMismatchError);
    expect((error as RecipeMismatchError).changedFields).toEqual(['sampling.temperature', 'select.cap']);
    expect(readFileSync(path.join(runs, 'exp', 'recipe.yaml'), 'utf8')).toBe(before);
    expect(existsSync(path.join(runs, 'exp', 'lock'))).toBe(false);
  });

  it('continues with a changed recipe when asked, keeping the old hash in its history', () => {
    const runs = runsDir();
    const first = parseRecipe(RECIPE, 'r.yaml');
    RunDir.open({ runsDir: runs, loaded: first }).close();
    const changed = parseRecipe(RECIPE, 'r.yaml', ['select.cap=1']);
    const warnings: string[] = [];
    const run = RunDir.open({ runsDir: runs, loaded: changed, allowRecipeChange: true, warn: (m) => warnings.push(m) });
    expect(run.meta.recipe_hash).toBe(changed.hash);
    expect(run.meta.recipe_history).toEqual([{ hash: first.hash, replaced_at: expect.any(String) }]);
    expect(warnings[0]).toContain('select.cap');
    run.close();
  });

  it('drops a torn ledger line on open with a warning', async () => {
    const runs = runsDir();
    const run = RunDir.open({ runsDir: runs, loaded: parseRecipe(RECIPE, 'r.yaml') });
    const { appendFileSync } = await import('node:fs');
    appendFileSync(run.path('v.jsonl'), '{"n":1}\n{"n":');
    const warnings: string[] = [];
    const opened = run.openLedger('v.jsonl', z.object({ n: z.number() }), (m) => warnings.push(m));
    opened.ledger.close();
    expect([...readRecords(run.path('v.jsonl'), z.object({ n: z.number() }))]).toEqual([{ n: 1 }]);
    expect(warnings[0]).toMatch(/torn last line/);
    run.close();
  });
});

describe('a folder that is not a run', () => {
  it('is never taken over: refused, naming what it holds, and left as it was', async () => {
    const { mkdirSync, writeFileSync, readFileSync: read } = await import('node:fs');
    const runs = runsDir();
    mkdirSync(path.join(runs, 'exp'));
    writeFileSync(path.join(runs, 'exp', 'recipe.yaml'), 'my own notes\n');
    writeFileSync(path.join(runs, 'exp', 'notes.txt'), 'keep me\n');
    expect(() => RunDir.open({ runsDir: runs, loaded: parseRecipe(RECIPE, 'r.yaml') })).toThrow(/exists and is not an rft run \(it holds notes\.txt\)/);
    expect(read(path.join(runs, 'exp', 'recipe.yaml'), 'utf8')).toBe('my own notes\n');
  });
});
