import type { LoadedRecipe } from '../recipe/load.js';
import { sftBackendOf } from '../recipe/schema.js';
import type { ExampleOptions } from './examples.js';
import { resolveTokenizerSpec } from './tokenizer.js';

/**
 * The example options a recipe means, every default settled: the tokenizer (an encoding, or the
 * model's tokenizer folder as an absolute path), the backend that reads the data, the policy.
 */
export function exampleOptionsOf(loaded: Pick<LoadedRecipe, 'recipe' | 'baseDir'>): ExampleOptions {
  const { recipe } = loaded;
  return {
    unit: recipe.sft.unit,
    max_tokens: recipe.sft.max_tokens,
    tokenizer: resolveTokenizerSpec(recipe.sft, recipe.finetune.base_model, loaded.baseDir),
    train_on: recipe.sft.train_on,
    backend: sftBackendOf(recipe),
    tool_arguments: recipe.sft.tool_arguments,
  };
}
