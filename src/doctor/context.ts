import type Docker from 'dockerode';
import { z } from 'zod';
import type { LoadedRecipe } from '../recipe/load.js';
import { dockerClient } from '../sandbox/engine.js';
import type { Instance } from '../tasks/instance.js';
import { selectTaskSet } from '../tasks/select.js';
import { reasonOf, withTimeout } from './timeout.js';

export interface DoctorOptions {
  loaded: LoadedRecipe;
  /** Where run directories go (rft run --runs-dir). */
  runsDir: string;
  /** Check a seeded sample of this many images per task set (null: all). */
  sample: number | null;
  /** Limit of each network check (Docker ping, registry, endpoint). */
  timeoutMs: number;
  env: NodeJS.ProcessEnv;
}

export interface EngineProbe {
  url: string;
  docker: Docker | null;
  error: string | null;
  version: string | null;
  /** Docker's data root (`docker info` DockerRootDir), where images and containers live. */
  rootDir: string | null;
}

export interface TaskSetProbe {
  set: 'train' | 'eval';
  field: string;
  file: string;
  instances: Instance[] | null;
  error: string | null;
}

/** The part of vLLM's /v1/models card rft reads (OpenAI's has no max_model_len). */
const ModelsAnswerSchema = z.object({
  data: z.array(z.object({ id: z.string(), max_model_len: z.number().int().positive().nullish() })),
});

export interface ModelsProbe {
  url: string;
  models: { id: string; max_model_len: number | null }[] | null;
  /** HTTP status when the endpoint answered. */
  status: number | null;
  error: string | null;
  /** The connection itself failed (refused, unknown host); a timeout or an HTTP error is not this. */
  unreachable: boolean;
}

/**
 * What several checks look at, probed once and shared: the Docker engines, the task sets, the
 * endpoints' model lists. Every probe is bounded by the network timeout.
 */
export class DoctorContext {
  private enginesProbe: Promise<EngineProbe[]> | null = null;
  private tasksProbe: Promise<TaskSetProbe[]> | null = null;
  private readonly modelProbes = new Map<string, Promise<ModelsProbe>>();

  constructor(readonly options: DoctorOptions) {}

  get recipe() {
    return this.options.loaded.recipe;
  }

  get baseDir(): string {
    return this.options.loaded.baseDir;
  }

  engines(): Promise<EngineProbe[]> {
    this.enginesProbe ??= Promise.all(this.recipe.sandbox.docker.map((engine) => this.probeEngine(engine.url)));
    return this.enginesProbe;
  }

  private async probeEngine(url: string): Promise<EngineProbe> {
    try {
      const docker = dockerClient(url);
      const info = await withTimeout(this.options.timeoutMs, async (abortSignal) => {
        // dockerode passes abortSignal on to the request (docker-modem); its types leave it out.
        type WithOptions = (this: Docker, options: { abortSignal: AbortSignal }) => Promise<unknown>;
        await (docker.ping as unknown as WithOptions).call(docker, { abortSignal });
        return (await (docker.info as unknown as WithOptions).call(docker, { abortSignal })) as { ServerVersion?: string; DockerRootDir?: string };
      });
      return { url, docker, error: null, version: info.ServerVersion ?? null, rootDir: info.DockerRootDir ?? null };
    } catch (err) {
      return { url, docker: null, error: reasonOf(err), version: null, rootDir: null };
    }
  }

  taskSets(): Promise<TaskSetProbe[]> {
    this.tasksProbe ??= Promise.all(
      (['train', 'eval'] as const).flatMap((set) => {
        const taskSet = this.recipe.tasks[set];
        if (!taskSet) return [];
        const file = taskSet.path;
        return [
          selectTaskSet(taskSet, this.baseDir).then(
            (instances): TaskSetProbe => ({ set, field: `tasks.${set}`, file, instances, error: null }),
            (err: unknown): TaskSetProbe => ({ set, field: `tasks.${set}`, file, instances: null, error: (err as Error).message }),
          ),
        ];
      }),
    );
    return this.tasksProbe;
  }

  /** GET {baseUrl}/models, once per URL and key. */
  models(baseUrl: string, apiKey: string | null): Promise<ModelsProbe> {
    let probe = this.modelProbes.get(baseUrl);
    if (!probe) {
      probe = this.probeModels(baseUrl, apiKey);
      this.modelProbes.set(baseUrl, probe);
    }
    return probe;
  }

  private async probeModels(baseUrl: string, apiKey: string | null): Promise<ModelsProbe> {
    const url = `${baseUrl.replace(/\/+$/, '')}/models`;
    try {
      const response = await withTimeout(this.options.timeoutMs, (signal) =>
        fetch(url, { signal, headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} }),
      );
      if (!response.ok) {
        await response.body?.cancel();
        return { url, models: null, status: response.status, error: `HTTP ${response.status} from ${url}`, unreachable: false };
      }
      const parsed = ModelsAnswerSchema.safeParse(await withTimeout(this.options.timeoutMs, () => response.json()));
      if (!parsed.success) return { url, models: null, status: response.status, error: `${url} did not answer with a model list ({"data": [{"id": …}]})`, unreachable: false };
      return { url, models: parsed.data.data.map((m) => ({ id: m.id, max_model_len: m.max_model_len ?? null })), status: response.status, error: null, unreachable: false };
    } catch (err) {
      const reason = reasonOf(err);
      const unreachable = /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|ECONNRESET/.test(reason);
      return { url, models: null, status: null, error: reason, unreachable };
    }
  }
}
