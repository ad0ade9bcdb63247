import { describe, expect, it } from 'vitest';
import { RecipeSchema } from '../../src/recipe/schema.js';

const base = {
  name: 'x',
  tasks: { train: { path: 't.jsonl' } },
  policy: { kind: 'simulated', model: 'sim-base' },
  finetune: { backend: 'command', command: 'true', base_model: 'sim-base' },
};

describe('recipe: eval.verifier and the verifier block', () => {
  it('accepts best-of-n at T > 0 with n ≥ 2 and fills the defaults', () => {
    const r = RecipeSchema.parse({ ...base, eval: { samples: 4, temperature: 0.8, verifier: { model: 'sim-verifier' } }, verifier: {} });
    expect(r.eval.verifier).toEqual({ base_url: null, model: 'sim-verifier', api_key_env: null, concurrency: 8, request_timeout_s: 120, retries: 3 });
    expect(r.verifier).toEqual({ iterations: 'all', balance: true, max_tokens: 16384 });
  });

  it('leaves both out of a recipe that does not name them (its hash does not change)', () => {
    const r = RecipeSchema.parse(base);
    expect('verifier' in r).toBe(false);
    expect('verifier' in r.eval).toBe(false);
  });

  it('refuses best-of-n with one sample or at temperature 0, and a key in api_key_env', () => {
    const one = RecipeSchema.safeParse({ ...base, eval: { samples: 1, temperature: 0.8, verifier: { model: 'v' } } });
    expect(one.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([['eval.samples', 'best-of-n with eval.verifier needs at least 2 samples per instance']]);
    const cold = RecipeSchema.safeParse({ ...base, eval: { samples: 4, temperature: 0, verifier: { model: 'v' } } });
    expect(cold.error?.issues[0]?.path.join('.')).toBe('eval.temperature');
    const key = RecipeSchema.safeParse({ ...base, eval: { samples: 4, temperature: 1, verifier: { model: 'v', api_key_env: 'sk-abc123' } } });
    expect(key.error?.issues[0]?.path.join('.')).toBe('eval.verifier.api_key_env');
  });
});
