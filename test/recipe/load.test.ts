import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadRecipe, parseRecipe, RecipeError, type RecipeProblem } from '../../src/recipe/load.js';

const MINIMAL = `name: t
tasks:
  train: {path: tasks.jsonl}
policy: {kind: simulated, model: sim-base}
finetune: {backend: command, command: "true", base_model: sim-base}
`;

function problemsOf(text: string, overrides: string[] = []): RecipeProblem[] {
  try {
    parseRecipe(text, 'r.yaml', overrides);
  } catch (err) {
    expect(err).toBeInstanceOf(RecipeError);
    return (err as RecipeError).problems;
  }
  throw new Error('recipe was accepted');
}

describe('recipe defaults', () => {
  it('fills in the SWE-Gym paper settings', () => {
    const { recipe } = parseRecipe(MINIMAL, 'r.yaml');
    expect(recipe.sampling).toMatchObject({ samples_per_task: 30, temperature: 1 });
    expect(recipe.select).toEqual({ cap: 2, order: 'fewest_calls', dedup: false, require_finished: false, allow_tampering: false });
    expect(recipe.sft).toMatchObject({ unit: 'call', max_tokens: 10240 });
    expect(recipe.agent).toMatchObject({ protocol: 'json', max_transitions: 25, max_retries: 2, max_tokens_per_call: 2000 });
    expect(recipe.agent.visit_limits).toEqual({ PlanToCode: 8, EditCode: 8 });
    expect(recipe.eval).toMatchObject({ temperature: 0, samples: 1 });
    expect(recipe.sandbox.docker).toEqual([{ url: 'unix:///var/run/docker.sock', max_containers: null }]);
    expect(recipe.iterations).toBe(2);
  });

  it('hashes equal recipes alike whatever the key order, and different ones apart', () => {
    const reordered = `policy: {model: sim-base, kind: simulated}\nname: t\nfinetune: {base_model: sim-base, command: "true", backend: command}\ntasks:\n  train: {path: tasks.jsonl}\n`;
    const a = parseRecipe(MINIMAL, 'a.yaml');
    expect(parseRecipe(reordered, 'b.yaml').hash).toBe(a.hash);
    expect(parseRecipe(MINIMAL, 'a.yaml', ['select.cap=1']).hash).not.toBe(a.hash);
  });

  it('takes a single base_url or a list of replicas', () => {
    const one = parseRecipe(MINIMAL, 'r.yaml', ['policy.base_url=http://127.0.0.1:8000/v1']);
    expect(one.recipe.policy.base_url).toEqual(['http://127.0.0.1:8000/v1']);
    const two = parseRecipe(MINIMAL, 'r.yaml', ['policy.base_url=[http://a:1/v1, http://b:2/v1]']);
    expect(two.recipe.policy.base_url).toEqual(['http://a:1/v1', 'http://b:2/v1']);
  });
});

describe('endpoints, lists given with --set, and sizes', () => {
  const OPENAI = MINIMAL.replace('{kind: simulated, model: sim-base}', '{kind: openai, base_url: http://gpu1:8000/v1, model: m}');

  it('a base_url without /v1 is refused with the fix: policy, eval.verifier and a LoRA server', () => {
    expect(problemsOf(OPENAI.replace('http://gpu1:8000/v1', 'http://gpu1:8000'))).toEqual([
      { field: 'policy.base_url', line: 4, override: null, message: 'must end in /v1 (the OpenAI-compatible API root), e.g. http://gpu1:8000/v1' },
    ]);
    expect(problemsOf(OPENAI.replace('http://gpu1:8000/v1', '[http://a:1/v1, http://b:2]'))).toMatchObject([{ field: 'policy.base_url.1', message: expect.stringContaining('e.g. http://b:2/v1') }]);
    expect(problemsOf(MINIMAL + 'eval: {samples: 2, temperature: 1, verifier: {base_url: "http://v:9/", model: v}}\n')).toMatchObject([
      { field: 'eval.verifier.base_url', line: 6, message: expect.stringContaining('e.g. http://v:9/v1') },
    ]);
    expect(problemsOf(MINIMAL + 'serve: {kind: lora, base_url: http://gpu1:8000}\n')).toMatchObject([{ field: 'serve.base_url', line: 6, message: expect.stringContaining('must end in /v1') }]);
    expect(parseRecipe(OPENAI, 'r.yaml', ['policy.base_url=http://gpu1:8000/v1/']).recipe.policy.base_url).toEqual(['http://gpu1:8000/v1/']);
  });

  it('--set policy.base_url=a,b is a list of two URLs; a comma in a field that takes no list stays in the value', () => {
    const two = parseRecipe(OPENAI, 'r.yaml', ['policy.base_url=http://a:8000/v1,http://b:8000/v1']);
    expect(two.recipe.policy.base_url).toEqual(['http://a:8000/v1', 'http://b:8000/v1']);
    expect(parseRecipe(OPENAI, 'r.yaml', ['tasks.train.repos=a/b,c/d']).recipe.tasks.train.repos).toEqual(['a/b', 'c/d']);
    expect(parseRecipe(OPENAI, 'r.yaml', ['policy.model=a,b']).recipe.policy.model).toBe('a,b');
    expect(problemsOf(OPENAI, ['policy.base_url=http://a:8000/v1,http://b:8000'])).toMatchObject([
      { field: 'policy.base_url.1', override: '--set policy.base_url=http://a:8000/v1,http://b:8000', message: expect.stringContaining('must end in /v1') },
    ]);
    // Written in the file as one string, it is refused with the list to write instead.
    expect(problemsOf(OPENAI.replace('http://gpu1:8000/v1', '"http://a:8000/v1,http://b:8000/v1"'))).toMatchObject([
      { field: 'policy.base_url', line: 4, message: expect.stringContaining('write a list, [http://a:8000/v1, http://b:8000/v1]') },
    ]);
  });

  it('sandbox.memory without a unit is refused with "give a unit", as a number, a string or a --set', () => {
    expect(problemsOf(MINIMAL + 'sandbox: {memory: 8}\n')).toEqual([{ field: 'sandbox.memory', line: 6, override: null, message: 'give a unit: 8g (a bare number is bytes)' }]);
    expect(problemsOf(MINIMAL + 'sandbox: {memory: "8"}\n')).toEqual([{ field: 'sandbox.memory', line: 6, override: null, message: 'give a unit: 8g (a bare number is bytes)' }]);
    expect(problemsOf(MINIMAL, ['sandbox.memory=16'])).toMatchObject([{ field: 'sandbox.memory', override: '--set sandbox.memory=16', message: 'give a unit: 16g (a bare number is bytes)' }]);
    expect(problemsOf(MINIMAL + 'sandbox: {memory: 8 gigs}\n')).toMatchObject([{ field: 'sandbox.memory', message: 'must be a size with a unit, such as 512m or 4g' }]);
    for (const size of ['8g', '512m', '8GiB', '1.5g', '4096b']) expect(parseRecipe(MINIMAL + `sandbox: {memory: ${size}}\n`, 'r.yaml').recipe.sandbox.memory).toBe(size);
  });
});

describe('bad recipes name the field and the line', () => {
  it('a wrong type', () => {
    const text = MINIMAL + 'select:\n  cap: two\n';
    expect(problemsOf(text)).toEqual([
      { field: 'select.cap', line: 7, override: null, message: expect.stringContaining('null for no cap') },
    ]);
  });

  it('an out-of-range number', () => {
    expect(problemsOf(MINIMAL + 'sampling: {temperature: 3}\n')).toMatchObject([{ field: 'sampling.temperature', line: 6 }]);
    expect(problemsOf(MINIMAL + 'select: {cap: 0}\n')).toMatchObject([{ field: 'select.cap', line: 6 }]);
  });

  it('unknown keys at any depth (typos)', () => {
    const text = MINIMAL + 'samplng: {samples_per_task: 3}\nagent:\n  protocl: json\n';
    expect(problemsOf(text)).toEqual([
      { field: 'samplng', line: 6, override: null, message: 'unknown key (a typo?)' },
      { field: 'agent.protocl', line: 8, override: null, message: 'unknown key (a typo?)' },
    ]);
  });

  it('a missing required field points at its parent', () => {
    const text = 'name: t\ntasks:\n  train: {path: a.jsonl}\npolicy:\n  kind: simulated\nfinetune: {backend: command, command: x, base_model: m}\n';
    expect(problemsOf(text)).toEqual([{ field: 'policy.model', line: 4, override: null, message: 'is required (expected string)' }]);
  });

  it('an unknown enum value and an unknown backend', () => {
    expect(problemsOf(MINIMAL + 'agent: {protocol: xml}\n')).toMatchObject([{ field: 'agent.protocol', line: 6 }]);
    const text = MINIMAL.replace('backend: command', 'backend: deepspeed');
    expect(problemsOf(text)).toMatchObject([{ field: 'finetune.backend', line: 5, message: 'must be one of command, openai' }]);
  });

  it('an openai policy needs a base_url', () => {
    expect(problemsOf(MINIMAL.replace('kind: simulated', 'kind: openai'))).toMatchObject([
      { field: 'policy.base_url', message: 'is required when kind is openai' },
    ]);
  });

  it('api_key_env must name a variable and the error never echoes the value', () => {
    const secret = 'sk-proj-abc123XYZ';
    const inFile = problemsOf(MINIMAL.replace('model: sim-base}', `model: sim-base, api_key_env: ${secret}}`));
    expect(inFile).toMatchObject([{ field: 'policy.api_key_env', line: 4 }]);
    expect(inFile[0]!.message).not.toContain(secret);
    const viaSet = problemsOf(MINIMAL, [`policy.api_key_env=${secret}`]);
    expect(viaSet).toMatchObject([{ field: 'policy.api_key_env' }]);
    expect(viaSet[0]!.message).not.toContain(secret);
  });

  it('YAML syntax errors carry the line', () => {
    expect(problemsOf('name: t\ntasks: [\n')).toMatchObject([{ field: '', line: 3, message: expect.stringMatching(/^YAML syntax/) }]);
  });

  it('duplicate keys are errors, not silent overwrites', () => {
    expect(problemsOf(MINIMAL + 'seed: 1\nseed: 2\n')[0]!.message).toMatch(/YAML syntax/);
  });

  it('a document that is not a mapping', () => {
    expect(problemsOf('- a\n- b\n')).toMatchObject([{ message: expect.stringContaining('mapping') }]);
  });

  it('a missing file', () => {
    expect(() => loadRecipe('/nonexistent/recipe.yaml')).toThrow(/recipe\.yaml: file not found/);
  });

  it('the error message lists file:line: field', () => {
    try {
      parseRecipe(MINIMAL + 'select: {cap: two}\n', 'recipes/x.yaml');
    } catch (err) {
      expect((err as Error).message).toBe('recipes/x.yaml:6: select.cap: must be a whole number of trajectories (1, 2, …) or null for no cap');
      return;
    }
    throw new Error('accepted');
  });
});

describe('--set overrides', () => {
  it('are typed by the schema', () => {
    const { recipe } = parseRecipe(MINIMAL, 'r.yaml', [
      'select.cap=1',
      'select.dedup=true',
      'sampling.temperature=0.7',
      'policy.model=7',
      'name=001',
      'agent.visit_limits.EditCode=3',
    ]);
    expect(recipe.select.cap).toBe(1);
    expect(recipe.select.dedup).toBe(true);
    expect(recipe.sampling.temperature).toBe(0.7);
    expect(recipe.policy.model).toBe('7'); // a string field keeps the text
    expect(recipe.name).toBe('001');
    expect(recipe.agent.visit_limits).toEqual({ EditCode: 3 });
  });

  it('null removes the cap, and none (any case) alike as in rft select --cap and rft sweep --grid; the last override wins', () => {
    for (const word of ['null', 'none', 'None', 'NULL']) expect(parseRecipe(MINIMAL, 'r.yaml', [`select.cap=${word}`]).recipe.select.cap).toBeNull();
    // A field that takes no null keeps the word as text.
    expect(parseRecipe(MINIMAL, 'r.yaml', ['policy.model=none']).recipe.policy.model).toBe('none');
    expect(parseRecipe(MINIMAL, 'r.yaml', ['select.cap=3', 'select.cap=1']).recipe.select.cap).toBe(1);
  });

  it('can fill a section that was null', () => {
    const { recipe } = parseRecipe(MINIMAL, 'r.yaml', ['tasks.eval.path=eval.jsonl']);
    expect(recipe.tasks.eval).toMatchObject({ path: 'eval.jsonl', limit: null });
  });

  it('bad values and unknown keys name the --set argument', () => {
    expect(problemsOf(MINIMAL, ['select.cap=lots'])).toMatchObject([{ field: 'select.cap', override: '--set select.cap=lots', line: null }]);
    expect(problemsOf(MINIMAL, ['select.capp=1'])).toMatchObject([{ field: 'select.capp', override: '--set select.capp=1' }]);
    expect(problemsOf(MINIMAL, ['novalue'])).toMatchObject([{ message: expect.stringContaining('key.path=value') }]);
  });
});

describe('recipes shipped with rft', () => {
  const recipes = path.resolve(import.meta.dirname, '../../recipes');

  it('moatless-7b is the paper setting', () => {
    const { recipe } = loadRecipe(path.join(recipes, 'moatless-7b.yaml'));
    expect(recipe.sampling.samples_per_task).toBe(30);
    expect(recipe.sampling.temperature).toBe(1);
    expect(recipe.select.cap).toBe(2);
    expect(recipe.iterations).toBe(2);
    expect(recipe.sft.max_tokens).toBe(10240);
    expect(recipe.tasks.train.image).toBe('swegym');
    expect(recipe.serve.kind).toBe('command');
  });

  it('demo uses the simulated policy on the bundled tasks', () => {
    const loaded = loadRecipe(path.join(recipes, 'demo.yaml'));
    expect(loaded.recipe.policy.kind).toBe('simulated');
    expect(path.resolve(loaded.baseDir, loaded.recipe.tasks.train.path)).toMatch(/test\/fixtures\/minigym\/tasks\.jsonl$/);
  });

  it('loadRecipe resolves the base folder of relative paths', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rft-recipe-'));
    writeFileSync(path.join(dir, 'r.yaml'), MINIMAL);
    expect(loadRecipe(path.join(dir, 'r.yaml')).baseDir).toBe(dir);
  });
});
