import { renderTemplate } from '../finetune/template.js';
import { ServeError } from './errors.js';
import type { LoraServeConfig, ModelServer, ModelServerOptions, ServedModel } from './server.js';

/**
 * `lora` serving: loads the trained adapter into a running vLLM started with --enable-lora and
 * VLLM_ALLOW_RUNTIME_LORA_UPDATING=True: POST <base_url>/load_lora_adapter {lora_name, lora_path},
 * then checks that GET <base_url>/models lists the adapter. An adapter already loaded under the
 * name from the same path (a resumed run) is kept; one loaded from another path is unloaded
 * (POST /unload_lora_adapter) and loaded again, so the name always means this iteration's model.
 */

const REQUEST_TIMEOUT_MS = 300_000;

interface ModelCard {
  id: string;
  /** vLLM lists a LoRA adapter with root = its lora_path. */
  root?: string | null;
}

export class LoraModelServer implements ModelServer {
  readonly kind = 'lora' as const;
  private readonly baseUrl: string;

  constructor(
    private readonly config: LoraServeConfig,
    private readonly options: ModelServerOptions,
  ) {
    const trimmed = config.base_url.replace(/\/+$/, '');
    this.baseUrl = /\/v1$/.test(trimmed) ? trimmed : `${trimmed}/v1`;
  }

  async serve(model: string, iteration: number): Promise<ServedModel> {
    const name = renderTemplate(this.config.adapter_name, { iteration }, { what: 'serve.adapter_name' });
    const listed = await this.models();
    const card = listed.find((entry) => entry.id === name);
    if (card && card.root === model) {
      this.options.log(`LoRA adapter ${name} is already loaded from ${model}`);
      return { baseUrl: [this.baseUrl], model: name };
    }
    if (card) {
      this.options.log(`LoRA adapter ${name} is loaded from ${card.root ?? 'an unknown path'}; loading it again from ${model}`);
      await this.post('unload_lora_adapter', { lora_name: name });
    }
    await this.post('load_lora_adapter', { lora_name: name, lora_path: model });
    const after = await this.models();
    if (!after.some((entry) => entry.id === name)) {
      throw new ServeError(
        `vLLM at ${this.baseUrl} accepted the LoRA adapter ${name} but GET /models does not list it (it lists: ${after.map((entry) => entry.id).join(', ') || 'nothing'})`,
      );
    }
    this.options.log(`loaded the LoRA adapter ${name} from ${model} into ${this.baseUrl}`);
    return { baseUrl: [this.baseUrl], model: name };
  }

  async stop(): Promise<void> {
    // Adapters stay loaded: the server is the user's, and later evaluations may ask for them.
  }

  private async models(): Promise<ModelCard[]> {
    const url = `${this.baseUrl}/models`;
    let response: Response;
    try {
      response = await fetch(url, { signal: AbortSignal.timeout(30_000) });
    } catch (err) {
      throw new ServeError(`GET ${url} failed: ${(err as Error).message} (is the vLLM server of serve.base_url running?)`);
    }
    if (!response.ok) throw new ServeError(`GET ${url} answered HTTP ${response.status}: ${(await safeText(response)).slice(0, 500)}`);
    const body = (await response.json()) as { data?: { id?: unknown; root?: unknown }[] };
    return (body.data ?? []).map((card) => ({ id: String(card.id), root: typeof card.root === 'string' ? card.root : null }));
  }

  private async post(route: string, body: Record<string, string>): Promise<void> {
    const url = `${this.baseUrl}/${route}`;
    let response: Response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      throw new ServeError(`POST ${url} failed: ${(err as Error).message}`);
    }
    if (!response.ok) {
      const text = (await safeText(response)).trim();
      const hint =
        response.status === 404 && isMissingRoute(text)
          ? ' (start vLLM with --enable-lora and the environment variable VLLM_ALLOW_RUNTIME_LORA_UPDATING=True)'
          : '';
      throw new ServeError(`POST ${url} answered HTTP ${response.status}: ${text.slice(0, 500)}${hint}`);
    }
  }
}

/**
 * Whether a 404 says the route itself is missing: vLLM registers /v1/load_lora_adapter only when
 * started with VLLM_ALLOW_RUNTIME_LORA_UPDATING, and FastAPI answers a path it has no route for with
 * {"detail": "Not Found"}. A 404 from the route (vLLM's ErrorResponse, e.g. NotFoundError "Loading
 * lora … failed: No adapter found for …") means the server is set up right and the adapter is not.
 */
function isMissingRoute(body: string): boolean {
  try {
    const value = JSON.parse(body) as { detail?: unknown };
    return value?.detail === 'Not Found';
  } catch {
    return false;
  }
}

async function safeText(response: Response): Promise<string> {
  try {
    return await response.text();
  } catch {
    return '';
  }
}
