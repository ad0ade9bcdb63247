import { CommandModelServer } from './command.js';
import { LoraModelServer } from './lora.js';
import { NoneModelServer } from './none.js';
import type { ModelServer, ModelServerOptions, ServeConfig } from './server.js';

/** The model server the recipe's serve.kind names. Apart from server.ts, which the servers import: no cycle. */
export function createModelServer(config: ServeConfig, options: ModelServerOptions): ModelServer {
  switch (config.kind) {
    case 'none':
      return new NoneModelServer();
    case 'command':
      return new CommandModelServer(config, options);
    case 'lora':
      return new LoraModelServer(config, options);
  }
}
