import { describe, expect, it } from 'vitest';
import { ProgressScheduler, ScheduledPolicy } from '../../src/loop/limited-policy.js';
import type { PolicyClient, PolicyRequest, PolicyResponse } from '../../src/policy/types.js';

/** A policy whose calls end when the test says so, recording the order they started in. */
class HeldPolicy implements PolicyClient {
  readonly model = 'held';
  readonly started: string[] = [];
  private readonly release: Array<() => void> = [];
  inFlight = 0;
  maxInFlight = 0;
  complete(request: PolicyRequest): Promise<PolicyResponse> {
    this.started.push(String(request.messages[0]!.content));
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    return new Promise((resolve) =>
      this.release.push(() => {
        this.inFlight -= 1;
        resolve({ message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop', usage: { prompt_tokens: 1, completion_tokens: 1 }, model: 'held', latency_ms: 0 });
      }),
    );
  }
  async finishOne(): Promise<void> {
    this.release.shift()!();
    await new Promise((r) => setImmediate(r));
  }
}

const ask = (p: PolicyClient, label: string) => p.complete({ messages: [{ role: 'user', content: label }], seed: 1, temperature: 1, top_p: 1, max_tokens: 10 });

describe('LLM calls scheduled by trajectory progress', () => {
  it('gives a free slot to the trajectory furthest along, first come first served among equals, never more than C at once', async () => {
    const inner = new HeldPolicy();
    const scheduler = new ProgressScheduler(1);
    const [a, b, c] = [0, 1, 2].map(() => new ScheduledPolicy(inner, scheduler));
    // a makes two calls in a row; b and c one each. FIFO would interleave a, b, c, a.
    const a1 = ask(a!, 'a1').then(() => ask(a!, 'a2'));
    const b1 = ask(b!, 'b1');
    const c1 = ask(c!, 'c1');
    await new Promise((r) => setImmediate(r));
    expect(inner.started).toEqual(['a1']);
    await inner.finishOne(); // a1 ends: a's second call (progress 1) goes before b1 and c1 (progress 0)
    expect(inner.started).toEqual(['a1', 'a2']);
    await inner.finishOne();
    await inner.finishOne();
    await inner.finishOne();
    await Promise.all([a1, b1, c1]);
    expect(inner.started).toEqual(['a1', 'a2', 'b1', 'c1']);
    expect(inner.maxInFlight).toBe(1);
  });

  it('keeps every slot busy while calls wait', async () => {
    const inner = new HeldPolicy();
    const scheduler = new ProgressScheduler(3);
    const calls = Array.from({ length: 5 }, (_, i) => ask(new ScheduledPolicy(inner, scheduler), `t${i}`));
    await new Promise((r) => setImmediate(r));
    expect(inner.inFlight).toBe(3);
    expect(scheduler.queued).toBe(2);
    for (let i = 0; i < 5; i++) await inner.finishOne();
    await Promise.all(calls);
    expect(inner.started).toEqual(['t0', 't1', 't2', 't3', 't4']);
  });
});
