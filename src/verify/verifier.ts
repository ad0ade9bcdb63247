import pLimit, { type LimitFunction } from 'p-limit';
import { isEngineFailure, type EnginePool } from '../sandbox/engine-pool.js';
import type { Instance } from '../tasks/instance.js';
import { normalizePatch, patchHash } from './patch.js';
import { verifyPatch, type VerifyContext } from './run.js';
import { specHash, type EvalSpec } from './spec.js';
import { isFinal, repeatedError, verdictKey, verdictKeyOf, type Verdict } from './verdict.js';

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
  /**
   * The harness's failures (`error` verdicts, counted from `known` and as they come) allowed on one
   * patch and spec: the last one is recorded as `repeated_error`, final. Unset: retried forever.
   * An engine that is down or restarting is no failure of this patch's and is not counted.
   */
  maxErrorAttempts?: number;
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
  /** Per key without a final verdict: how many counted `error` verdicts it has, and the last one. */
  private readonly errors = new Map<string, { count: number; last: Verdict }>();
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
    for (const verdict of options.known ?? []) {
      if (isFinal(verdict.outcome)) this.cache.set(verdictKeyOf(verdict), verdict);
      else this.countError(verdictKeyOf(verdict), verdict);
    }
  }

  private countError(key: string, verdict: Verdict): number {
    if (isEngineFailure(new Error(verdict.reason ?? ''))) return this.errors.get(key)?.count ?? 0;
    const count = (this.errors.get(key)?.count ?? 0) + 1;
    this.errors.set(key, { count, last: verdict });
    return count;
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
    const max = this.options.maxErrorAttempts;
    const counted = this.errors.get(key);
    if (max !== undefined && counted !== undefined && counted.count >= max) {
      // As many failures as allowed are already recorded (under a larger limit, or a process killed
      // before the last was made final): the final verdict is recorded without another run.
      const verdict = repeatedError(counted.last, counted.count);
      this.options.onVerdict?.(verdict, '');
      this.cache.set(key, verdict);
      return verdict;
    }
    const running = this.limit(async () => {
      const result = await this.onSomeEngine(instance, rawPatch);
      let verdict = result.verdict;
      const log = result.log;
      if (verdict.outcome !== 'empty_patch') this.stats.containerRuns += 1;
      if (verdict.outcome === 'error') {
        const count = this.countError(key, verdict);
        if (max !== undefined && count >= max) verdict = repeatedError(verdict, count);
      }
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
