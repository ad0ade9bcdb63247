import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort } from './ports.js';

/** The folder of the CLI stand-ins' shims: put it first on PATH. */
export const STANDIN_BIN = path.resolve(import.meta.dirname, '../standins/bin');

export interface StandinProcess {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or the signal's name) once the process has exited. */
  exited: Promise<number | string>;
}

/** Runs a stand-in by its command name with test/standins/bin first on PATH. */
export function runStandin(command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): StandinProcess {
  const child = spawn(command, [...args], {
    env: { ...process.env, ...env, PATH: `${STANDIN_BIN}${path.delimiter}${process.env.PATH ?? ''}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Polls GET <base>/health until 200, or fails with the process's stderr if it exits first. */
export async function waitHealthy(base: string, proc: StandinProcess): Promise<void> {
  let done: number | string | null = null;
  void proc.exited.then((code) => (done = code));
  for (;;) {
    if (done !== null) throw new Error(`the stand-in exited (${done}) before it was healthy:\n${proc.stderr()}`);
    try {
      const res = await fetch(`${base}/health`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Starts `vllm serve …` on a free port of 127.0.0.1 and waits for /health; returns the base URL (no /v1). */
export async function startVllmStandin(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ proc: StandinProcess; base: string; port: number }> {
  const port = await freePort();
  const proc = runStandin('vllm', ['serve', ...args, '--host', '127.0.0.1', '--port', String(port)], env);
  const base = `http://127.0.0.1:${port}`;
  await waitHealthy(base, proc);
  return { proc, base, port };
}

/** SIGTERM and wait for the exit. */
export async function stopStandin(proc: StandinProcess): Promise<number | string> {
  if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGTERM');
  return proc.exited;
}
