import type Docker from 'dockerode';
import { tarOf, type FileEntry } from './archive.js';

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
