import { CommandTrainer } from './command.js';
import { OpenAiTrainer } from './openai.js';
import type { FinetuneConfig, Trainer, TrainerOptions } from './trainer.js';

/** The trainer the recipe's finetune.backend names. Apart from trainer.ts, which the backends import: no cycle. */
export function createTrainer(config: FinetuneConfig, options: TrainerOptions): Trainer {
  switch (config.backend) {
    case 'command':
      return new CommandTrainer(config, options);
    case 'openai': {
      if (!options.apiKey) {
        throw new Error(`finetune.backend openai needs an API key: set the environment variable ${config.api_key_env} (finetune.api_key_env)`);
      }
      return new OpenAiTrainer(config, { ...options, apiKey: options.apiKey });
    }
  }
}
