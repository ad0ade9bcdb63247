import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';

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

export interface LocalRegistryOptions {
  /**
   * The folder for its config, log and storage (`<dir>/storage`: registries started on one folder
   * serve the same images). Without one, the registry makes a temporary folder of its own and
   * removes it on stop.
   */
  dir?: string;
  /** Names its config and log files (`<name>.yml`, `<name>.log`) when several registries share a folder. */
  name?: string;
  /** Every request needs a token from this realm (the registry's "silly" auth), as an authenticated registry does. */
  auth?: { realm: string };
}

export async function startLocalRegistry(options: LocalRegistryOptions = {}): Promise<LocalRegistry> {
  if (!existsSync(REGISTRY_BIN)) throw new Error(`${REGISTRY_BIN} is missing: run \`bash scripts/setup-registry.sh\` (installs Debian's docker-registry)`);
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(path.join(tmpdir(), 'rft-registry-'));
  const removeOwnDir = async (): Promise<void> => {
    if (ownDir) await rm(dir, { recursive: true, force: true });
  };
  const name = options.name ?? 'registry';
  const port = await freePort();
  const config = path.join(dir, `${name}.yml`);
  const authBlock = options.auth ? `auth:\n  silly:\n    realm: ${options.auth.realm}\n    service: rft-test\n` : '';
  await writeFile(
    config,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${path.join(dir, 'storage')}\n` +
      `${authBlock}http:\n  addr: 127.0.0.1:${port}\n  secret: rft-test-${process.pid}\n`,
  );
  const logFile = path.join(dir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  // Even if the worker dies without its afterAll, the registry does not outlive it.
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', kill);
  const host = `127.0.0.1:${port}`;
  // Up means /v2/ answers: 200 when open, 401 (a token is wanted) behind auth.
  const upStatus = options.auth ? 401 : 200;
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    try {
      if ((await fetch(`http://${host}/v2/`)).status === upStatus) {
        return {
          host,
          stop: async () => {
            await stop(child);
            await removeOwnDir();
          },
        };
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  kill();
  const log = await readFile(logFile, 'utf8').catch(() => '');
  await removeOwnDir();
  const which = options.name === undefined ? '' : ` (${options.name})`;
  throw new Error(`docker-registry${which} did not answer on ${host}:\n${log.slice(-2000)}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
