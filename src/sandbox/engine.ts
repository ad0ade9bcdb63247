import Docker from 'dockerode';

/** The engine is missing or refuses: the fix is on the machine, not in the recipe. */
export class EngineUnavailableError extends Error {
  constructor(
    readonly url: string,
    cause: unknown,
  ) {
    super(
      `no Docker engine answers at ${url} (${(cause as Error)?.message ?? String(cause)}); ` +
        'start one with `bash scripts/setup-docker.sh` (as root) or point sandbox.docker at a running engine',
    );
    this.name = 'EngineUnavailableError';
  }
}

/** A dockerode client for an engine address: unix:///path, tcp://host:port, http(s)://…, ssh://user@host. */
export function dockerClient(url: string): Docker {
  const parsed = new URL(url);
  switch (parsed.protocol) {
    case 'unix:':
      return new Docker({ socketPath: decodeURIComponent(parsed.pathname) });
    case 'npipe:':
      return new Docker({ socketPath: `//./pipe/${parsed.pathname.replace(/^\/+/, '')}` });
    case 'tcp:':
    case 'http:':
      return new Docker({ protocol: 'http', host: parsed.hostname, port: Number(parsed.port || 2375) });
    case 'https:':
      return new Docker({ protocol: 'https', host: parsed.hostname, port: Number(parsed.port || 2376) });
    case 'ssh:':
      return new Docker({
        protocol: 'ssh',
        host: parsed.hostname,
        port: Number(parsed.port || 22),
        username: decodeURIComponent(parsed.username) || undefined,
      } as Docker.DockerOptions);
    default:
      throw new Error(`unsupported Docker engine address ${url}`);
  }
}

/** The default engine: DOCKER_HOST when set, else the local socket. */
export function defaultEngineUrl(): string {
  const host = process.env.DOCKER_HOST;
  if (host && /^(unix|tcp|ssh|https?|npipe):\/\//.test(host)) return host;
  return 'unix:///var/run/docker.sock';
}

/** Connects and pings, turning "nothing there" into an error that says what to run. */
export async function connectEngine(url: string = defaultEngineUrl()): Promise<Docker> {
  const docker = dockerClient(url);
  try {
    await docker.ping();
  } catch (err) {
    throw new EngineUnavailableError(url, err);
  }
  return docker;
}
