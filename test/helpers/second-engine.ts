import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import { dockerClient } from '../../src/sandbox/engine.js';
import { buildTaskImages } from '../../src/tasks/build-images.js';
import { MINIGYM_DIR, minigymInstances } from './minigym.js';

export interface SecondEngine {
  url: string;
  docker: Docker;
  stop(): Promise<void>;
}

/**
 * A second Docker engine for a test: its own socket, data-root, exec-root and pid file, no bridge
 * and no iptables (like the main one), with rft-base loaded from the main engine and the bundled
 * task images built on it.
 */
export async function startSecondEngine(main: Docker): Promise<SecondEngine> {
  // Short paths: a unix socket path must stay under ~100 bytes, and containerd's under exec-root too.
  const root = mkdtempSync('/tmp/rft-e2-');
  const dirs = { data: path.join(root, 'data'), exec: path.join(root, 'x') };
  mkdirSync(dirs.data);
  mkdirSync(dirs.exec);
  const socket = path.join(root, 'd.sock');
  const log = openSync(path.join(root, 'dockerd.log'), 'a');
  const daemon: ChildProcess = spawn(
    'dockerd',
    ['--bridge=none', '--iptables=false', '--ip-masq=false', '-H', `unix://${socket}`, '--data-root', dirs.data, '--exec-root', dirs.exec, '--pidfile', path.join(root, 'd.pid')],
    { stdio: ['ignore', log, log] },
  );
  const url = `unix://${socket}`;
  const docker = dockerClient(url);
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      await docker.ping();
      break;
    } catch {
      if (daemon.exitCode !== null || Date.now() > deadline) throw new Error(`the second dockerd did not start (see ${root}/dockerd.log)`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  const stop = async () => {
    daemon.kill('SIGTERM');
    await new Promise((resolve) => (daemon.exitCode !== null ? resolve(null) : daemon.once('exit', resolve)));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    const image = await main.getImage('rft-base:bookworm').get();
    await new Promise<void>((resolve, reject) => {
      docker.loadImage(image, {}, (err, stream) => {
        if (err || !stream) return reject(err ?? new Error('no load stream'));
        docker.modem.followProgress(stream, (e: Error | null) => (e ? reject(e) : resolve()));
      });
    });
    await buildTaskImages({ docker, instances: minigymInstances(), reposDir: path.join(MINIGYM_DIR, 'repos'), baseImage: 'rft-base:bookworm', imageTemplate: 'swebench' });
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, docker, stop };
}
