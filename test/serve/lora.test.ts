import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ServeSchema } from '../../src/recipe/schema.js';
import { ServeError } from '../../src/serve/errors.js';
import { createModelServer } from '../../src/serve/create-server.js';

/** A stand-in for vLLM's OpenAI server with runtime LoRA updating (VLLM_ALLOW_RUNTIME_LORA_UPDATING=True). */
class VllmStandin {
  readonly adapters = new Map<string, string>();
  readonly requests: { method: string; path: string; body: Record<string, unknown> | null }[] = [];
  url = '';
  private server: Server | null = null;

  constructor(private readonly runtimeUpdating = true) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      let raw = '';
      req.on('data', (chunk) => (raw += chunk));
      req.on('end', () => {
        const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : null;
        this.requests.push({ method: req.method ?? '', path: req.url ?? '', body });
        const text = (status: number, message: string) => res.writeHead(status, { 'content-type': 'text/plain' }).end(message);
        if (req.method === 'GET' && req.url === '/v1/models') {
          const data = [
            { id: 'Qwen/Qwen2.5-Coder-32B-Instruct', object: 'model', root: 'Qwen/Qwen2.5-Coder-32B-Instruct', parent: null },
            ...[...this.adapters].map(([id, root]) => ({ id, object: 'model', root, parent: 'Qwen/Qwen2.5-Coder-32B-Instruct' })),
          ];
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data }));
          return;
        }
        if (this.runtimeUpdating && req.method === 'POST' && req.url === '/v1/load_lora_adapter') {
          const name = String(body?.lora_name);
          if (this.adapters.has(name)) return text(400, `The lora adapter '${name}' has already been loaded.`);
          if (String(body?.lora_path).includes('missing')) return text(400, `Loading lora ${name} failed: No adapter found for ${String(body?.lora_path)}`);
          this.adapters.set(name, String(body?.lora_path));
          return text(200, `Success: LoRA adapter '${name}' added successfully.`);
        }
        if (this.runtimeUpdating && req.method === 'POST' && req.url === '/v1/unload_lora_adapter') {
          const name = String(body?.lora_name);
          if (!this.adapters.delete(name)) return text(400, `The lora adapter '${name}' cannot be found.`);
          return text(200, `Success: LoRA adapter '${name}' removed successfully.`);
        }
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"detail":"Not Found"}');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

let vllm: VllmStandin | null = null;
afterEach(async () => {
  await vllm?.close();
  vllm = null;
});

function loraServer(baseUrl: string, adapterName?: string) {
  return createModelServer(ServeSchema.parse({ kind: 'lora', base_url: baseUrl, ...(adapterName ? { adapter_name: adapterName } : {}) }), {
    runDir: '/nonexistent',
    log: () => {},
  });
}

describe('lora model server', () => {
  it('loads the adapter with POST /v1/load_lora_adapter, checks /v1/models lists it, and returns its name', async () => {
    vllm = new VllmStandin();
    const base = await vllm.start();
    const served = await loraServer(`${base}/v1`).serve('/runs/r/iter-0/finetune/adapter', 1);
    expect(served).toEqual({ baseUrl: [`${base}/v1`], model: 'rft-it1' });
    expect(vllm.requests.filter((r) => r.method === 'POST')).toEqual([
      { method: 'POST', path: '/v1/load_lora_adapter', body: { lora_name: 'rft-it1', lora_path: '/runs/r/iter-0/finetune/adapter' } },
    ]);
    expect(vllm.adapters.get('rft-it1')).toBe('/runs/r/iter-0/finetune/adapter');
  });

  it('keeps an adapter already loaded from the same path and reloads one loaded from another path', async () => {
    vllm = new VllmStandin();
    const base = await vllm.start();
    const server = loraServer(`${base}/v1`, 'policy-{iteration}');
    await server.serve('/a/adapter', 2);
    await server.serve('/a/adapter', 2);
    expect(vllm.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    const served = await server.serve('/b/adapter', 2);
    expect(served.model).toBe('policy-2');
    expect(vllm.requests.filter((r) => r.method === 'POST').map((r) => r.path)).toEqual([
      '/v1/load_lora_adapter',
      '/v1/unload_lora_adapter',
      '/v1/load_lora_adapter',
    ]);
    expect(vllm.adapters.get('policy-2')).toBe('/b/adapter');
  });

  it('reports what vLLM answered when the load fails', async () => {
    vllm = new VllmStandin();
    const base = await vllm.start();
    const failure = await loraServer(`${base}/v1/`).serve('/missing/adapter', 0).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ServeError);
    expect((failure as Error).message).toContain('HTTP 400: Loading lora rft-it0 failed: No adapter found for /missing/adapter');
  });

  it('says how to enable runtime LoRA loading when the route is missing', async () => {
    vllm = new VllmStandin(false);
    const base = await vllm.start();
    await expect(loraServer(`${base}/v1`).serve('/a', 0)).rejects.toThrow(/HTTP 404.*VLLM_ALLOW_RUNTIME_LORA_UPDATING=True/);
  });
});

describe('none model server', () => {
  it('returns the model name as is and keeps the policy endpoint', async () => {
    const server = createModelServer({ kind: 'none' }, { runDir: '/nonexistent', log: () => {} });
    expect(await server.serve('ft:gpt-4o-mini:org:rft:abc', 1)).toEqual({ baseUrl: null, model: 'ft:gpt-4o-mini:org:rft:abc' });
    await server.stop();
  });
});
