import type { CommandModule } from 'yargs';
import { recipeJsonSchema } from '../recipe/json-schema.js';

export const schemaCommand: CommandModule = {
  command: 'schema',
  describe: 'Print the JSON Schema of recipe files (for editors)',
  handler: () => {
    process.stdout.write(`${JSON.stringify(recipeJsonSchema(), null, 2)}\n`);
  },
};
