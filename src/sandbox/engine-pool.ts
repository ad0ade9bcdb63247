import type Docker from 'dockerode';
import { dockerClient } from './engine.js';

export interface PooledEngine {
  url: string;
  docker: Docker;
  /** Containers at once on this engine. */
  capacity: number;
}

export interface EngineLease {
  url: string;
  docker: Docker;
  /** `failed`: the engine itself failed (not the patch): it is taken out of rotation. */
  release(outcome?: { failed?: Error }): void;
}

interface EngineState extends PooledEngine {
  running: number;
  healthy: boolean;
  used: number;
}

/**
 * Several Docker engines as one sandbox (`sandbox.docker: [...]`): each container goes to the
 * healthy engine with the most free capacity; an engine that fails is taken out of rotation with a
 * warning, and the work goes on on the others. Waits when every engine is full.
 */
export class EnginePool {
  private readonly engines: EngineState[];
  private readonly waiting: (() => void)[] = [];

  constructor(
    engines: readonly PooledEngine[],
    private readonly warn: (message: string) => void = () => {},
  ) {
    if (engines.length === 0) throw new Error('sandbox.docker lists no engine');
    this.engines = engines.map((e) => ({ ...e, running: 0, healthy: true, used: 0 }));
  }

  /** From the recipe's `sandbox.docker` list; an engine's limit defaults to the overall concurrency. */
  static fromRecipe(docker: readonly { url: string; max_containers: number | null }[], concurrency: number, warn?: (message: string) => void): EnginePool {
    return new EnginePool(
      docker.map((e) => ({ url: e.url, docker: dockerClient(e.url), capacity: e.max_containers ?? concurrency })),
      warn,
    );
  }

  /** The engines still in rotation. */
  healthy(): PooledEngine[] {
    return this.engines.filter((e) => e.healthy);
  }

  /** Containers started per engine so far. */
  stats(): { url: string; used: number; running: number; healthy: boolean }[] {
    return this.engines.map(({ url, used, running, healthy }) => ({ url, used, running, healthy }));
  }

  async acquire(): Promise<EngineLease> {
    for (;;) {
      const healthy = this.engines.filter((e) => e.healthy);
      if (healthy.length === 0) throw new Error(`no Docker engine left in rotation (all of ${this.engines.map((e) => e.url).join(', ')} failed)`);
      const free = healthy.filter((e) => e.running < e.capacity);
      if (free.length > 0) {
        const engine = free.reduce((best, e) => (e.capacity - e.running > best.capacity - best.running ? e : best));
        engine.running += 1;
        engine.used += 1;
        let released = false;
        return {
          url: engine.url,
          docker: engine.docker,
          release: (outcome) => {
            if (released) return;
            released = true;
            engine.running -= 1;
            if (outcome?.failed && engine.healthy) this.takeOut(engine, outcome.failed);
            this.waiting.shift()?.();
          },
        };
      }
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
  }

  /** Takes an engine out of rotation (it failed): later work goes to the others. */
  takeOut(engine: PooledEngine | string, reason: Error): void {
    const state = this.engines.find((e) => e.url === (typeof engine === 'string' ? engine : engine.url));
    if (!state || !state.healthy) return;
    state.healthy = false;
    this.warn(`Docker engine ${state.url} failed (${reason.message}); taken out of rotation, work goes on on ${this.healthy().map((e) => e.url).join(', ') || 'no engine'}`);
    // Whoever waits for capacity must look again: this engine will give none.
    for (const wake of this.waiting.splice(0)) wake();
  }
}

/** Errors that say the engine itself is gone (not that an image or a container is missing). */
export function isEngineFailure(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  const message = (err as Error)?.message ?? '';
  return (
    ['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'].includes(code ?? '') ||
    /socket hang up|connect (ECONNREFUSED|ENOENT|ETIMEDOUT)|read ECONNRESET|write EPIPE|no Docker engine answers/.test(message)
  );
}
