import type { LimitFunction } from 'p-limit';
import { PolicyStoppedError, type PolicyClient, type PolicyRequest, type PolicyResponse } from '../policy/types.js';

/** A policy whose calls wait for a slot (`gate`: a limit, a scheduler) before reaching the inner one. */
abstract class GatedPolicy implements PolicyClient {
  constructor(private readonly inner: PolicyClient) {}

  get model(): string {
    return this.inner.model;
  }

  protected abstract gate(call: () => Promise<PolicyResponse>): Promise<PolicyResponse>;

  complete(request: PolicyRequest): Promise<PolicyResponse> {
    return this.gate(() => this.inner.complete(request));
  }
}

/** Bounds the LLM calls in flight across every trajectory that shares it (first come, first served). */
export class LimitedPolicy extends GatedPolicy {
  constructor(
    inner: PolicyClient,
    private readonly limit: LimitFunction,
  ) {
    super(inner);
  }

  protected gate(call: () => Promise<PolicyResponse>): Promise<PolicyResponse> {
    return this.limit(call);
  }
}

interface Waiting {
  progress: number;
  seq: number;
  start: () => void;
}

/**
 * Bounds the LLM calls in flight, and when a slot frees gives it to the waiting call of the
 * trajectory that is furthest along (most calls made; first come first served among equals).
 * First come, first served makes the samples of an instance advance in lockstep — each one's next
 * call queues behind every other's — so their patches all arrive at the end, in a burst, while
 * containers idle; furthest-first finishes trajectories one after another, so patches reach
 * verification from early on. Every slot stays busy as long as calls wait: only the order changes.
 */
export class ProgressScheduler {
  private running = 0;
  private seq = 0;
  private readonly waiting: Waiting[] = [];

  constructor(readonly concurrency: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`LLM concurrency must be a positive integer, got ${concurrency}`);
  }

  /** Calls holding a slot now (progress shows it as LLM calls in flight). */
  get inFlight(): number {
    return this.running;
  }

  /** Calls waiting for a slot. */
  get queued(): number {
    return this.waiting.length;
  }

  run<T>(progress: number, task: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        this.running += 1;
        task()
          .then(resolve, reject)
          .finally(() => {
            this.running -= 1;
            this.next();
          });
      };
      this.waiting.push({ progress, seq: this.seq++, start });
      this.next();
    });
  }

  private next(): void {
    while (this.running < this.concurrency && this.waiting.length > 0) {
      // Few calls wait (at most instances in flight × samples): a scan is cheaper than a heap's bookkeeping.
      let best = 0;
      for (let i = 1; i < this.waiting.length; i++) {
        const w = this.waiting[i]!;
        const b = this.waiting[best]!;
        if (w.progress > b.progress || (w.progress === b.progress && w.seq < b.seq)) best = i;
      }
      const [chosen] = this.waiting.splice(best, 1);
      chosen!.start();
    }
  }
}

/**
 * One trajectory's view of a shared policy: its calls are scheduled by how far it has come. A
 * call that was waiting for a slot when the user asked to stop is not sent (PolicyStoppedError).
 */
export class ScheduledPolicy extends GatedPolicy {
  private calls = 0;

  constructor(
    inner: PolicyClient,
    private readonly scheduler: ProgressScheduler,
    private readonly stopping: () => boolean = () => false,
  ) {
    super(inner);
  }

  protected gate(call: () => Promise<PolicyResponse>): Promise<PolicyResponse> {
    const progress = this.calls;
    this.calls += 1;
    return this.scheduler.run(progress, () => (this.stopping() ? Promise.reject(new PolicyStoppedError()) : call()));
  }
}
