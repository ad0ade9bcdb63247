import type Docker from 'dockerode';
import { tarOf, type FileEntry } from './archive.js';
import { ImageMissingError } from './container.js';

export async function imageExists(docker: Docker, name: string): Promise<boolean> {
  try {
    await docker.getImage(name).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

interface BuildEvent {
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/**
 * Builds an image from an in-memory context (a Dockerfile among the files). The build gets no
 * network: everything an image needs is in its context or its base.
 */
export async function buildImage(
  docker: Docker,
  options: { tag: string; context: readonly FileEntry[]; labels?: Record<string, string>; onLine?: (line: string) => void },
): Promise<void> {
  const stream = await docker.buildImage(Buffer.from(await tarOf(options.context)) as unknown as NodeJS.ReadableStream, {
    t: options.tag,
    networkmode: 'none',
    rm: true,
    forcerm: true,
    labels: options.labels ?? {},
  });
  const log: string[] = [];
  const events = await new Promise<BuildEvent[]>((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null, result: BuildEvent[]) => (err ? reject(err) : resolve(result)),
      (event: BuildEvent) => {
        for (const line of (event.stream ?? '').split('\n')) {
          if (line.trim() === '') continue;
          log.push(line);
          options.onLine?.(line);
        }
      },
    );
  });
  const failure = events.find((e) => e.error || e.errorDetail);
  if (failure) {
    const tail = log.slice(-15).join('\n');
    throw new Error(`building ${options.tag} failed: ${failure.errorDetail?.message ?? failure.error}\n${tail}`);
  }
}

/** Gives an existing image one more name (`repo:tag`). */
export async function tagImage(docker: Docker, source: string, target: string): Promise<void> {
  const { repo, tag } = splitImageName(target);
  await docker.getImage(source).tag({ repo, tag });
}

/** `registry:5000/a/b:tag` → repo `registry:5000/a/b`, tag `tag` (default latest). */
export function splitImageName(name: string): { repo: string; tag: string } {
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > slash) return { repo: name.slice(0, colon), tag: name.slice(colon + 1) };
  return { repo: name, tag: 'latest' };
}

/**
 * Pulling, ensuring and removing instance images. SWE-Gym images are 2–3 GB each and never all
 * fit on one disk together, so they are pulled on demand (`ensureImage`) and, under
 * `sandbox.image_policy: remove_after_use`, removed once their samples are verified
 * (`removeImage`).
 */

/** Registry credentials, as the Docker engine takes them (X-Registry-Auth). */
export type RegistryAuth = Docker.AuthConfig;

/** A summary of a pull in progress: what a person wants to see, not the engine's event stream. */
export interface PullProgress {
  image: string;
  /** Layers finished (pulled and extracted, or already on the engine). */
  layersDone: number;
  /** Layers the engine has announced so far (known after the manifest is read). */
  layersTotal: number;
  /** Compressed bytes downloaded, over all layers. */
  bytesDownloaded: number;
  /** Compressed bytes to download, over the layers whose size is known (layers already present count 0). */
  bytesTotal: number;
  /** The last status line the engine sent, e.g. "Downloading" or "Status: Downloaded newer image for …". */
  status: string;
  /** true on the one last report, after the pull has finished. */
  done: boolean;
}

export type PullFailureReason = 'not_found' | 'unauthorized' | 'denied' | 'unreachable' | 'failed';

const REASON_TEXT: Record<PullFailureReason, string> = {
  not_found: 'the registry has no such image (check the name and tag)',
  unauthorized: 'the registry refused access (credentials missing or wrong)',
  denied: 'the registry says the repository does not exist or needs a login',
  unreachable: 'the registry cannot be reached from the Docker engine',
  failed: 'the pull failed',
};

/** A pull that failed; `registryMessage` is what the engine/registry said, verbatim. */
export class ImagePullError extends Error {
  constructor(
    readonly image: string,
    readonly registry: string,
    readonly reason: PullFailureReason,
    readonly registryMessage: string,
  ) {
    super(`cannot pull ${image} from ${registry}: ${REASON_TEXT[reason]}: ${registryMessage}`);
    this.name = 'ImagePullError';
  }
}

/** The registry host of an image name: `host[:port]/…` when the first part looks like a host, else docker.io. */
export function registryOf(name: string): string {
  const slash = name.indexOf('/');
  if (slash < 0) return 'docker.io';
  const first = name.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : 'docker.io';
}

/** Sorts an engine/registry error message into a reason. Order matters: Docker Hub's "pull access denied" says both. */
export function classifyPullFailure(message: string): PullFailureReason {
  const m = message.toLowerCase();
  if (/pull access denied|repository does not exist or may require/.test(m)) return 'denied';
  if (/unauthorized|authentication required|no basic auth credentials|incorrect username or password|\b401\b/.test(m)) return 'unauthorized';
  if (/denied|forbidden|\b403\b/.test(m)) return 'denied';
  if (/not found|manifest unknown|name unknown|no such image|\b404\b/.test(m)) return 'not_found';
  if (
    /dial tcp|connection refused|connection reset|no such host|i\/o timeout|network is unreachable|no route to host|tls handshake|server gave http response to https client|context deadline exceeded|client\.timeout|\beof\b/.test(
      m,
    )
  ) {
    return 'unreachable';
  }
  return 'failed';
}

interface ProgressEvent {
  id?: string;
  status?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

const LAYER_STATUSES = new Set([
  'Pulling fs layer',
  'Waiting',
  'Downloading',
  'Verifying Checksum',
  'Download complete',
  'Extracting',
  'Pull complete',
  'Already exists',
]);

interface LayerState {
  current: number;
  total: number;
  done: boolean;
}

/**
 * Turns the engine's pull events into `PullProgress` summaries, at most one per `intervalMs`
 * (the first at once, the last — `done: true` — always). `now` is injectable for tests.
 */
export class PullProgressTracker {
  private readonly layers = new Map<string, LayerState>();
  private status = '';
  private lastEmit = -Infinity;
  private pending = false;

  constructor(
    readonly image: string,
    private readonly onProgress: ((progress: PullProgress) => void) | undefined,
    private readonly options: { intervalMs?: number; now?: () => number } = {},
  ) {}

  /** Feeds one engine event; reports a summary if the interval since the last one has passed. */
  event(event: ProgressEvent): void {
    if (event.status) this.status = event.status;
    const id = event.id;
    const status = event.status ?? '';
    if (id && (LAYER_STATUSES.has(status) || status.startsWith('Retrying'))) {
      const layer = this.layers.get(id) ?? { current: 0, total: 0, done: false };
      this.layers.set(id, layer);
      const detail = event.progressDetail ?? {};
      switch (status) {
        case 'Downloading':
          if (typeof detail.total === 'number' && detail.total > 0) layer.total = detail.total;
          if (typeof detail.current === 'number') layer.current = Math.max(layer.current, detail.current);
          break;
        case 'Verifying Checksum':
        case 'Download complete':
        case 'Extracting':
          layer.current = Math.max(layer.current, layer.total);
          break;
        case 'Pull complete':
        case 'Already exists':
          layer.current = Math.max(layer.current, layer.total);
          layer.done = true;
          break;
        default:
          if (status.startsWith('Retrying')) layer.current = 0;
      }
    }
    this.pending = true;
    this.maybeEmit(false);
  }

  /** The summary as of now. */
  summary(done = false): PullProgress {
    let layersDone = 0;
    let bytesDownloaded = 0;
    let bytesTotal = 0;
    for (const layer of this.layers.values()) {
      if (layer.done) layersDone += 1;
      bytesDownloaded += Math.min(layer.current, layer.total || layer.current);
      bytesTotal += layer.total;
    }
    return {
      image: this.image,
      layersDone,
      layersTotal: this.layers.size,
      bytesDownloaded,
      bytesTotal,
      status: this.status,
      done,
    };
  }

  /** The last report, sent whatever the interval. */
  finish(): void {
    this.pending = true;
    this.maybeEmit(true);
  }

  private maybeEmit(final: boolean): void {
    if (!this.onProgress || !this.pending) return;
    const now = (this.options.now ?? Date.now)();
    if (!final && now - this.lastEmit < (this.options.intervalMs ?? 250)) return;
    this.lastEmit = now;
    this.pending = false;
    this.onProgress(this.summary(final));
  }
}

function errorText(err: unknown): string {
  const e = err as { json?: { message?: string } | null; message?: string };
  const fromJson = e?.json && typeof e.json === 'object' ? e.json.message : undefined;
  const raw = fromJson ?? e?.message ?? String(err);
  // dockerode: "(HTTP code 404) unexpected - <engine message> "
  return raw.replace(/^\(HTTP code \d+\)\s*[^-]*-\s*/, '').trim();
}

/** Follows an engine progress stream to its end; rejects on a stream error, resolves with every event. */
function follow(docker: Docker, stream: NodeJS.ReadableStream, onEvent: (event: ProgressEvent) => void): Promise<ProgressEvent[]> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null, output: ProgressEvent[]) => (err ? reject(err) : resolve(output ?? [])),
      onEvent,
    );
  });
}

export interface PullOptions {
  onProgress?: (progress: PullProgress) => void;
  auth?: RegistryAuth;
  /** Least time between two progress reports (default 250 ms: at most four a second, plus the last). */
  progressIntervalMs?: number;
}

/**
 * Pulls an image through the engine, reporting a throttled summary of its progress. Fails with
 * an `ImagePullError` naming the image, the registry and what the registry said.
 */
export async function pullImage(docker: Docker, name: string, options: PullOptions = {}): Promise<void> {
  const registry = registryOf(name);
  const fail = (message: string): never => {
    throw new ImagePullError(name, registry, classifyPullFailure(message), message);
  };
  const tracker = new PullProgressTracker(name, options.onProgress, { intervalMs: options.progressIntervalMs });
  let stream: NodeJS.ReadableStream;
  try {
    stream = await docker.pull(name, options.auth ? { authconfig: options.auth } : {});
  } catch (err) {
    return fail(errorText(err));
  }
  let streamFailure: string | undefined;
  try {
    await follow(docker, stream, (event) => {
      if (event.error || event.errorDetail) {
        streamFailure ??= event.errorDetail?.message ?? event.error ?? 'unknown error';
        return;
      }
      tracker.event(event);
    });
  } catch (err) {
    streamFailure ??= errorText(err);
  }
  if (streamFailure !== undefined) return fail(streamFailure);
  if (!(await imageExists(docker, name))) {
    return fail('the engine reported the pull as finished but the image is not there');
  }
  tracker.finish();
}

export interface EnsureImageOptions {
  /** May the image be pulled when it is missing? (false: missing → ImageMissingError) */
  pull: boolean;
  onProgress?: (progress: PullProgress) => void;
  auth?: RegistryAuth;
}

/** Makes sure an image is on the engine: present → nothing; missing → pull if allowed, else ImageMissingError. */
export async function ensureImage(docker: Docker, name: string, options: EnsureImageOptions): Promise<'present' | 'pulled'> {
  if (await imageExists(docker, name)) return 'present';
  if (!options.pull) throw new ImageMissingError(name);
  await pullImage(docker, name, { onProgress: options.onProgress, auth: options.auth });
  return 'pulled';
}

export interface RemoveImageResult {
  image: string;
  /**
   * deleted: the name was the image's last one and its layers were removed;
   * untagged: only the name went (the image has other names and stays);
   * absent: no such image (nothing to do);
   * in_use: a container uses the image, nothing was removed (see `warning`).
   */
  outcome: 'deleted' | 'untagged' | 'absent' | 'in_use';
  /** Did the engine delete any image data? */
  freed: boolean;
  /**
   * The image's size as the engine reported it before removal, when it was deleted. An upper
   * bound of the space freed: layers shared with other images stay.
   */
  sizeBytes: number | null;
  untagged: string[];
  deleted: string[];
  warning?: string;
}

/**
 * Removes an image by name (never forced): the name is untagged, and the image deleted when
 * nothing else names or uses it. A missing image is fine; one in use by a container is reported
 * as `in_use` with a warning rather than thrown, so that `remove_after_use` never fails a run.
 */
export async function removeImage(docker: Docker, name: string): Promise<RemoveImageResult> {
  const base = { image: name, freed: false, sizeBytes: null, untagged: [], deleted: [] };
  const image = docker.getImage(name);
  let size: number | null = null;
  try {
    size = (await image.inspect()).Size ?? null;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return { ...base, outcome: 'absent' };
    throw err;
  }
  let items: Array<{ Untagged?: string; Deleted?: string }>;
  try {
    items = ((await image.remove()) ?? []) as Array<{ Untagged?: string; Deleted?: string }>;
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    if (status === 404) return { ...base, outcome: 'absent' };
    if (status === 409) {
      return { ...base, outcome: 'in_use', warning: `image ${name} was kept: ${errorText(err)}` };
    }
    throw err;
  }
  const untagged = items.flatMap((item) => (item.Untagged ? [item.Untagged] : []));
  const deleted = items.flatMap((item) => (item.Deleted ? [item.Deleted] : []));
  const freed = deleted.length > 0;
  return { image: name, outcome: freed ? 'deleted' : 'untagged', freed, sizeBytes: freed ? size : null, untagged, deleted };
}

/** Pushes a local image (`registry/repo:tag`) to its registry. */
export async function pushImage(docker: Docker, name: string, options: { auth?: RegistryAuth } = {}): Promise<void> {
  const registry = registryOf(name);
  const { repo, tag } = splitImageName(name);
  const fail = (message: string): never => {
    throw new Error(`cannot push ${name} to ${registry}: ${message}`);
  };
  let stream: NodeJS.ReadableStream;
  try {
    // The engine wants an X-Registry-Auth header on a push even when the registry needs none.
    stream = await docker.getImage(repo).push({ tag, authconfig: options.auth ?? {} });
  } catch (err) {
    return fail(errorText(err));
  }
  let failure: string | undefined;
  try {
    await follow(docker, stream, (event) => {
      if (event.error || event.errorDetail) failure ??= event.errorDetail?.message ?? event.error ?? 'unknown error';
    });
  } catch (err) {
    failure ??= errorText(err);
  }
  if (failure !== undefined) fail(failure);
}
