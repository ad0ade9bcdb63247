import type { Recipe } from '../../recipe/schema.js';
import type { DoctorContext, ModelsProbe } from '../context.js';
import { fail, ok, warn, type CheckResult } from '../record.js';

/** An endpoint the recipe sends requests to, and the model it must serve there (null: any, e.g. a LoRA server before its first adapter). */
interface Endpoint {
  field: string;
  url: string;
  model: string | null;
  apiKeyEnv: string | null;
}

function endpointsOf(recipe: Recipe): Endpoint[] {
  const out: Endpoint[] = [];
  if (recipe.policy.kind === 'openai') {
    for (const url of recipe.policy.base_url ?? []) out.push({ field: 'policy.base_url', url, model: recipe.policy.model, apiKeyEnv: recipe.policy.api_key_env });
  }
  const verifier = recipe.eval.verifier;
  if (verifier?.base_url) out.push({ field: 'eval.verifier.base_url', url: verifier.base_url, model: verifier.model, apiKeyEnv: verifier.api_key_env });
  if (recipe.serve.kind === 'lora') out.push({ field: 'serve.base_url', url: recipe.serve.base_url, model: null, apiKeyEnv: recipe.policy.api_key_env });
  return out;
}

/** A URL as shown: user and password (if a URL carries them) left out. */
export function shownUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return url;
  }
}

/**
 * Each endpoint answers GET {base_url}/models within the timeout and lists the model the recipe
 * names. `reachableOnly` (rft run's fast check): only a connection that cannot be made fails.
 */
export async function checkEndpoints(ctx: DoctorContext, options: { reachableOnly?: boolean } = {}): Promise<CheckResult[]> {
  const { recipe } = ctx;
  const results: CheckResult[] = [];
  if (recipe.policy.kind === 'simulated') {
    results.push(ok('endpoint', `policy ${recipe.policy.model}`, 'SIMULATED policy (a test double rft starts itself): no endpoint to reach'));
  }
  const checks = endpointsOf(recipe).map(async (endpoint): Promise<CheckResult> => {
    const what = `endpoint ${endpoint.field} ${shownUrl(endpoint.url)}`;
    let key: string | null = null;
    if (endpoint.apiKeyEnv !== null) {
      key = ctx.options.env[endpoint.apiKeyEnv] ?? null;
      if (!key) return fail('endpoint', what, `$${endpoint.apiKeyEnv} (api_key_env) is not set`, `export ${endpoint.apiKeyEnv}=…`);
    }
    const probe = await ctx.models(endpoint.url, key);
    return judge(endpoint, what, probe, options.reachableOnly ?? false);
  });
  results.push(...(await Promise.all(checks)));
  return results;
}

function judge(endpoint: Endpoint, what: string, probe: ModelsProbe, reachableOnly: boolean): CheckResult {
  const startIt = endpoint.model
    ? `start the server (e.g. \`vllm serve ${endpoint.model} --port ${portOf(endpoint.url)}\`) or point ${endpoint.field} at the one that serves it`
    : `start vLLM there with --enable-lora, or fix ${endpoint.field}`;
  if (probe.error !== null) {
    if (probe.unreachable) return fail('endpoint', what, `cannot connect: ${probe.error}`, startIt);
    if (reachableOnly) return warn('endpoint', what, `${probe.error}; the run goes on (its requests are retried)`, null);
    if (probe.status === 401 || probe.status === 403) return fail('endpoint', what, probe.error, 'give the key: set the variable api_key_env names');
    return fail('endpoint', what, probe.error, startIt);
  }
  if (reachableOnly || endpoint.model === null) return ok('endpoint', what, `answers (${probe.models!.length} model(s))`);
  const ids = probe.models!.map((m) => m.id);
  if (!ids.includes(endpoint.model)) {
    const field = endpoint.field.replace(/base_url$/, 'model');
    return fail('endpoint', what, `serves ${ids.join(', ') || 'no model'}, not ${endpoint.model}`, `set ${field} to the served name, or start vLLM with --served-model-name ${endpoint.model}`);
  }
  return ok('endpoint', what, `serves ${endpoint.model}`);
}

function portOf(url: string): string {
  try {
    const parsed = new URL(url);
    return parsed.port || (parsed.protocol === 'https:' ? '443' : '80');
  } catch {
    return '8000';
  }
}

/**
 * The context the recipe needs: the agent's largest prompt (file context) plus one completion
 * while sampling, and sft.max_tokens for a model trained on examples that long.
 */
export function contextNeeded(recipe: Recipe): { tokens: number; why: string } {
  const sampling = recipe.agent.file_context_tokens + recipe.agent.max_tokens_per_call;
  const training = recipe.sft.max_tokens;
  return sampling >= training
    ? { tokens: sampling, why: `agent.file_context_tokens ${recipe.agent.file_context_tokens} + agent.max_tokens_per_call ${recipe.agent.max_tokens_per_call}` }
    : { tokens: training, why: `sft.max_tokens ${training}` };
}

/** The policy model's context (vLLM's max_model_len, and the serve command's --max-model-len) against what the recipe needs. */
export async function checkContext(ctx: DoctorContext): Promise<CheckResult[]> {
  const { recipe } = ctx;
  const need = contextNeeded(recipe);
  const results: CheckResult[] = [];
  const what = `context length of ${recipe.policy.model}`;
  if (recipe.policy.kind === 'simulated') {
    results.push(ok('context', what, `SIMULATED policy: no context limit (the recipe needs ${need.tokens}: ${need.why})`));
  } else {
    const url = recipe.policy.base_url![0]!;
    const key = recipe.policy.api_key_env ? (ctx.options.env[recipe.policy.api_key_env] ?? null) : null;
    const probe = await ctx.models(url, key);
    const card = probe.models?.find((m) => m.id === recipe.policy.model);
    if (!card) {
      results.push(warn('context', what, `not checked: ${probe.error ?? 'the endpoint does not serve the model'} (the recipe needs ${need.tokens}: ${need.why})`, 'see the endpoint line'));
    } else if (card.max_model_len === null) {
      results.push(warn('context', what, `the endpoint does not say (no max_model_len on /models); the recipe needs ${need.tokens} (${need.why})`, null));
    } else if (card.max_model_len < need.tokens) {
      results.push(
        warn('context', what, `max_model_len ${card.max_model_len} < ${need.tokens} the recipe needs (${need.why}): long prompts are refused (400)`, `start vLLM with --max-model-len ${need.tokens}, or lower ${need.why.split(' ')[0]}`),
      );
    } else {
      results.push(ok('context', what, `max_model_len ${card.max_model_len} ≥ ${need.tokens} the recipe needs (${need.why})`));
    }
  }
  if (recipe.serve.kind === 'command') {
    const served = /--max-model-len[= ]+(\d+)/.exec(recipe.serve.command);
    if (served && Number(served[1]) < need.tokens) {
      results.push(warn('context', 'context length of the served M_k (serve.command)', `--max-model-len ${served[1]} < ${need.tokens} the recipe needs (${need.why})`, `raise --max-model-len in serve.command to ${need.tokens}`));
    }
  }
  return results;
}
