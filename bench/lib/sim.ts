import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface SimChild {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** Starts bench/lib/sim-child in its own process (compiled beside this file) and waits for its URL. */
export async function startSimChild(tasksFile: string, latencyMs: number): Promise<SimChild> {
  const script = fileURLToPath(new URL('./sim-child.js', import.meta.url));
  const child: ChildProcess = spawn(process.execPath, [...profileArgs(), script, tasksFile, String(latencyMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the simulated policy server exited (code ${code}) before it listened`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve((JSON.parse(out.slice(0, nl)) as { url: string }).url);
    });
  });
  child.removeAllListeners('exit');
  return {
    url,
    pid: child.pid!,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.stdin!.end();
        setTimeout(() => child.kill('SIGTERM'), 2000).unref();
      }),
  };
}

/** BENCH_CPU_PROF_DIR=dir: child processes write V8 CPU profiles there too (node --cpu-prof). */
export function profileArgs(): string[] {
  const dir = process.env.BENCH_CPU_PROF_DIR;
  return dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : [];
}
