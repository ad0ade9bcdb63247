import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ROOT, rft } from './helpers.js';

describe('rft CLI: recipe and schema', () => {
  it('--help lists the commands that work', () => {
    const out = rft(['--help']);
    expect(out.status).toBe(0);
    expect(out.stdout).toContain('rft recipe');
    expect(out.stdout).toContain('rft schema');
  });

  it('recipe check prints the resolved paper recipe, and fails naming the task files it has not fetched yet', () => {
    const out = rft(['recipe', 'check', 'recipes/moatless-7b.yaml']);
    expect(out.status).toBe(2);
    expect(out.stderr).toMatch(/^rft: recipes\/moatless-7b\.yaml:\d+: tasks\.train\.path: task file not found: \S+\/runs\/tasks\/swe-gym-lite\.jsonl \(\.\.\/runs\/tasks\/swe-gym-lite\.jsonl resolved against the recipe's folder\)$/m);
    expect(out.stderr).not.toContain('train-trl.sh');
    const resolved = parseYaml(out.stdout) as { sampling: { samples_per_task: number }; select: { cap: number } };
    expect(resolved.sampling.samples_per_task).toBe(30);
    expect(resolved.select.cap).toBe(2);
    expect(out.stdout).toMatch(/^# sha256 [0-9a-f]{64}\n/);
  });

  it('recipe check applies --set overrides', () => {
    const out = rft(['recipe', 'check', 'recipes/demo.yaml', '--set', 'select.cap=null', '--set', 'sampling.samples_per_task=4']);
    expect(out.status).toBe(0);
    const resolved = parseYaml(out.stdout) as { sampling: { samples_per_task: number }; select: { cap: null } };
    expect(resolved.select.cap).toBeNull();
    expect(resolved.sampling.samples_per_task).toBe(4);
  });

  it('a bad recipe exits non-zero naming the file, the field and the line, without a stack trace', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rft-cli-'));
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(
      file,
      'name: bad\ntasks:\n  train: {path: t.jsonl}\npolicy: {kind: simulated, model: sim-base}\nselect: {cap: two}\nfinetune: {backend: command, command: x, base_model: m}\n',
    );
    const out = rft(['recipe', 'check', file]);
    expect(out.status).toBe(2);
    expect(out.stderr).toContain(`${file}:5: select.cap:`);
    expect(out.stderr).not.toMatch(/\n\s+at /);
    expect(out.stdout).toBe('');
  });

  it('schema prints a JSON Schema', () => {
    const out = rft(['schema']);
    expect(out.status).toBe(0);
    const schema = JSON.parse(out.stdout) as { $schema: string; properties: Record<string, unknown> };
    expect(schema.$schema).toMatch(/json-schema\.org/);
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['select', 'sampling', 'finetune', 'serve']));
  });

  it('the committed recipes/recipe.schema.json is `rft schema`, and every shipped recipe points editors at it on its first line', () => {
    const out = rft(['schema']);
    expect(out.status).toBe(0);
    const committed = readFileSync(path.join(ROOT, 'recipes/recipe.schema.json'), 'utf8');
    // When this fails the recipe schema changed: regenerate with `node dist/cli/main.js schema > recipes/recipe.schema.json`.
    expect(committed).toBe(out.stdout);
    const shipped = readdirSync(path.join(ROOT, 'recipes')).filter((f) => f.endsWith('.yaml'));
    expect(shipped.length).toBeGreaterThanOrEqual(5);
    for (const file of shipped) {
      const first = readFileSync(path.join(ROOT, 'recipes', file), 'utf8').split('\n')[0];
      expect({ file, first }).toEqual({ file, first: '# yaml-language-server: $schema=./recipe.schema.json' });
    }
  });

  it('an unknown command is a usage error', () => {
    const out = rft(['frobnicate']);
    expect(out.status).toBe(2);
    expect(out.stderr).toMatch(/Unknown argument: frobnicate/);
  });
});
