import path from 'node:path';
import { samplingEncoding } from '../sft/tokenizer.js';
import { apiKeyFrom } from '../loop/policy-endpoint.js';
import { runLayout } from '../loop/layout.js';
import type { LoadedRecipe } from '../recipe/load.js';
import type { Recipe } from '../recipe/schema.js';
import type { Instance } from '../tasks/instance.js';
import { OpenAiVerifier, type VerifierClient } from './client.js';
import { poolsOfRun, writeVerifierDataset, type VerifierManifest } from './dataset.js';
import { EVAL_FILES } from './eval-pool.js';
import { scoreEvalPool, type ScoreEvalResult } from './score-eval.js';

/** The loop's two uses of the learned verifier, one call each: emit its data, score an eval pool. */

type EvalVerifier = NonNullable<Recipe['eval']['verifier']>;

/**
 * The verifier's client. base_url null means the run's own SIMULATED policy server (it plays the
 * SIMULATED verifier too): only when the policy is simulated.
 */
export function verifierClientFor(verifier: EvalVerifier, simBaseUrl: string | null): { client: VerifierClient; simulated: boolean } {
  const baseUrl = verifier.base_url ?? simBaseUrl;
  if (baseUrl === null) {
    throw new Error('eval.verifier.base_url is null, which means the SIMULATED verifier of the SIMULATED policy server; set policy.kind: simulated, or give the URL of the verifier endpoint (e.g. http://localhost:8001/v1)');
  }
  const apiKey = apiKeyFrom(verifier.api_key_env, 'eval.verifier');
  return {
    client: new OpenAiVerifier({ baseUrl, model: verifier.model, apiKey, timeoutMs: verifier.request_timeout_s * 1000, maxRetries: verifier.retries }),
    simulated: verifier.base_url === null,
  };
}

export interface ScorePhaseOptions {
  recipe: Recipe;
  evalDir: string;
  instances: readonly Instance[];
  simBaseUrl: string | null;
  stopping: () => boolean;
  log: (message: string) => void;
  warn: (message: string) => void;
}

/** Best-of-n eval: every candidate of the eval pool scored by the verifier (what is recorded is not asked again). */
export async function scoreEvalPhase(options: ScorePhaseOptions): Promise<ScoreEvalResult | null> {
  const verifier = options.recipe.eval.verifier;
  if (!verifier) return null;
  const { client, simulated } = verifierClientFor(verifier, options.simBaseUrl);
  const result = await scoreEvalPool({
    trajectoriesFile: path.join(options.evalDir, EVAL_FILES.trajectories),
    scoresFile: path.join(options.evalDir, EVAL_FILES.scores),
    instances: new Map(options.instances.map((i) => [i.instance_id, i])),
    client,
    concurrency: verifier.concurrency,
    stopping: options.stopping,
    warn: options.warn,
  });
  options.log(
    `${path.basename(options.evalDir)}: verifier ${verifier.model}${simulated ? ' (SIMULATED verifier)' : ''} scored ${result.scored} candidate(s)` +
      `${result.known > 0 ? ` (${result.known} already recorded)` : ''} of ${result.candidates}`,
  );
  return result;
}

/** The recipe's `verifier:` block: iteration k's verifier data (iter-<k>/verifier/), from this run's pools. */
export function emitVerifierData(run: { dir: string; recipe: Recipe }, loaded: LoadedRecipe, k: number, train: readonly Instance[]): VerifierManifest | null {
  const block = run.recipe.verifier;
  if (!block) return null;
  const iterations = block.iterations === 'all' ? Array.from({ length: k + 1 }, (_, i) => i) : [k];
  const pools = poolsOfRun({ dir: run.dir, recipe: run.recipe, recipeHash: loaded.hash, instances: train }, iterations);
  return writeVerifierDataset(pools, path.join(runLayout.iterationDir(run.dir, k), 'verifier'), {
    balance: block.balance,
    max_tokens: block.max_tokens,
    tokenizer: samplingEncoding(run.recipe.sft.tokenizer),
    seed: run.recipe.seed,
  });
}
