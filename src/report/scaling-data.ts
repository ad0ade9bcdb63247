import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { runLayout } from '../loop/layout.js';
import { bestOfN, curveOf, readEvalPool } from '../orm/eval-pool.js';
import { ScalingPointSchema } from '../orm/scaling.js';
import type { Recipe } from '../recipe/schema.js';
import { SIM_VERIFIER_NAME } from '../policy/simulated.js';

/**
 * The inference-time scaling curves of a run (design §11): for each eval pool with n ≥ 2
 * candidates per instance, pass@k, best@k (with the verifier's scores) and random@k for
 * k = 1, 2, 4, … n, all from that one pool (src/orm/scaling.ts).
 */
export const ScalingCurveSchema = z.object({
  model_index: z.number().int().nonnegative(),
  folder: z.string(),
  /** n: the most candidates of one instance. */
  samples_per_instance: z.number().int().positive(),
  instances: z.number().int().nonnegative(),
  /** The verifier model whose scores give best@k (null: no scores recorded). */
  verifier: z.string().nullable(),
  /** The scores come from the project's SIMULATED verifier (a test double, not a model). */
  simulated_verifier: z.boolean(),
  unverified: z.number().int().nonnegative().describe('Candidates without a final verdict (left out)'),
  unscored: z.number().int().nonnegative().describe('Candidates the verifier has not scored yet (best@k is absent until none are)'),
  /** The reported eval result under best-of-n: the top-scored candidate per instance. */
  best_of_n: z.object({ resolved: z.number().nonnegative(), rate: z.number().min(0).max(1) }).nullable(),
  points: z.array(ScalingPointSchema),
});
export type ScalingCurve = z.infer<typeof ScalingCurveSchema>;

// The SIMULATED verifier is the SIMULATED policy server's (base_url null) and nothing else.
const isSimulatedVerifier = (recipe: Recipe, verifier: string | null) => verifier === SIM_VERIFIER_NAME && recipe.policy.kind === 'simulated' && (recipe.eval.verifier?.base_url ?? null) === null;

/** The curves of every eval pool of a run that holds several candidates per instance. */
export function gatherScaling(runDir: string, recipe: Recipe): ScalingCurve[] {
  const root = path.join(runDir, 'eval');
  if (!existsSync(root)) return [];
  const indices = readdirSync(root)
    .map((name) => /^m(\d+)$/.exec(name))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
  const curves: ScalingCurve[] = [];
  for (const m of indices) {
    const dir = runLayout.evalDir(runDir, m);
    const pool = readEvalPool(dir);
    const n = Math.max(0, ...pool.instances.map((i) => i.candidates.length));
    if (n < 2) continue;
    const best = bestOfN(pool);
    curves.push({
      model_index: m,
      folder: path.relative(runDir, dir),
      samples_per_instance: n,
      instances: pool.instances.length,
      verifier: pool.verifier,
      simulated_verifier: isSimulatedVerifier(recipe, pool.verifier),
      unverified: pool.unverified,
      unscored: pool.unscored,
      best_of_n: best ? { resolved: best.resolved, rate: best.rate } : null,
      points: curveOf(pool),
    });
  }
  return curves;
}
