import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isProcessAlive } from '../../src/finetune/process.js';
import { ServeSchema } from '../../src/recipe/schema.js';
import { CommandModelServer, listModels, portAnswers, SERVER_STATE_FILE, serveDir, type ServerState } from '../../src/serve/command.js';
import { ServeError } from '../../src/serve/errors.js';
import { createModelServer } from '../../src/serve/create-server.js';
import type { CommandServeConfig, ModelServer } from '../../src/serve/server.js';
import { transpileSources } from '../finetune/build-js.js';
import { freePort } from '../helpers/ports.js';

const FIXTURE = path.resolve(import.meta.dirname, 'fixtures/fake-model-server.mjs');
const started: ModelServer[] = [];
const pids: number[] = [];

afterEach(async () => {
  for (const server of started.splice(0)) await server.stop();
  for (const pid of pids.splice(0)) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

function commandConfig(port: number, extra = '', overrides: Partial<CommandServeConfig> = {}): CommandServeConfig {
  const parsed = ServeSchema.parse({
    kind: 'command',
    command: `${JSON.stringify(process.execPath)} ${JSON.stringify(FIXTURE)} --port {port} --served-name {served_name} --model {model} ${extra}`,
    port,
    ...overrides,
  });
  if (parsed.kind !== 'command') throw new Error('unreachable');
  return parsed;
}

function newServer(config: CommandServeConfig, runDir: string, logs: string[] = [], warnings: string[] = []): CommandModelServer {
  const server = createModelServer(config, { runDir, log: (m) => logs.push(m), warn: (m) => warnings.push(m), pollIntervalMs: 50, killGraceMs: 300 });
  started.push(server);
  return server as CommandModelServer;
}

function readState(runDir: string): ServerState | null {
  const file = path.join(serveDir(runDir), SERVER_STATE_FILE);
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ServerState) : null;
}

async function waitFor(what: string, condition: () => Promise<boolean> | boolean, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('command model server', () => {
  it('starts the command with quoted values, waits until /v1/models lists the served name, and returns its endpoint', async () => {
    const runDir = mkdtempSync(path.join(tmpdir(), 'rft-serve-'));
    const port = await freePort();
    const server = newServer(commandConfig(port, '--delay-ms 300'), runDir);
    const model = path.join(runDir, "iter-0/finetune/model dir's");
    const served = await server.serve(model, 1);
    expect(served).toEqual({ baseUrl: [`http://127.0.0.1:${port}/v1`], model: 'rft-it1' });
    const response = (await (await fetch(`http://127.0.0.1:${port}/v1/models`)).json()) as { data: { id: string; root: string }[] };
    expect(response.data).toEqual([{ id: 'rft-it1', object: 'model', root: model }]);
    const state = readState(runDir)!;
    expect(state).toMatchObject({ iteration: 1, port, served_name: 'rft-it1', model });
    expect(isProcessAlive(state.pid, state.start_ticks)).toBe(true);
    const log = readFileSync(path.join(runDir, 'serve', 'iter-1.log'), 'utf8');
    expect(log).toContain(`listening on ${port} as rft-it1`);
  });

  it('a server that exits before it is ready is an immediate failure with the log tail', async () => {
    const runDir = mkdtempSync(path.join(tmpdir(), 'rft-serve-'));
    const server = newServer(commandConfig(await freePort(), '--exit-code 7'), runDir);
    const failure = await server.serve('/models/m', 0).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ServeError);
    expect((failure as Error).message).toMatch(/exited before it was ready/);
    expect((failure as Error).message).toContain('fatal: CUDA error');
    expect(readState(runDir)).toBeNull();
  });

  it('stop() kills the process group, with SIGKILL when SIGTERM is ignored: the port is closed afterwards', async () => {
    const runDir = mkdtempSync(path.join(tmpdir(), 'rft-serve-'));
    const port = await freePort();
    const server = newServer(commandConfig(port, '--ignore-sigterm'), runDir);
    await server.serve('/models/m', 0);
    const { pid } = readState(runDir)!;
    expect(await portAnswers(port)).toBe(true);
    await server.stop();
    expect(await portAnswers(port)).toBe(false);
    expect(isProcessAlive(pid, null)).toBe(false);
    expect(readState(runDir)).toBeNull();
  });

  it('serving the next model stops the previous server', async () => {
    const runDir = mkdtempSync(path.join(tmpdir(), 'rft-serve-'));
    const port = await freePort();
    const server = newServer(commandConfig(port), runDir);
    await server.serve('/models/m1', 1);
    const first = readState(runDir)!.pid;
    const served = await server.serve('/models/m2', 2);
    expect(served.model).toBe('rft-it2');
    expect(isProcessAlive(first, null)).toBe(false);
    expect(await listModels(`http://127.0.0.1:${port}/v1`)).toEqual(['rft-it2']);
  });

  it('stops a server left behind by an earlier, killed rft process before starting its own', async () => {
    const runDir = mkdtempSync(path.join(tmpdir(), 'rft-serve-'));
    const port = await freePort();
    await newServer(commandConfig(port), runDir).serve('/models/m1', 1);
    const leftover = readState(runDir)!.pid;
    // A new rft process (a new server object) resumes the run.
    const warnings: string[] = [];
    const served = await newServer(commandConfig(port), runDir, [], warnings).serve('/models/m1', 1);
    expect(served.model).toBe('rft-it1');
    expect(warnings.some((m) => m.includes(`left by an earlier rft process (pid ${leftover}`))).toBe(true);
    expect(isProcessAlive(leftover, null)).toBe(false);
    expect(readState(runDir)!.pid).not.toBe(leftover);
  });

  it('fails after ready_timeout_s when the server never lists the served name, and stops it', async () => {
    const runDir = mkdtempSync(path.join(tmpdir(), 'rft-serve-'));
    const port = await freePort();
    const config = commandConfig(port, '', { ready_timeout_s: 2 });
    config.command = config.command.replace('--served-name {served_name}', '--served-name someone-else');
    const server = newServer(config, runDir);
    const failure = await server.serve('/models/m', 3).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ServeError);
    // (A machine under load may not have the server listening yet when the time is up: then there is no "it lists".)
    expect((failure as Error).message).toMatch(/did not list rft-it3 at .* within 2 s \(serve\.ready_timeout_s\)(; it lists: someone-else)?/);
    expect((failure as Error).message).not.toMatch(/it lists: .*rft-it3/);
    expect(await portAnswers(port)).toBe(false);
  });

  it('refuses a port something else already listens on', async () => {
    const runDir = mkdtempSync(path.join(tmpdir(), 'rft-serve-'));
    const busy: Server = createServer((_req, res) => res.end('{}'));
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const port = (busy.address() as AddressInfo).port;
      await expect(newServer(commandConfig(port), runDir).serve('/models/m', 0)).rejects.toThrow(/port \d+ \(serve\.port\) is already in use/);
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });

  it('a server started elsewhere is polled and used at serve.base_url, and one already answering there is refused', async () => {
    // 127.0.0.2 plays a GPU box: not this machine's 127.0.0.1, reached over HTTP only (as http://gpu1:{port}/v1 would be).
    const runDir = mkdtempSync(path.join(tmpdir(), 'rft-serve-'));
    const port = await freePort();
    const config = commandConfig(port, '--host 127.0.0.2 --delay-ms 200', { base_url: 'http://127.0.0.2:{port}/v1' });
    const server = newServer(config, runDir);
    const served = await server.serve('/shared/run/iter-0/finetune/model', 1);
    expect(served).toEqual({ baseUrl: [`http://127.0.0.2:${port}/v1`], model: 'rft-it1' });
    expect(readState(runDir)).toMatchObject({ base_url: `http://127.0.0.2:${port}/v1` });
    await server.stop();
    // A server that outlived its session still answers there: rft does not start a second one behind it.
    const leftover: Server = createServer((_req, res) => res.end(JSON.stringify({ data: [{ id: 'rft-it1' }] })));
    // stop() does not watch a remote host's port, so the stand-in's listener may hold 127.0.0.2:port
    // for a moment after its group is killed: bind once it is free (a listen error rejects, not throws).
    await waitFor('127.0.0.2:port to be free', () =>
      new Promise<boolean>((resolve) => {
        leftover.once('error', () => resolve(false));
        leftover.listen(port, '127.0.0.2', () => resolve(true));
      }),
    );
    try {
      const failure = await newServer(config, runDir).serve('/shared/run/iter-1/finetune/model', 2).catch((err: unknown) => err);
      expect(failure).toBeInstanceOf(ServeError);
      expect((failure as Error).message).toContain(`http://127.0.0.2:${port}/v1 already answers (it lists: rft-it1) before the serve command started`);
    } finally {
      await new Promise((resolve) => leftover.close(resolve));
    }
  });

  it('an unknown placeholder in the command is an error naming it', async () => {
    const runDir = mkdtempSync(path.join(tmpdir(), 'rft-serve-'));
    const config = commandConfig(await freePort());
    config.command = 'vllm serve {model} --gpu {gpus}';
    await expect(newServer(config, runDir).serve('/m', 0)).rejects.toThrow(/serve\.command: unknown placeholder \{gpus\}/);
  });

  it('stops the server when the rft process exits', async () => {
    const js = transpileSources();
    const runDir = mkdtempSync(path.join(tmpdir(), 'rft-serve-'));
    const port = await freePort();
    const script = path.join(js, 'serve-then-exit.mjs');
    writeFileSync(
      script,
      `import { createModelServer } from ${JSON.stringify(path.join(js, 'src/serve/create-server.js'))};
       const [config, runDir] = JSON.parse(process.argv[2]);
       const server = createModelServer(config, { runDir, log: () => {}, pollIntervalMs: 50 });
       await server.serve('/models/m', 0);
       process.exit(0);`,
    );
    const child = spawn(process.execPath, [script, JSON.stringify([commandConfig(port), runDir])], { stdio: 'ignore' });
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
    const state = readState(runDir)!;
    pids.push(state.pid);
    await waitFor('the orphaned server to stop', async () => !(await portAnswers(port)) && !isProcessAlive(state.pid, null));
  });
});
