import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readRecords } from '../../src/store/ledger.js';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseRecipe } from '../../src/recipe/load.js';
import { RunLockedError } from '../../src/store/lock.js';
import { RecipeMismatchError, recordedNothing, RunDir } from '../../src/store/run-dir.js';

const RECIPE = `name: exp
tasks:
  train: {path: tasks.jsonl}
policy: {kind: simulated, model: sim-base}
finetune: {backend: command, command: "true", base_model: sim-base}
`;

/** One whole trajectory line: the run has recorded something. */
function recordOne(run: RunDir): void {
  const { ledger } = run.openLedger('iter-0/trajectories.jsonl', z.object({ n: z.number() }));
  ledger.append({ n: 1 });
  ledger.close();
  run.close();
}

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
    recordOne(RunDir.open({ runsDir: runs, loaded: parseRecipe(RECIPE, 'r.yaml') }));
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
    recordOne(RunDir.open({ runsDir: runs, loaded: first }));
    const changed = parseRecipe(RECIPE, 'r.yaml', ['select.cap=1']);
    const warnings: string[] = [];
    const run = RunDir.open({ runsDir: runs, loaded: changed, allowRecipeChange: true, warn: (m) => warnings.push(m) });
    expect(run.meta.recipe_hash).toBe(changed.hash);
    expect(run.meta.recipe_history).toEqual([{ hash: first.hash, replaced_at: expect.any(String), note: 'changed with --allow-recipe-change' }]);
    expect(run.created).toBe(false);
    expect(warnings[0]).toContain('select.cap');
    run.close();
  });

  it('a run that recorded nothing takes a new recipe without --allow-recipe-change, saying it was replaced, and starts afresh', () => {
    const runs = runsDir();
    const first = parseRecipe(RECIPE, 'r.yaml');
    const run0 = RunDir.open({ runsDir: runs, loaded: first });
    // What a first run that failed before its first sample leaves: a phase begun, ledgers opened
    // but never written (one only with a torn line), preflight's list, an empty folder.
    run0.writeState({ ...run0.readState(), phases: { 'eval/m0': { status: 'running', updated_at: 'x', note: null } } });
    run0.openLedger('eval/m0/trajectories.jsonl', z.object({ n: z.number() })).ledger.close();
    writeFileSync(run0.path('eval/m0/verdicts.jsonl'), '{"instance_id":');
    writeFileSync(run0.path('excluded.json'), '[]\n');
    writeFileSync(run0.path('pulled-images.jsonl'), '{"image":"r/x:1","engine":"unix:///var/run/docker.sock","event":"pulled","at":"x"}\n');
    mkdirSync(run0.path('sim-models'));
    run0.close();

    const changed = parseRecipe(RECIPE, 'r.yaml', ['select.cap=1', 'sampling.temperature=0.5']);
    const warnings: string[] = [];
    const run = RunDir.open({ runsDir: runs, loaded: changed, warn: (m) => warnings.push(m) });
    expect(run.meta.recipe_hash).toBe(changed.hash);
    expect(run.recipe.select.cap).toBe(1);
    expect(readFileSync(run.path('recipe.yaml'), 'utf8')).toContain(`# sha256 ${changed.hash}`);
    expect(run.meta.recipe_history).toEqual([{ hash: first.hash, replaced_at: expect.any(String), note: 'replaced: nothing was recorded under it' }]);
    expect(warnings).toEqual([expect.stringMatching(/recipe of .* was replaced \(changed: sampling\.temperature, select\.cap\): the run had recorded nothing/)]);
    // As a new run: no phase begun, exclusions checked afresh.
    expect(run.created).toBe(true);
    expect(run.readState().phases).toEqual({});
    run.close();
  });

  it('a run that recorded anything (one whole ledger line, a dataset, a fine-tune record) keeps refusing another recipe', () => {
    const records: Array<[string, string]> = [
      ['iter-0/trajectories.jsonl', '{"n":1}\n'],
      ['eval/m0/verdicts.jsonl', '{"n":1}\n{"n":'],
      ['iter-0/datasets/cap-2/manifest.json', '{}\n'],
      ['iter-0/finetune/finetune.json', '{}\n'],
      ['metrics.jsonl', '{"n":1}\n'],
    ];
    for (const [file, text] of records) {
      const runs = runsDir();
      const run0 = RunDir.open({ runsDir: runs, loaded: parseRecipe(RECIPE, 'r.yaml') });
      mkdirSync(path.dirname(run0.path(file)), { recursive: true });
      writeFileSync(run0.path(file), text);
      run0.close();
      expect(recordedNothing(path.join(runs, 'exp')), file).toBe(false);
      expect(() => RunDir.open({ runsDir: runs, loaded: parseRecipe(RECIPE, 'r.yaml', ['select.cap=1']) }), file).toThrow(RecipeMismatchError);
    }
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
