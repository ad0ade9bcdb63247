import { describe, expect, it } from 'vitest';
import { OpenAiPolicy } from '../../src/policy/client.js';
import { PolicyPool } from '../../src/policy/pool.js';
import { startSimServer } from '../../src/doubles/server.js';
import { PolicyInfraError, type PolicyClient, type PolicyRequest, type PolicyResponse } from '../../src/policy/types.js';

const REQUEST: PolicyRequest = { messages: [{ role: 'user', content: 'x' }], seed: 1, temperature: 1, top_p: 1, max_tokens: 10 };

/** A replica that answers after a delay, or always fails: the far end of the pool. */
class FakeReplica implements PolicyClient {
  readonly model = 'm';
  calls = 0;
  inFlight = 0;
  maxInFlight = 0;
  constructor(
    private readonly delayMs: number,
    private readonly failing = false,
  ) {}
  async complete(): Promise<PolicyResponse> {
    this.calls += 1;
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await new Promise((r) => setTimeout(r, this.delayMs));
      if (this.failing) throw new PolicyInfraError('HTTP 503 after retries', 503);
      return { message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop', usage: { prompt_tokens: 1, completion_tokens: 1 }, model: 'm', latency_ms: this.delayMs };
    } finally {
      this.inFlight -= 1;
    }
  }
}

describe('policy endpoint pool', () => {
  it('spreads concurrent requests over the replicas by requests in flight', async () => {
    const replicas = [new FakeReplica(30), new FakeReplica(30), new FakeReplica(30)];
    const pool = new PolicyPool(replicas.map((client, i) => ({ name: `r${i}`, client })));
    await Promise.all(Array.from({ length: 30 }, () => pool.complete(REQUEST)));
    expect(replicas.map((r) => r.calls)).toEqual([10, 10, 10]);
    expect(replicas.map((r) => r.maxInFlight)).toEqual([10, 10, 10]);
  });

  it('sends more to a faster replica, because its requests leave sooner', async () => {
    const fast = new FakeReplica(5);
    const slow = new FakeReplica(60);
    const pool = new PolicyPool([{ name: 'fast', client: fast }, { name: 'slow', client: slow }]);
    for (let wave = 0; wave < 10; wave++) await Promise.all([pool.complete(REQUEST), pool.complete(REQUEST), new Promise((r) => setTimeout(r, 10)).then(() => pool.complete(REQUEST))]);
    expect(fast.calls).toBeGreaterThan(slow.calls);
  });

  it('backs off a failing replica and answers from the others', async () => {
    let clock = 0;
    const broken = new FakeReplica(1, true);
    const good = new FakeReplica(1);
    const warnings: string[] = [];
    const pool = new PolicyPool([{ name: 'broken', client: broken }, { name: 'good', client: good }], { backoffMs: 1000, now: () => clock, warn: (m) => warnings.push(m) });
    for (let i = 0; i < 20; i++) await pool.complete(REQUEST);
    expect(good.calls).toBe(20);
    expect(broken.calls).toBe(1); // failed once, then backed off
    expect(warnings[0]).toMatch(/replica broken failed .* backed off for 1 s/);
    clock += 1500; // its back-off is over: it is tried again, fails, and is backed off for longer
    await pool.complete(REQUEST);
    expect(broken.calls).toBe(2);
    expect(pool.stats().find((s) => s.name === 'broken')!.failures).toBe(2);
    clock += 1500;
    await pool.complete(REQUEST);
    expect(broken.calls).toBe(2);
  });

  it('is an infrastructure error only when every replica failed', async () => {
    const pool = new PolicyPool([{ name: 'a', client: new FakeReplica(1, true) }, { name: 'b', client: new FakeReplica(1, true) }]);
    await expect(pool.complete(REQUEST)).rejects.toThrow(/every policy replica failed/);
    await expect(pool.complete(REQUEST)).rejects.toBeInstanceOf(PolicyInfraError);
  });

  it('works over real HTTP with SIMULATED replicas, one of them down', async () => {
    const up = await Promise.all([startSimServer({ models: [], tasks: [] }), startSimServer({ models: [], tasks: [] })]);
    const clients = [...up.map((s) => s.url), 'http://127.0.0.1:9/v1'].map((url) => ({
      name: url,
      client: new OpenAiPolicy({ baseUrl: url, model: 'sim-base', apiKey: null, timeoutMs: 5000, maxRetries: 0 }),
    }));
    const pool = new PolicyPool(clients, { backoffMs: 60_000 });
    const request: PolicyRequest = { ...REQUEST, messages: [{ role: 'system', content: 'Workflow step: SearchCode' }, { role: 'user', content: '<issue>\nnothing known\n</issue>' }], json: true };
    const answers = await Promise.all(Array.from({ length: 12 }, () => pool.complete(request)));
    expect(answers).toHaveLength(12);
    expect(up.map((s) => s.requests.length).every((n) => n >= 3)).toBe(true);
    expect(pool.stats().find((s) => s.name.endsWith(':9/v1'))!.served).toBe(0);
    await Promise.all(up.map((s) => s.close()));
  });
});
