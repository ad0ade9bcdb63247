import { z } from 'zod';
import { RecipeSchema } from './schema.js';

/** JSON Schema of what a recipe file may contain (the input side: defaults are optional keys). */
export function recipeJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(RecipeSchema, { io: 'input', unrepresentable: 'any' }),
    title: 'rft recipe',
  };
}
