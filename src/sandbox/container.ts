import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { extractFileTo, filesOfTar, tarOf, type FileEntry } from './archive.js';
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
  /**
   * Bound on what the container may write to its own filesystem (its writable layer), in bytes.
   * Engines whose storage supports a per-container size (`StorageOpt.size`: overlay2 on xfs with
   * pquota, devicemapper, btrfs, zfs) enforce it in the kernel: writes fail with ENOSPC. Elsewhere
   * (overlay2 on ext4, the common case) a watchdog reads the layer's size from the engine every
   * `diskPollMs` and kills the container once it is over: every exec then throws
   * DiskLimitExceededError. Either way no file may grow past the bound (RLIMIT_FSIZE, so one
   * big file is stopped by the kernel at once: EFBIG); what many files can add between two looks
   * is the write rate times the poll interval.
   */
  diskBytes?: number;
  /** How often the disk watchdog looks (default 1000 ms). */
  diskPollMs?: number;
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

/**
 * The container itself stopped while a command ran in it — killed from outside, or the engine
 * went away or restarted. The harness's failure, never the command's: verification records it
 * as an infrastructure `error` (retried on resume), not as a failed test run.
 */
export class ContainerGoneError extends Error {
  constructor(
    readonly containerId: string,
    readonly command: readonly string[],
  ) {
    super(`container ${containerId.slice(0, 12)} stopped while running \`${command.join(' ').slice(0, 120)}\` (killed from outside, or the Docker engine went away or restarted)`);
    this.name = 'ContainerGoneError';
  }
}

/** The container wrote more to its filesystem than ContainerSpec.diskBytes allows, and was killed for it. */
export class DiskLimitExceededError extends Error {
  constructor(
    readonly containerId: string,
    readonly usedBytes: number,
    readonly limitBytes: number,
  ) {
    super(`container ${containerId.slice(0, 12)} wrote ${usedBytes} bytes to its filesystem, over the limit of ${limitBytes}, and was killed`);
    this.name = 'DiskLimitExceededError';
  }
}

/** Engines known to refuse `StorageOpt.size` (asked once per client). */
const noStorageOpt = new WeakSet<Docker>();

/** Grace after the in-container timeout before the whole container is killed from outside. */
const KILL_GRACE_MS = 5_000;
/** How long a container killed from outside may still look running (measured: 50-150 ms; room for a loaded engine). */
const CONTAINER_STATE_LAG_MS = 2_000;

/**
 * One container with no network, resource limits and rft labels, kept alive by `sleep` so that
 * commands can be run in it one after another.
 */
export class Sandbox {
  private dead = false;
  private removed = false;
  private diskTimer: NodeJS.Timeout | null = null;
  /** Set when the disk watchdog killed the container. */
  diskExceeded: { usedBytes: number; limitBytes: number } | null = null;

  private constructor(
    readonly docker: Docker,
    readonly container: Docker.Container,
    readonly spec: ContainerSpec,
  ) {}

  static async start(docker: Docker, spec: ContainerSpec): Promise<Sandbox> {
    let container: Docker.Container;
    const disk = spec.diskBytes !== undefined ? Math.max(1, Math.floor(spec.diskBytes)) : null;
    let storageOpt = disk !== null && !noStorageOpt.has(docker);
    const options = (withStorageOpt: boolean): Docker.ContainerCreateOptions => ({
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
        ...(disk !== null ? { Ulimits: [{ Name: 'fsize', Soft: disk, Hard: disk }] } : {}),
        ...(withStorageOpt ? { StorageOpt: { size: String(disk) } } : {}),
      },
    });
    try {
      try {
        container = await docker.createContainer(options(storageOpt));
      } catch (err) {
        if (!storageOpt || !/storage-?opt/i.test((err as Error).message ?? '')) throw err;
        // This engine's storage driver cannot bound a container's size: the watchdog does.
        noStorageOpt.add(docker);
        storageOpt = false;
        container = await docker.createContainer(options(false));
      }
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
    if (disk !== null && !storageOpt) sandbox.watchDisk(disk, spec.diskPollMs ?? 1000);
    return sandbox;
  }

  /** Looks at the size of the container's writable layer every `everyMs`; kills the container once it is over `limit`. */
  private watchDisk(limit: number, everyMs: number): void {
    const look = async (): Promise<void> => {
      this.diskTimer = null;
      let used: number | null = null;
      try {
        // `size` asks the engine to measure the writable layer (dockerode passes it as a query parameter).
        const info = (await this.container.inspect({ size: true } as Docker.ContainerInspectOptions)) as { SizeRw?: number };
        used = info.SizeRw ?? null;
      } catch {
        // gone, or the engine is busy: look again (or stop, once removed)
      }
      if (this.removed) return;
      if (used !== null && used > limit) {
        this.diskExceeded = { usedBytes: used, limitBytes: limit };
        this.dead = true;
        await this.container.kill().catch(() => {});
        return;
      }
      this.diskTimer = setTimeout(() => void look(), everyMs);
      this.diskTimer.unref();
    };
    this.diskTimer = setTimeout(() => void look(), everyMs);
    this.diskTimer.unref();
  }

  private diskError(): DiskLimitExceededError | null {
    return this.diskExceeded && new DiskLimitExceededError(this.id, this.diskExceeded.usedBytes, this.diskExceeded.limitBytes);
  }

  get id(): string {
    return this.container.id;
  }

  async exec(cmd: readonly string[], options: ExecOptions): Promise<ExecResult> {
    if (this.dead) throw this.diskError() ?? new Error('the container was killed after an earlier timeout');
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
    const overDisk = this.diskError();
    if (overDisk) throw overDisk;
    const info = backstopFired ? null : await exec.inspect().catch(() => null);
    const rawExit = info?.ExitCode ?? null;
    // No exit code, or death by a signal: the command may have lost its container rather than failed.
    if (!backstopFired && (rawExit === null || rawExit > 128) && (await this.stopsWithin(CONTAINER_STATE_LAG_MS))) {
      this.dead = true;
      throw new ContainerGoneError(this.id, cmd);
    }
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

  /** Is the container still running? false too when the engine cannot say (it is down). */
  async isRunning(): Promise<boolean> {
    try {
      return (await this.container.inspect()).State.Running === true;
    } catch {
      return false;
    }
  }

  /**
   * Does the container stop within `ms`? The engine marks a container killed from outside as
   * stopped some tens of milliseconds after the commands in it have died, so one look is not enough.
   */
  private async stopsWithin(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      if (!(await this.isRunning())) return true;
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Copies files into a folder of the container through a tar archive. */
  async putFiles(destDir: string, files: readonly FileEntry[]): Promise<void> {
    await this.container.putArchive(await tarOf(files), { path: destDir });
  }

  /** Reads one file out of the container through the archive API; null when it does not exist. */
  async readFile(filePath: string, maxBytes = 16 * 1024 * 1024): Promise<Buffer | null> {
    const stream = await this.archiveOf(filePath);
    if (!stream) return null;
    const files = await filesOfTar(stream, maxBytes);
    return files.get(baseName(filePath)) ?? null;
  }

  /** Streams one file out of the container into `dest` (atomically, never held whole); false when it does not exist. */
  async copyFileOut(filePath: string, dest: string, maxBytes: number): Promise<boolean> {
    const stream = await this.archiveOf(filePath);
    return stream ? extractFileTo(stream, baseName(filePath), dest, maxBytes) : false;
  }

  /** The engine's tar of one path, or null when the path does not exist. */
  private async archiveOf(filePath: string): Promise<NodeJS.ReadableStream | null> {
    try {
      return await this.container.getArchive({ path: filePath });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return null;
      throw err;
    }
  }

  async remove(): Promise<void> {
    this.removed = true;
    if (this.diskTimer) clearTimeout(this.diskTimer);
    this.diskTimer = null;
    try {
      await this.container.remove({ force: true, v: true });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
    }
  }
}

function baseName(filePath: string): string {
  return filePath.split('/').pop()!;
}

/** Removes every container (running or not) that carries all the given labels. */
export async function reapContainers(docker: Docker, labels: Record<string, string>): Promise<number> {
  const filters = { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) };
  const found = await docker.listContainers({ all: true, filters: JSON.stringify(filters) });
  await Promise.all(found.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {})));
  return found.length;
}

export type { FileEntry };
