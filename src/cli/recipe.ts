import type { CommandModule } from 'yargs';
import { stringify as toYaml } from 'yaml';
import { loadRecipe } from '../recipe/load.js';

interface CheckArgs {
  file: string;
  set: string[];
}

const checkCommand: CommandModule<object, CheckArgs> = {
  command: 'check <file>',
  describe: 'Validate a recipe and print it resolved (every default filled in) as YAML',
  builder: (y) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'recipe YAML file' })
      .option('set', { type: 'string', array: true, default: [], describe: 'override a key: --set select.cap=1 (repeatable)' }),
  handler: (args) => {
    const loaded = loadRecipe(args.file, args.set);
    process.stdout.write(`# sha256 ${loaded.hash}\n${toYaml(loaded.recipe, { lineWidth: 0 })}`);
  },
};

export const recipeCommand: CommandModule = {
  command: 'recipe <command>',
  describe: 'Work with recipe files',
  builder: (y) => y.command(checkCommand).demandCommand(1),
  handler: () => {},
};
