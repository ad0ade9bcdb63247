import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { OpenAiPolicy } from '../../src/policy/client.js';
import { deriveSeed } from '../../src/policy/seed.js';
import { PolicyInfraError, type PolicyRequest } from '../../src/policy/types.js';

type Handler = (req: IncomingMessage, body: Record<string, unknown>, res: ServerResponse, hit: number) => void;

let server: Server | null = null;
const seen: { at: number; body: Record<string, unknown>; auth: string | undefined }[] = [];

async function serve(handler: Handler): Promise<string> {
  seen.length = 0;
  server = createServer((req, res) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      const body = data ? (JSON.parse(data) as Record<string, unknown>) : {};
      seen.push({ at: Date.now(), body, auth: req.headers.authorization });
      handler(req, body, res, seen.length);
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}/v1`;
}

afterEach(async () => {
  const running = server;
  server = null;
  if (!running) return;
  running.closeAllConnections();
  await new Promise((resolve) => running.close(resolve));
});

function ok(res: ServerResponse, message: Record<string, unknown>) {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ id: 'c1', object: 'chat.completion', created: 0, model: 'm', choices: [{ index: 0, message, finish_reason: 'stop' }], usage: { prompt_tokens: 11, completion_tokens: 3, total_tokens: 14 } }));
}

const REQUEST: PolicyRequest = { messages: [{ role: 'user', content: 'hi' }], seed: 42, temperature: 0.7, top_p: 0.9, max_tokens: 50, stop: ['</replace>'], json: true };

describe('OpenAI-compatible policy client', () => {
  it('sends seed, sampling settings, stop and json mode, and reads content and usage', async () => {
    const url = await serve((_req, _body, res) => ok(res, { role: 'assistant', content: '{"a":1}' }));
    const policy = new OpenAiPolicy({ baseUrl: url, model: 'm', apiKey: 'sk-test-123', timeoutMs: 5000, maxRetries: 0 });
    const response = await policy.complete(REQUEST);
    expect(response.message).toEqual({ role: 'assistant', content: '{"a":1}' });
    expect(response.usage).toEqual({ prompt_tokens: 11, completion_tokens: 3 });
    expect(seen[0]!.body).toMatchObject({ model: 'm', seed: 42, temperature: 0.7, top_p: 0.9, max_tokens: 50, stop: ['</replace>'], response_format: { type: 'json_object' } });
    expect(seen[0]!.auth).toBe('Bearer sk-test-123');
  });

  it('asks for the one tool and reads the tool call back', async () => {
    const url = await serve((_req, _body, res) =>
      ok(res, { role: 'assistant', content: null, tool_calls: [{ id: 't1', type: 'function', function: { name: 'Search', arguments: '{"x":1}' } }] }),
    );
    const policy = new OpenAiPolicy({ baseUrl: url, model: 'm', apiKey: null, timeoutMs: 5000, maxRetries: 0 });
    const tool = { type: 'function' as const, function: { name: 'Search', description: 'd', parameters: { type: 'object' } } };
    const response = await policy.complete({ ...REQUEST, json: false, tools: [tool] });
    expect(seen[0]!.body).toMatchObject({ tools: [tool], tool_choice: { type: 'function', function: { name: 'Search' } } });
    expect(seen[0]!.body.response_format).toBeUndefined();
    expect(response.message.tool_calls).toEqual([{ id: 't1', type: 'function', function: { name: 'Search', arguments: '{"x":1}' } }]);
  });

  it('retries 429 honouring Retry-After, and 5xx, then succeeds', async () => {
    const url = await serve((_req, _body, res, hit) => {
      if (hit === 1) {
        res.writeHead(429, { 'retry-after': '1', 'content-type': 'application/json' });
        res.end('{"error":{"message":"slow down"}}');
      } else if (hit === 2) {
        res.writeHead(503);
        res.end('busy');
      } else ok(res, { role: 'assistant', content: 'done' });
    });
    const policy = new OpenAiPolicy({ baseUrl: url, model: 'm', apiKey: null, timeoutMs: 5000, maxRetries: 3 });
    const response = await policy.complete(REQUEST);
    expect(response.message.content).toBe('done');
    expect(seen).toHaveLength(3);
    expect(seen[1]!.at - seen[0]!.at).toBeGreaterThanOrEqual(900);
  });

  it('after the retries a failure is an infrastructure error that never carries the key', async () => {
    const url = await serve((_req, _body, res) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"boom"}}');
    });
    const policy = new OpenAiPolicy({ baseUrl: url, model: 'm', apiKey: 'sk-secret-999', timeoutMs: 5000, maxRetries: 1 });
    const error = await policy.complete(REQUEST).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PolicyInfraError);
    expect((error as PolicyInfraError).status).toBe(500);
    expect((error as Error).message).toMatch(/HTTP 500 after retries/);
    expect(JSON.stringify(error) + (error as Error).message + (error as Error).stack).not.toContain('sk-secret-999');
    expect(seen).toHaveLength(2);
  });

  it('a request that outlives its timeout is an infrastructure error', async () => {
    const url = await serve(() => {
      // never answers
    });
    const policy = new OpenAiPolicy({ baseUrl: url, model: 'm', apiKey: null, timeoutMs: 300, maxRetries: 1 });
    const error = await policy.complete(REQUEST).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PolicyInfraError);
    expect((error as Error).message).toMatch(/timed out after retries/);
    expect(seen).toHaveLength(2);
  });

  it('a refused connection is an infrastructure error', async () => {
    const policy = new OpenAiPolicy({ baseUrl: 'http://127.0.0.1:9/v1', model: 'm', apiKey: null, timeoutMs: 1000, maxRetries: 0 });
    await expect(policy.complete(REQUEST)).rejects.toThrow(/connection failed after retries/);
  });
});

describe('sample seeds', () => {
  it('derive from their parts, stably, within 31 bits', () => {
    const a = deriveSeed(0, 1, 'minigym__unitkit-101', 3);
    expect(deriveSeed(0, 1, 'minigym__unitkit-101', 3)).toBe(a);
    expect(deriveSeed(0, 1, 'minigym__unitkit-101', 4)).not.toBe(a);
    expect(deriveSeed(1, 0, 'minigym__unitkit-101', 3)).not.toBe(a);
    expect(a).toBeGreaterThanOrEqual(0);
    expect(a).toBeLessThan(2 ** 31);
    // parts are separated, so ("1", "23") and ("12", "3") differ
    expect(deriveSeed('1', '23')).not.toBe(deriveSeed('12', '3'));
  });
});
