import { appendFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { isProcessAlive, killGroup, signalGroup, sleep, spawnDetached, tailFile, type DetachedProcess } from '../finetune/process.js';
import { renderTemplate, shellQuote } from '../finetune/template.js';
import { writeJsonAtomic } from '../store/atomic.js';
import { ServeError } from './errors.js';
import type { CommandServeConfig, ModelServer, ModelServerOptions, ServedModel } from './server.js';

/**
 * `command` serving: the recipe's server command (e.g. `vllm serve {model} --served-model-name
 * {served_name} --port {port}`), rendered with shell-quoted values and started as a detached
 * process group, output appended to <runDir>/serve/iter-<k>.log. Ready = GET
 * <serve.base_url>/models lists {served_name} (by default http://127.0.0.1:{port}/v1; another host
 * when the command starts the server there, e.g. through ssh). The server stays up while the iteration
 * samples and evaluates; serving the next model, stop(), or the rft process exiting stops it.
 *
 * <runDir>/serve/server.json names the running server (pid + start time), so that a server left
 * behind by an rft process that was killed is found and stopped by the next serve().
 */

export const SERVER_STATE_FILE = 'server.json';

export const ServerStateSchema = z.object({
  pid: z.number().int(),
  start_ticks: z.string().nullable(),
  iteration: z.number().int(),
  port: z.number().int(),
  /** Where the server answers (older records: http://127.0.0.1:<port>/v1). */
  base_url: z.string().optional(),
  served_name: z.string(),
  model: z.string(),
  cmdline: z.string(),
  log: z.string(),
  started_at: z.string(),
});
export type ServerState = z.infer<typeof ServerStateSchema>;

export function serveDir(runDir: string): string {
  return path.join(runDir, 'serve');
}

export function serveLog(runDir: string, iteration: number): string {
  return path.join(serveDir(runDir), `iter-${iteration}.log`);
}

interface Running {
  proc: DetachedProcess;
  state: ServerState;
  onExit: () => void;
}

export class CommandModelServer implements ModelServer {
  readonly kind = 'command' as const;
  private current: Running | null = null;
  private readonly warn: (message: string) => void;
  private readonly pollMs: number;

  constructor(
    private readonly config: CommandServeConfig,
    private readonly options: ModelServerOptions,
  ) {
    this.warn = options.warn ?? ((message) => options.log(`warning: ${message}`));
    this.pollMs = options.pollIntervalMs ?? 1000;
  }

  /** The server running now, if this object started one. */
  get running(): ServerState | null {
    return this.current ? { ...this.current.state } : null;
  }

  async serve(model: string, iteration: number): Promise<ServedModel> {
    const { config, options } = this;
    const servedName = renderTemplate(config.served_name, { iteration }, { what: 'serve.served_name' });
    const cmdline = renderTemplate(
      config.command,
      { model, served_name: servedName, port: config.port, iteration, run_dir: options.runDir },
      { quote: shellQuote, what: 'serve.command' },
    );
    const baseUrl = renderTemplate(config.base_url, { port: config.port, iteration }, { what: 'serve.base_url' }).replace(/\/+$/, '');
    await this.stopCurrent();
    await this.stopLeftover();
    await assertNothingServes(baseUrl);
    mkdirSync(serveDir(options.runDir), { recursive: true });
    const log = serveLog(options.runDir, iteration);
    const startedAt = new Date().toISOString();
    appendFileSync(log, `\n=== rft: serving ${model} as ${servedName} (iteration ${iteration}), ${startedAt} ===\n$ ${cmdline}\n`);
    const proc = await spawnDetached(cmdline, { logFile: log, cwd: path.resolve(options.cwd ?? process.cwd()) });
    const state: ServerState = {
      pid: proc.pid,
      start_ticks: proc.startTicks,
      iteration,
      port: config.port,
      base_url: baseUrl,
      served_name: servedName,
      model,
      cmdline,
      log,
      started_at: startedAt,
    };
    const onExit = (): void => {
      signalGroup(proc.pid, 'SIGTERM');
    };
    process.on('exit', onExit);
    this.current = { proc, state, onExit };
    writeJsonAtomic(path.join(serveDir(options.runDir), SERVER_STATE_FILE), state);
    options.log(`started the model server for iteration ${iteration} (pid ${proc.pid}); waiting for ${baseUrl}/models to list ${servedName}; log: ${log}`);
    try {
      await this.waitReady(baseUrl, servedName);
    } catch (err) {
      await this.stop();
      throw err;
    }
    options.log(`model server ready: ${servedName} at ${baseUrl}`);
    return { baseUrl: [baseUrl], model: servedName };
  }

  async stop(): Promise<void> {
    await this.stopCurrent();
  }

  /** Stops what this object started; true when there was something to stop. */
  private async stopCurrent(): Promise<boolean> {
    const running = this.current;
    if (!running) return false;
    this.current = null;
    process.off('exit', running.onExit);
    const gone = await killGroup(running.proc.pid, { graceMs: this.options.killGraceMs ?? 15_000 });
    if (!gone) this.warn(`some processes of the model server group ${running.proc.pid} survived SIGKILL`);
    await this.waitPortClosed(running.state);
    this.removeState(running.proc.pid);
    this.options.log(`stopped the model server of iteration ${running.state.iteration} (pid ${running.proc.pid})`);
    return true;
  }

  private async waitReady(baseUrl: string, servedName: string): Promise<void> {
    const running = this.current!;
    const { pid, startTicks, child } = running.proc;
    let exitedAs: string | null = null;
    child.once('exit', (code, signal) => {
      exitedAs = signal ? `signal ${signal}` : `code ${code}`;
    });
    const timeoutS = this.config.ready_timeout_s;
    const deadline = Date.now() + timeoutS * 1000;
    let lastListed: string[] | null = null;
    for (;;) {
      if (exitedAs !== null || !isProcessAlive(pid, startTicks)) {
        throw new ServeError(
          `the model server exited before it was ready${exitedAs ? ` (${exitedAs})` : ''}${logTail(running.state.log)}`,
        );
      }
      lastListed = await listModels(baseUrl);
      if (lastListed?.includes(servedName)) return;
      if (Date.now() >= deadline) {
        throw new ServeError(
          `the model server did not list ${servedName} at ${baseUrl}/models within ${timeoutS} s (serve.ready_timeout_s)` +
            `${lastListed ? `; it lists: ${lastListed.join(', ') || 'nothing'}` : ''}${logTail(running.state.log)}`,
        );
      }
      await sleep(this.pollMs);
    }
  }

  /** Stops a server an earlier (killed) rft process left running for this run. */
  private async stopLeftover(): Promise<boolean> {
    const file = path.join(serveDir(this.options.runDir), SERVER_STATE_FILE);
    let state: ServerState;
    try {
      state = ServerStateSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
    } catch {
      rmSync(file, { force: true });
      return false;
    }
    const alive = isProcessAlive(state.pid, state.start_ticks);
    if (alive) {
      this.warn(`stopping the model server left by an earlier rft process (pid ${state.pid}, ${state.served_name}, iteration ${state.iteration})`);
      await killGroup(state.pid, { graceMs: this.options.killGraceMs ?? 15_000 });
      await this.waitPortClosed(state);
    }
    rmSync(file, { force: true });
    return alive;
  }

  /** A killed server's listener can outlive its group leader for a moment: wait until the port is free. */
  private async waitPortClosed(state: ServerState): Promise<void> {
    // A server on another host is not watched through a local port.
    if (state.base_url !== undefined && !isLoopback(new URL(state.base_url).hostname)) return;
    const { port } = state;
    if (!(await portClosesWithin(port, this.options.killGraceMs ?? 15_000))) this.warn(`port ${port} still answers after the model server was stopped`);
  }

  private removeState(pid: number): void {
    const file = path.join(serveDir(this.options.runDir), SERVER_STATE_FILE);
    try {
      const state = ServerStateSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
      if (state.pid === pid) rmSync(file, { force: true });
    } catch {
      // gone already
    }
  }
}

/**
 * Before a server command starts, nothing may answer where it will: a local port in use (often the
 * M_0 endpoint itself, on the same port) or, for a server started on another host, an endpoint
 * that already answers (a server of an earlier iteration that outlived its ssh session). Either
 * would make rft send the next iteration's requests to the wrong model.
 */
async function assertNothingServes(baseUrl: string): Promise<void> {
  const url = new URL(baseUrl);
  if (isLoopback(url.hostname)) {
    const urlPort = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
    if (await portAnswers(urlPort)) {
      throw new ServeError(
        `port ${urlPort} (serve.port) is already in use on 127.0.0.1, where ${baseUrl} (serve.base_url) would answer: stop what listens there, or choose another serve.port ` +
          '(the M_0 endpoint of policy.base_url must listen on another port than the servers rft starts)',
      );
    }
    return;
  }
  const listed = await listModels(baseUrl);
  if (listed !== null) {
    throw new ServeError(
      `${baseUrl} already answers (it lists: ${listed.join(', ') || 'nothing'}) before the serve command started: ` +
        'stop the server running there (a server of an earlier iteration may have outlived its ssh session: start it with `ssh -tt …` so it ends with the session), or choose another serve.port',
    );
  }
}

/** This machine's own port (checked by connecting); any other address is watched over HTTP only. */
function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || hostname === '::1' || hostname === '127.0.0.1';
}

/** Model ids GET <baseUrl>/models lists, or null when the server does not answer (yet). */
export async function listModels(baseUrl: string, timeoutMs = 5_000): Promise<string[] | null> {
  try {
    const response = await fetch(`${baseUrl}/models`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!response.ok) return null;
    const body = (await response.json()) as { data?: { id?: unknown }[] };
    return (body.data ?? []).map((card) => String(card.id));
  } catch {
    return null;
  }
}

async function portClosesWithin(port: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!(await portAnswers(port))) return true;
    await sleep(50);
  }
  return false;
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function portAnswers(port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (open: boolean): void => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

function logTail(log: string): string {
  const text = tailFile(log, 20);
  return text ? `\n--- last lines of ${log} ---\n${text}` : ` (${log} is empty)`;
}
