import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';

/*
 * A throwaway registry for tests: Debian's docker-registry on 127.0.0.1 with its own storage
 * (scripts/setup-registry.sh installs it). Nothing but 127.0.0.1 is ever contacted.
 */

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export interface LocalRegistry {
  /** host:port, to prefix image names with. */
  host: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', resolve).once('error', reject));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

export async function startLocalRegistry(dir: string): Promise<LocalRegistry> {
  if (!existsSync(REGISTRY_BIN)) throw new Error(`${REGISTRY_BIN} is missing: run \`bash scripts/setup-registry.sh\` (installs Debian's docker-registry)`);
  const port = await freePort();
  const config = path.join(dir, 'registry.yml');
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(dir, 'storage')}\n` +
      `http:\n  addr: 127.0.0.1:${port}\n  secret: rft-test-${process.pid}\n`,
  );
  const logFile = path.join(dir, 'registry.log');
  const fd = openSync(logFile, 'a');
  const child = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  // Even if the worker dies without its afterAll, the registry does not outlive it.
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', kill);
  const host = `127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    try {
      if ((await fetch(`http://${host}/v2/`)).status === 200) return { host, stop: () => stop(child) };
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  kill();
  throw new Error(`docker-registry did not answer on ${host}:\n${(await readFile(logFile, 'utf8').catch(() => '')).slice(-2000)}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
