import { OpenAiPolicy } from '../policy/client.js';
import { PolicyPool } from '../policy/pool.js';
import type { SimulatedPolicyServer, StartSimulatedPolicy } from '../policy/simulated.js';
import type { PolicyClient } from '../policy/types.js';
import type { Recipe } from '../recipe/schema.js';
import type { Instance } from '../tasks/instance.js';

/** The env variable the recipe names is missing: say which, never what a key would look like. */
export class MissingApiKeyError extends Error {
  constructor(variable: string, what: string) {
    super(`${what} needs an API key in the environment variable ${variable}, which is not set`);
    this.name = 'MissingApiKeyError';
  }
}

export function apiKeyFrom(variable: string | null, what: string): string | null {
  if (variable === null) return null;
  const value = process.env[variable];
  if (!value) throw new MissingApiKeyError(variable, what);
  return value;
}

/** `policy.kind: simulated` in a process that was not given the SIMULATED policy (only the rft CLI wires it). */
export class SimulatedPolicyUnavailableError extends Error {
  constructor() {
    super('policy.kind is simulated, but the SIMULATED policy (a test double) is started by the rft CLI only: run the recipe with `rft run`, or set policy.kind: openai and policy.base_url');
    this.name = 'SimulatedPolicyUnavailableError';
  }
}

/**
 * Where the policy answers. For `policy.kind: simulated`, rft serves the SIMULATED policy itself
 * on 127.0.0.1 (started by `startSimulated`, which the CLI supplies: the loop never imports the
 * test double); it reads the models the simulated trainer writes into the run as they appear.
 * Otherwise the recipe's endpoint(s).
 */
export class PolicyEndpoint {
  private sim: SimulatedPolicyServer | null = null;

  private constructor(private readonly recipe: Recipe) {}

  static async open(recipe: Recipe, simModelsDir: string, tasks: readonly Instance[], startSimulated?: StartSimulatedPolicy): Promise<PolicyEndpoint> {
    const endpoint = new PolicyEndpoint(recipe);
    if (endpoint.simulated) {
      if (!startSimulated) throw new SimulatedPolicyUnavailableError();
      endpoint.sim = await startSimulated({ modelsDir: simModelsDir, tasks });
    }
    return endpoint;
  }

  /** The recipe's endpoint as a process that serves nothing reaches it (a shard worker, given the coordinator's URLs). */
  static remote(recipe: Recipe): PolicyEndpoint {
    return new PolicyEndpoint(recipe);
  }

  get simulated(): boolean {
    return this.recipe.policy.kind === 'simulated';
  }

  baseUrls(): string[] {
    if (this.sim) return [this.sim.url];
    return this.recipe.policy.base_url ?? [];
  }

  /** Completion requests the simulated policy answered so far (tests count them). */
  simRequests(): number {
    return this.sim?.completions() ?? 0;
  }

  /** A client for a model at these endpoints: one, or a pool spreading requests over replicas. */
  client(model: string, baseUrls: string[] = this.baseUrls(), warn?: (message: string) => void): PolicyClient {
    const { policy } = this.recipe;
    if (baseUrls.length === 0) throw new Error('policy.base_url is not set');
    const apiKey = apiKeyFrom(policy.api_key_env, 'policy');
    const clients = baseUrls.map((baseUrl) => ({
      name: baseUrl,
      client: new OpenAiPolicy({ baseUrl, model, apiKey, timeoutMs: policy.request_timeout_s * 1000, maxRetries: policy.retries }),
    }));
    return clients.length === 1 ? clients[0]!.client : new PolicyPool(clients, { warn });
  }

  async close(): Promise<void> {
    await this.sim?.close();
    this.sim = null;
  }
}
