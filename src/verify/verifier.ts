import pLimit, { type LimitFunction } from 'p-limit';
import { isEngineFailure, type EnginePool } from '../sandbox/engine-pool.js';
import type { Instance } from '../tasks/instance.js';
import { normalizePatch, patchHash } from './patch.js';
import { verifyPatch, type VerifyContext } from './run.js';
import { specHash, type EvalSpec } from './spec.js';
import { isFinal, verdictKey, verdictKeyOf, type Verdict } from './verdict.js';

export interface VerifierOptions {
  /** Containers at once. */
  concurrency: number;
  specFor: (instance: Instance) => EvalSpec;
  /** Verdicts recorded earlier (a resumed run's ledger); final ones are reused, errors retried. */
  known?: readonly Verdict[];
  /** Several Docker engines (sandbox.docker): each container goes to one with free capacity. */
  engines?: EnginePool;
  /** Called once per verification actually run, before the verdict is handed out: append it to a ledger here. */
  onVerdict?: (verdict: Verdict, log: string) => void;
}

export interface VerifierStats {
  requests: number;
  cacheHits: number;
  containerRuns: number;
}

/**
 * Verifies patches with a cache keyed by (instance, normalised patch, eval spec): thirty samples
 * of one task often end in the same patch, and that patch runs once. Concurrent requests for the
 * same key share one container run.
 */
export class Verifier {
  private readonly cache = new Map<string, Verdict>();
  private readonly inFlight = new Map<string, Promise<Verdict>>();
  private readonly limit: LimitFunction;
  readonly stats: VerifierStats = { requests: 0, cacheHits: 0, containerRuns: 0 };

  /** Verifications running now (not waiting for a slot): progress shows it as containers running. */
  get running(): number {
    return this.limit.activeCount;
  }

  constructor(
    private readonly ctx: VerifyContext,
    private readonly options: VerifierOptions,
  ) {
    this.limit = pLimit(options.concurrency);
    for (const verdict of options.known ?? []) if (isFinal(verdict.outcome)) this.cache.set(verdictKeyOf(verdict), verdict);
  }

  keyOf(instance: Instance, rawPatch: string): string {
    return verdictKey(instance.instance_id, patchHash(normalizePatch(rawPatch)), specHash(this.options.specFor(instance)));
  }

  /** The final verdict already known for this patch, if any (no container is run). */
  cached(instance: Instance, rawPatch: string): Verdict | undefined {
    return this.cache.get(this.keyOf(instance, rawPatch));
  }

  async verify(instance: Instance, rawPatch: string): Promise<Verdict> {
    this.stats.requests += 1;
    const key = this.keyOf(instance, rawPatch);
    const cached = this.cache.get(key) ?? this.inFlight.get(key);
    if (cached) {
      this.stats.cacheHits += 1;
      return cached;
    }
    const running = this.limit(async () => {
      const { verdict, log } = await this.onSomeEngine(instance, rawPatch);
      if (verdict.outcome !== 'empty_patch') this.stats.containerRuns += 1;
      this.options.onVerdict?.(verdict, log);
      if (isFinal(verdict.outcome)) this.cache.set(key, verdict);
      return verdict;
    }).finally(() => this.inFlight.delete(key));
    this.inFlight.set(key, running);
    return running;
  }

  /**
   * Runs one verification, on an engine of the pool when there is one. When the engine itself
   * fails (not the patch), it leaves the rotation and the verification is tried on another.
   */
  private async onSomeEngine(instance: Instance, rawPatch: string): Promise<{ verdict: Verdict; log: string }> {
    const spec = this.options.specFor(instance);
    const engines = this.options.engines;
    if (!engines) return verifyPatch(this.ctx, instance, spec, rawPatch);
    for (;;) {
      const lease = await engines.acquire();
      const result = await verifyPatch({ ...this.ctx, docker: lease.docker }, instance, spec, rawPatch);
      const engineFailed = result.verdict.outcome === 'error' && isEngineFailure(new Error(result.verdict.reason ?? ''));
      lease.release(engineFailed ? { failed: new Error(result.verdict.reason ?? 'engine failure') } : undefined);
      if (!engineFailed || engines.healthy().length === 0) return result;
    }
  }
}
