import type { ModelServer, ServedModel } from './server.js';

/** `none`: the fine-tuned model is requested by name at policy.base_url (e.g. an OpenAI fine-tune). */
export class NoneModelServer implements ModelServer {
  readonly kind = 'none' as const;

  async serve(model: string): Promise<ServedModel> {
    return { baseUrl: null, model };
  }

  async stop(): Promise<void> {}
}
