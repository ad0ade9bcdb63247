import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemPrompt } from '../../src/agent/actions.js';
import { issueBlock } from '../../src/agent/prompts.js';
import { OpenAiPolicy } from '../../src/policy/client.js';
import { startSimServer, type SimServer } from '../../src/doubles/server.js';
import { PolicyContextLengthError, PolicyInfraError } from '../../src/policy/types.js';
import { minigymInstances } from '../helpers/minigym.js';

let sim: SimServer;

beforeAll(async () => {
  sim = await startSimServer({ models: [], tasks: minigymInstances(), maxModelLen: 1500 });
});

afterAll(async () => {
  await sim.close();
});

const messages = (issue: string) => [
  { role: 'system' as const, content: systemPrompt('SearchCode', 'json') },
  { role: 'user' as const, content: issueBlock(issue) },
];

describe('a prompt longer than the model context', () => {
  it('the SIMULATED server refuses it as vLLM does: HTTP 400, its error shape and words', async () => {
    const res = await fetch(`${sim.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'sim-base', messages: messages(minigymInstances()[0]!.problem_statement), max_tokens: 2000 }),
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ error: { type: 'BadRequestError', param: null, code: 400 } });
    expect((body.error as { message: string }).message).toMatch(/^This model's maximum context length is 1500 tokens\. However, you requested \d+ tokens \(\d+ in the messages, 2000 in the completion\)\. Please reduce the length of the messages or completion\.$/);
  });

  it('the client maps the refusal to a model-side error, not an infrastructure one, without retrying', async () => {
    const policy = new OpenAiPolicy({ baseUrl: sim.url, model: 'sim-base', apiKey: null, timeoutMs: 10_000, maxRetries: 3 });
    const before = sim.requests.length;
    const request = { messages: messages(minigymInstances()[0]!.problem_statement), seed: 1, temperature: 0, top_p: 1, max_tokens: 2000, json: true };
    const err = await policy.complete(request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PolicyContextLengthError);
    expect(err).not.toBeInstanceOf(PolicyInfraError);
    expect((err as Error).message).toMatch(/maximum context length is 1500 tokens/);
    // The same request with room for its completion is answered.
    const ok = await policy.complete({ ...request, max_tokens: 100 });
    expect(ok.message.content).toMatch(/scratch_pad/);
    expect(sim.requests.length).toBe(before + 1);
  });
});
