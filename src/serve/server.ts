import type { z } from 'zod';
import type { ServeSchema } from '../recipe/schema.js';

/**
 * Serving (design §7): makes the model a fine-tune produced answer at an OpenAI-compatible
 * endpoint, so that the next iteration samples from it and the eval measures it.
 *
 *   none     the name is used as is at policy.base_url (OpenAI fine-tunes)
 *   command  starts a server (e.g. `vllm serve {model} --served-model-name {served_name} --port {port}`)
 *            as a detached process group, waits until GET /v1/models lists it, stops it later
 *   lora     loads the adapter into a running vLLM (POST /v1/load_lora_adapter)
 */

export type ServeConfig = z.output<typeof ServeSchema>;
export type CommandServeConfig = Extract<ServeConfig, { kind: 'command' }>;
export type LoraServeConfig = Extract<ServeConfig, { kind: 'lora' }>;

export interface ServedModel {
  /** Endpoint(s) to send the policy's requests to; null: keep the recipe's policy.base_url. */
  baseUrl: string[] | null;
  /** Model name to put in the requests. */
  model: string;
}

export interface ModelServer {
  readonly kind: ServeConfig['kind'];
  /** Makes `model` (a trainer's output_model) answer; stops what this server served before. */
  serve(model: string, iteration: number): Promise<ServedModel>;
  /** Stops what this server started (a no-op for none and lora). */
  stop(): Promise<void>;
}

export interface ModelServerOptions {
  runDir: string;
  log: (message: string) => void;
  warn?: (message: string) => void;
  /** command: working directory of the server command (default: process.cwd()). */
  cwd?: string;
  /** command: poll period of the readiness check (default 1000 ms). */
  pollIntervalMs?: number;
  /** command: SIGTERM → SIGKILL grace when stopping (default 15 s). */
  killGraceMs?: number;
}
