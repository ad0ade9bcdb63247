import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ServeSchema } from '../../src/recipe/schema.js';
import { ServeError } from '../../src/serve/errors.js';
import { createModelServer } from '../../src/serve/create-server.js';
import { emptySafetensors, writeFolderFiles } from '../../src/doubles/standins/model-folder.js';
import { makeHubModel } from '../helpers/standin-hub.js';
import { startVllmStandin, stopStandin, type StandinProcess } from '../helpers/vllm-standin.js';

/** The lora serving backend against the SIMULATED `vllm serve` stand-in (vLLM v0.10.0's answers). */

const HUB_ID = 'Qwen/Qwen2.5-Coder-7B-Instruct';
const root = mkdtempSync(path.join(tmpdir(), 'rft-lora-standin-'));
const env = { HF_HUB_CACHE: path.join(root, 'hub') };
makeHubModel(env.HF_HUB_CACHE, HUB_ID);
const HINT = 'start vLLM with --enable-lora and the environment variable VLLM_ALLOW_RUNTIME_LORA_UPDATING=True';

const adapter = path.join(root, 'iter-0', 'adapter');
writeFolderFiles(adapter, {
  'adapter_config.json': JSON.stringify({ peft_type: 'LORA', base_model_name_or_path: HUB_ID, r: 16 }),
  'adapter_model.safetensors': emptySafetensors(),
});

const running: StandinProcess[] = [];
afterAll(async () => {
  for (const proc of running) await stopStandin(proc);
});

async function vllm(runtimeUpdating: boolean): Promise<string> {
  const { proc, base } = await startVllmStandin([HUB_ID, '--enable-lora'], runtimeUpdating ? { ...env, VLLM_ALLOW_RUNTIME_LORA_UPDATING: 'True' } : env);
  running.push(proc);
  return `${base}/v1`;
}

function loraServer(baseUrl: string) {
  return createModelServer(ServeSchema.parse({ kind: 'lora', base_url: baseUrl }), { runDir: '/nonexistent', log: () => {} });
}

describe('lora serving against the vllm stand-in', () => {
  it('loads a trained adapter into a correctly started server and serves it by name', async () => {
    const base = await vllm(true);
    const served = await loraServer(base).serve(adapter, 1);
    expect(served.baseUrl).toEqual([base]);
    const listed = (await (await fetch(`${base}/models`)).json()) as { data: { id: string; root: string; parent: string | null }[] };
    expect(listed.data).toContainEqual(expect.objectContaining({ id: served.model, root: adapter, parent: HUB_ID }));
  });

  it('a path that is no adapter on a correctly started server: vLLM\'s "No adapter found", without the start-up hint', async () => {
    const base = await vllm(true);
    const notAdapter = path.join(root, 'iter-0', 'model');
    const err = await loraServer(base).serve(notAdapter, 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServeError);
    expect((err as Error).message).toContain(`answered HTTP 404: {"error":{"message":"Loading lora`);
    expect((err as Error).message).toContain(`No adapter found for ${notAdapter}`);
    expect((err as Error).message).not.toContain(HINT);
  });

  it('a server started without runtime LoRA updating has no such route: the 404 carries the hint', async () => {
    const base = await vllm(false);
    const err = await loraServer(base).serve(adapter, 1).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ServeError);
    expect((err as Error).message).toContain('answered HTTP 404: {"detail":"Not Found"}');
    expect((err as Error).message).toContain(HINT);
  });
});
