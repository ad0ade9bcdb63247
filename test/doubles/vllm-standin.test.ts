import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueBlock, fileContextBlock } from '../../src/agent/prompts.js';
import { systemPrompt } from '../../src/agent/actions.js';
import { SIM_BASE, SimModelSchema } from '../../src/doubles/model.js';
import { startSimServer } from '../../src/doubles/server.js';
import { emptySafetensors, writeFolderFiles } from '../../src/doubles/standins/model-folder.js';
import { servedAs } from '../../src/doubles/standins/vllm.js';
import { makeHubModel } from '../helpers/standin-hub.js';
import { minigymInstance, minigymInstances } from '../helpers/minigym.js';
import { runStandin, startVllmStandin, stopStandin, type StandinProcess } from '../helpers/vllm-standin.js';
import { freePort } from '../helpers/ports.js';

const HUB_ID = 'Qwen/Qwen2.5-Coder-7B-Instruct';
const root = mkdtempSync(path.join(tmpdir(), 'rft-vllm-standin-'));
const hub = path.join(root, 'hub');
const hubEnv = { HF_HUB_CACHE: hub, HF_HUB_OFFLINE: '1' };
makeHubModel(hub, HUB_ID);

const TRAINED = SimModelSchema.parse({ name: 'rft-m1', simulated: true, parent: 'sim-base', skill: { default: 0.9, tasks: {} } });

/** An adapter folder as PEFT saves one, with SIMULATED weights. */
function adapterFolder(name: string, rank = 16): string {
  const dir = path.join(root, name);
  writeFolderFiles(
    dir,
    {
      'adapter_config.json': JSON.stringify({ peft_type: 'LORA', base_model_name_or_path: HUB_ID, r: rank, lora_alpha: 32, target_modules: ['q_proj', 'v_proj'] }),
      'adapter_model.safetensors': emptySafetensors(),
    },
    TRAINED,
  );
  return dir;
}

const search = (model: string, maxTokens = 2000) => ({
  model,
  messages: [
    { role: 'system', content: systemPrompt('SearchCode', 'json') },
    { role: 'user', content: `${issueBlock(minigymInstance('minigym__unitkit-101').problem_statement)}\n\n${fileContextBlock([])}` },
  ],
  seed: 7,
  temperature: 0,
  max_tokens: maxTokens,
});

async function post(base: string, route: string, body: unknown): Promise<{ status: number; text: string; json: () => unknown }> {
  const res = await fetch(`${base}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) };
}

/** True when something accepts connections on the port. */
function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('vllm serve (SIMULATED stand-in): the command line', () => {
  it('refuses an unknown flag as argparse does: top-level usage, "unrecognized arguments", exit 2, nothing listening', async () => {
    const port = await freePort();
    const proc = runStandin('vllm', ['serve', HUB_ID, '--port', String(port), '--max-model-length', '4096'], hubEnv);
    expect(await proc.exited).toBe(2);
    expect(proc.stderr()).toBe(
      'SIMULATED vllm stand-in (test double)\nusage: vllm [-h] [-v] {chat,complete,serve,bench,collect-env,run-batch} ...\nvllm: error: unrecognized arguments: --max-model-length 4096\n',
    );
    expect(await listening(port)).toBe(false);
  });

  it('refuses a bad value with the serve usage, and --model with serve as vLLM does', async () => {
    const badInt = runStandin('vllm', ['serve', HUB_ID, '--port', 'eighty'], hubEnv);
    expect(await badInt.exited).toBe(2);
    expect(badInt.stderr()).toContain("usage: vllm serve [model_tag] [options]\nvllm serve: error: argument --port: invalid int value: 'eighty'\n");
    const rank = runStandin('vllm', ['serve', HUB_ID, '--max-lora-rank', '48'], hubEnv);
    expect(await rank.exited).toBe(2);
    expect(rank.stderr()).toContain('argument --max-lora-rank: invalid choice: 48 (choose from 1, 8, 16, 32, 64, 128, 256, 320, 512)');
    const model = runStandin('vllm', ['serve', '--model', HUB_ID], hubEnv);
    expect(await model.exited).toBe(1);
    expect(model.stderr()).toContain('ValueError: With `vllm serve`, you should provide the model as a positional argument');
  });

  it.each([
    ['an adapter folder', () => adapterFolder('adapter-as-model')],
    ['an empty folder', () => mkdtempSync(path.join(root, 'empty-'))],
    ['a hub id not in the cache', () => 'Qwen/Not-Downloaded-7B'],
  ])('refuses %s in vLLM\'s words before listening (exit 1)', async (_what, model) => {
    const port = await freePort();
    const arg = model();
    const proc = runStandin('vllm', ['serve', arg, '--host', '127.0.0.1', '--port', String(port)], hubEnv);
    expect(await proc.exited).toBe(1);
    expect(proc.stderr()).toContain(`ValueError: Invalid repository ID or local directory specified: '${arg}'.\nPlease verify the following requirements:`);
    expect(proc.stderr()).toContain("ensure the presence of a 'config.json'");
    expect(await listening(port)).toBe(false);
  });

  it('refuses --lora-modules without --enable-lora, and a --max-model-len beyond the config', async () => {
    const lora = runStandin('vllm', ['serve', HUB_ID, '--port', String(await freePort()), '--lora-modules', `m1=${adapterFolder('static-no-enable')}`], hubEnv);
    expect(await lora.exited).toBe(1);
    expect(lora.stderr()).toContain('ValueError: LoRA is not enabled. Use --enable-lora to enable LoRA.');
    const long = runStandin('vllm', ['serve', HUB_ID, '--port', String(await freePort()), '--max-model-len', '64k'], hubEnv);
    expect(await long.exited).toBe(1);
    expect(long.stderr()).toContain('User-specified max_model_len (64000) is greater than the derived max_model_len (max_position_embeddings=32768');
  });
});

describe('vllm serve (SIMULATED stand-in): a hub model from the cache', () => {
  let proc: StandinProcess;
  let base: string;
  beforeAll(async () => {
    ({ proc, base } = await startVllmStandin([HUB_ID, '--served-model-name', 'policy', '--max_model_len', '8k', '--dtype', 'bfloat16', '--no-enable-prefix-caching'], hubEnv));
  });
  afterAll(async () => {
    await stopStandin(proc);
  });

  it('prints its banner first and answers GET /health with 200 and no body', async () => {
    expect(proc.stderr().split('\n')[0]).toBe('SIMULATED vllm stand-in (test double)');
    const res = await fetch(`${base}/health`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });

  it('lists the served name in vLLM\'s model card (root = the model argument, max_model_len from the flag)', async () => {
    const body = (await (await fetch(`${base}/v1/models`)).json()) as { object: string; data: Record<string, unknown>[] };
    expect(body.object).toBe('list');
    expect(body.data).toHaveLength(1);
    expect(body.data[0]).toMatchObject({ id: 'policy', object: 'model', owned_by: 'vllm', root: HUB_ID, parent: null, max_model_len: 8000 });
    expect(body.data[0]!.permission).toEqual([expect.objectContaining({ object: 'model_permission', allow_sampling: true })]);
  });

  it('answers a chat completion from the SIMULATED policy (sim-base under the served name)', async () => {
    const res = await post(base, '/v1/chat/completions', search('policy'));
    expect(res.status).toBe(200);
    const answer = res.json() as { model: string; choices: { message: { content: string } }[] };
    expect(answer.model).toBe('policy');
    // The same request to the in-process SIMULATED server, serving sim-base as "policy", answers alike.
    const reference = await startSimServer({ models: [servedAs(SIM_BASE, 'policy', minigymInstances())], tasks: minigymInstances() });
    try {
      const expected = (await post(reference.url.replace(/\/v1$/, ''), '/v1/chat/completions', search('policy')).then((r) => r.json())) as typeof answer;
      expect(answer.choices[0]!.message.content).toBe(expected.choices[0]!.message.content);
    } finally {
      await reference.close();
    }
  });

  it('answers an unknown model with 404 in vLLM\'s ErrorResponse shape', async () => {
    const res = await post(base, '/v1/chat/completions', search('Qwen/Qwen2.5-Coder-7B-Instruct'));
    expect(res.status).toBe(404);
    expect(res.json()).toEqual({ error: { message: 'The model `Qwen/Qwen2.5-Coder-7B-Instruct` does not exist.', type: 'NotFoundError', param: null, code: 404 } });
  });

  it('refuses an over-long prompt with 400 in vLLM\'s words', async () => {
    const res = await post(base, '/v1/chat/completions', search('policy', 7990));
    expect(res.status).toBe(400);
    const body = res.json() as { error: { message: string; type: string; code: number } };
    expect(body.error).toMatchObject({ type: 'BadRequestError', code: 400 });
    expect(body.error.message).toMatch(/^This model's maximum context length is 8000 tokens\. However, you requested \d+ tokens \(\d+ in the messages, 7990 in the completion\)\. Please reduce the length of the messages or completion\.$/);
  });

  it('has no runtime LoRA routes without VLLM_ALLOW_RUNTIME_LORA_UPDATING: FastAPI\'s 404', async () => {
    const res = await post(base, '/v1/load_lora_adapter', { lora_name: 'm1', lora_path: adapterFolder('refused-without-env') });
    expect(res.status).toBe(404);
    expect(res.json()).toEqual({ detail: 'Not Found' });
  });
});

describe('vllm serve (SIMULATED stand-in): LoRA adapters', () => {
  let proc: StandinProcess;
  let base: string;
  const staticAdapter = adapterFolder('static-adapter');
  beforeAll(async () => {
    ({ proc, base } = await startVllmStandin([HUB_ID, '--enable-lora', '--max-lora-rank', '32', '--lora-modules', `m0=${staticAdapter}`], { ...hubEnv, VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True' }));
  });
  afterAll(async () => {
    await stopStandin(proc);
  });

  it('loads an adapter at run time and lists it with parent = the base name and root = its path', async () => {
    const adapter = adapterFolder('runtime-adapter');
    const res = await post(base, '/v1/load_lora_adapter', { lora_name: 'm1', lora_path: adapter });
    expect(res.status).toBe(200);
    expect(res.text).toBe("Success: LoRA adapter 'm1' added successfully.");
    const body = (await (await fetch(`${base}/v1/models`)).json()) as { data: Record<string, unknown>[] };
    expect(body.data.map((card) => [card.id, card.parent, card.root])).toEqual([
      [HUB_ID, null, HUB_ID],
      ['m0', HUB_ID, staticAdapter],
      ['m1', HUB_ID, adapter],
    ]);
    const chat = await post(base, '/v1/chat/completions', search('m1'));
    expect(chat.status).toBe(200);
    expect((chat.json() as { model: string }).model).toBe('m1');
  });

  it('answers vLLM\'s errors: a folder that is no adapter (404 "No adapter found"), a name loaded twice, a rank too high, an unknown name to unload', async () => {
    const notAdapter = path.join(root, 'full-model');
    mkdirSync(notAdapter, { recursive: true });
    writeFileSync(path.join(notAdapter, 'config.json'), '{}');
    const missing = await post(base, '/v1/load_lora_adapter', { lora_name: 'm2', lora_path: notAdapter });
    expect(missing.status).toBe(404);
    expect(missing.json()).toEqual({ error: { message: `Loading lora m2 failed: No adapter found for ${notAdapter}`, type: 'NotFoundError', param: null, code: 404 } });

    const twice = await post(base, '/v1/load_lora_adapter', { lora_name: 'm0', lora_path: staticAdapter });
    expect(twice.status).toBe(400);
    expect(twice.json()).toEqual({ error: { message: "The lora adapter 'm0' has already been loaded.", type: 'InvalidUserInput', param: null, code: 400 } });

    const rank = await post(base, '/v1/load_lora_adapter', { lora_name: 'm3', lora_path: adapterFolder('rank-64', 64) });
    expect(rank.status).toBe(400);
    expect((rank.json() as { error: { message: string } }).error.message).toBe('LoRA rank 64 is greater than max_lora_rank 32.');

    const unknown = await post(base, '/v1/unload_lora_adapter', { lora_name: 'never-loaded' });
    expect(unknown.status).toBe(404);
    expect(unknown.json()).toEqual({ error: { message: "The lora adapter 'never-loaded' cannot be found.", type: 'NotFoundError', param: null, code: 404 } });

    const unload = await post(base, '/v1/unload_lora_adapter', { lora_name: 'm0' });
    expect(unload.status).toBe(200);
    expect(unload.text).toBe("Success: LoRA adapter 'm0' removed successfully.");
  });
});

describe('vllm serve (SIMULATED stand-in): stopping', () => {
  it('exits cleanly on SIGTERM and stops listening', async () => {
    const { proc, port } = await startVllmStandin([HUB_ID], hubEnv);
    expect(await stopStandin(proc)).toBe(0);
    expect(await listening(port)).toBe(false);
  });
});
