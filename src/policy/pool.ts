import { PolicyInfraError, type PolicyClient, type PolicyRequest, type PolicyResponse } from './types.js';

export interface PoolOptions {
  /** First back-off of a failing replica; it doubles with each further failure in a row. */
  backoffMs?: number;
  maxBackoffMs?: number;
  now?: () => number;
  warn?: (message: string) => void;
}

interface Replica {
  name: string;
  client: PolicyClient;
  inFlight: number;
  failures: number;
  /** Not chosen before this time (ms), after failures. */
  backedOffUntil: number;
  served: number;
}

/**
 * Several replicas of one model (vLLM instances behind `policy.base_url: [...]`) as one policy:
 * each request goes to the healthy replica with the fewest requests in flight; a replica whose
 * request fails (after its own retries) is backed off, exponentially, and the request is tried on
 * another one. Only when every replica has failed it is an infrastructure error.
 */
export class PolicyPool implements PolicyClient {
  private readonly replicas: Replica[];
  private readonly backoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly now: () => number;

  constructor(
    clients: readonly { name: string; client: PolicyClient }[],
    private readonly options: PoolOptions = {},
  ) {
    if (clients.length === 0) throw new Error('a policy pool needs at least one endpoint');
    this.replicas = clients.map(({ name, client }) => ({ name, client, inFlight: 0, failures: 0, backedOffUntil: 0, served: 0 }));
    this.backoffMs = options.backoffMs ?? 5_000;
    this.maxBackoffMs = options.maxBackoffMs ?? 120_000;
    this.now = options.now ?? Date.now;
  }

  get model(): string {
    return this.replicas[0]!.client.model;
  }

  /** Requests answered per replica (for logs, benchmarks and tests). */
  stats(): { name: string; served: number; failures: number; inFlight: number }[] {
    return this.replicas.map(({ name, served, failures, inFlight }) => ({ name, served, failures, inFlight }));
  }

  async complete(request: PolicyRequest): Promise<PolicyResponse> {
    const tried = new Set<Replica>();
    let lastError: PolicyInfraError | null = null;
    while (tried.size < this.replicas.length) {
      const replica = this.pick(tried);
      tried.add(replica);
      replica.inFlight += 1;
      try {
        const response = await replica.client.complete(request);
        replica.failures = 0;
        replica.backedOffUntil = 0;
        replica.served += 1;
        return response;
      } catch (err) {
        if (!(err instanceof PolicyInfraError)) throw err;
        lastError = err;
        replica.failures += 1;
        const wait = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** (replica.failures - 1));
        replica.backedOffUntil = this.now() + wait;
        if (this.replicas.length > 1) this.options.warn?.(`policy replica ${replica.name} failed (${err.message}); backed off for ${Math.round(wait / 1000)} s`);
      } finally {
        replica.inFlight -= 1;
      }
    }
    throw new PolicyInfraError(`every policy replica failed; last: ${lastError?.message ?? 'unknown'}`, lastError?.status ?? null);
  }

  /** The healthy replica with the fewest requests in flight; if all are backed off, the one free soonest. */
  private pick(exclude: ReadonlySet<Replica>): Replica {
    const candidates = this.replicas.filter((r) => !exclude.has(r));
    const now = this.now();
    const healthy = candidates.filter((r) => r.backedOffUntil <= now);
    const pool = healthy.length > 0 ? healthy : [...candidates].sort((a, b) => a.backedOffUntil - b.backedOffUntil).slice(0, 1);
    return pool.reduce((best, r) => (r.inFlight < best.inFlight ? r : best));
  }
}
