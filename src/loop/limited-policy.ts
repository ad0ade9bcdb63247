import type { LimitFunction } from 'p-limit';
import type { PolicyClient, PolicyRequest, PolicyResponse } from '../policy/types.js';

/** Bounds the LLM calls in flight across every trajectory that shares it. */
export class LimitedPolicy implements PolicyClient {
  constructor(
    private readonly inner: PolicyClient,
    private readonly limit: LimitFunction,
  ) {}

  get model(): string {
    return this.inner.model;
  }

  complete(request: PolicyRequest): Promise<PolicyResponse> {
    return this.limit(() => this.inner.complete(request));
  }
}
