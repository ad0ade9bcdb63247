import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { filesOfTar, tarOf, type FileEntry } from './archive.js';
import { CappedOutput } from './output-buffer.js';

/** Labels every rft container carries, so a run's containers can be found and reaped. */
export const LABEL = {
  run: 'rft.run',
  iteration: 'rft.iteration',
  instance: 'rft.instance',
  purpose: 'rft.purpose',
} as const;

export interface ContainerSpec {
  image: string;
  labels: Record<string, string>;
  memoryBytes: number;
  cpus: number;
  pids: number;
  workdir?: string;
  env?: Record<string, string>;
}

export interface ExecOptions {
  /** Hard limit: the command is killed inside the container, and the container too if that fails. */
  timeoutMs: number;
  maxOutputBytes?: number;
  workdir?: string;
  env?: Record<string, string>;
}

export interface ExecResult {
  /** null when the command was killed for its timeout. */
  exitCode: number | null;
  /** stdout and stderr interleaved, capped (head and tail kept). */
  output: string;
  outputBytes: number;
  truncated: boolean;
  timedOut: boolean;
  durationMs: number;
}

export class ImageMissingError extends Error {
  constructor(readonly image: string) {
    super(`image ${image} is not on the Docker engine; build it (npx rft tasks build-images <tasks.jsonl>) or pull it`);
    this.name = 'ImageMissingError';
  }
}

/** Grace after the in-container timeout before the whole container is killed from outside. */
const KILL_GRACE_MS = 5_000;

/**
 * One container with no network, resource limits and rft labels, kept alive by `sleep` so that
 * commands can be run in it one after another.
 */
export class Sandbox {
  private dead = false;

  private constructor(
    readonly docker: Docker,
    readonly container: Docker.Container,
    readonly spec: ContainerSpec,
  ) {}

  static async start(docker: Docker, spec: ContainerSpec): Promise<Sandbox> {
    let container: Docker.Container;
    try {
      container = await docker.createContainer({
        Image: spec.image,
        Cmd: ['sleep', 'infinity'],
        Labels: spec.labels,
        WorkingDir: spec.workdir ?? '/testbed',
        Env: Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`),
        NetworkDisabled: true,
        HostConfig: {
          NetworkMode: 'none',
          Memory: spec.memoryBytes,
          MemorySwap: spec.memoryBytes, // no swap beyond the memory limit
          NanoCpus: Math.round(spec.cpus * 1e9),
          PidsLimit: spec.pids,
          CapDrop: ['NET_RAW', 'NET_ADMIN', 'SYS_ADMIN', 'SYS_PTRACE', 'MKNOD'],
          SecurityOpt: ['no-new-privileges'],
        },
      });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) throw new ImageMissingError(spec.image);
      throw err;
    }
    const sandbox = new Sandbox(docker, container, spec);
    try {
      await container.start();
    } catch (err) {
      await sandbox.remove();
      throw err;
    }
    return sandbox;
  }

  get id(): string {
    return this.container.id;
  }

  async exec(cmd: readonly string[], options: ExecOptions): Promise<ExecResult> {
    if (this.dead) throw new Error('the container was killed after an earlier timeout');
    const started = Date.now();
    const seconds = Math.max(1, Math.ceil(options.timeoutMs / 1000));
    // `timeout` kills the command's whole process group inside the container.
    const exec = await this.container.exec({
      Cmd: ['timeout', '-s', 'KILL', String(seconds), ...cmd],
      AttachStdout: true,
      AttachStderr: true,
      WorkingDir: options.workdir,
      Env: Object.entries(options.env ?? {}).map(([k, v]) => `${k}=${v}`),
    });
    const output = new CappedOutput(options.maxOutputBytes ?? 1024 * 1024);
    const stream = await exec.start({ hijack: true, stdin: false });
    const sink = new PassThrough();
    sink.on('data', (chunk: Buffer) => output.push(chunk));
    this.docker.modem.demuxStream(stream, sink, sink);

    let backstopFired = false;
    const finished = new Promise<void>((resolve) => {
      stream.on('end', resolve);
      stream.on('close', resolve);
      stream.on('error', () => resolve());
    });
    const backstop = setTimeout(() => {
      backstopFired = true;
      this.dead = true;
      this.container.kill().catch(() => {});
      stream.destroy();
    }, seconds * 1000 + KILL_GRACE_MS);
    try {
      await finished;
    } finally {
      clearTimeout(backstop);
    }
    const durationMs = Date.now() - started;
    const info = backstopFired ? null : await exec.inspect().catch(() => null);
    const rawExit = info?.ExitCode ?? null;
    // 137 = killed by SIGKILL; it is our timeout when the time is up (an OOM kill is earlier).
    const timedOut = backstopFired || (rawExit === 137 && durationMs >= seconds * 1000 - 250);
    return {
      exitCode: timedOut ? null : rawExit,
      output: output.text(),
      outputBytes: output.totalBytes,
      truncated: output.truncated,
      timedOut,
      durationMs,
    };
  }

  /** Copies files into a folder of the container through a tar archive. */
  async putFiles(destDir: string, files: readonly FileEntry[]): Promise<void> {
    await this.container.putArchive(await tarOf(files), { path: destDir });
  }

  /** Reads one file out of the container through the archive API; null when it does not exist. */
  async readFile(filePath: string, maxBytes = 16 * 1024 * 1024): Promise<Buffer | null> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.container.getArchive({ path: filePath });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return null;
      throw err;
    }
    const files = await filesOfTar(stream, maxBytes);
    const base = filePath.split('/').pop()!;
    return files.get(base) ?? null;
  }

  async remove(): Promise<void> {
    try {
      await this.container.remove({ force: true, v: true });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }
}

/** Removes every container (running or not) that carries all the given labels. */
export async function reapContainers(docker: Docker, labels: Record<string, string>): Promise<number> {
  const filters = { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) };
  const found = await docker.listContainers({ all: true, filters: JSON.stringify(filters) });
  await Promise.all(found.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {})));
  return found.length;
}

export type { FileEntry };
