import type { CommandModule } from 'yargs';
import { stringify as toYaml } from 'yaml';
import { loadRecipe, RecipeError } from '../recipe/load.js';
import { missingPathProblems } from '../recipe/paths.js';

interface CheckArgs {
  file: string;
  set: string[];
}

const checkCommand: CommandModule<object, CheckArgs> = {
  command: 'check <file>',
  describe: 'Validate a recipe, check that the files it names exist, and print it resolved (every default filled in) as YAML',
  builder: (y) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'recipe YAML file' })
      .option('set', { type: 'string', array: true, default: [], describe: 'override a key: --set select.cap=1 (repeatable)' }),
  handler: (args) => {
    const loaded = loadRecipe(args.file, args.set);
    process.stdout.write(`# sha256 ${loaded.hash}\n${toYaml(loaded.recipe, { lineWidth: 0 })}`);
    // The recipe is printed either way (it is valid); files it names that are missing fail the check.
    const missing = missingPathProblems(loaded);
    if (missing.length > 0) throw new RecipeError(args.file, missing);
  },
};

export const recipeCommand: CommandModule = {
  command: 'recipe <command>',
  describe: 'Work with recipe files',
  builder: (y) => y.command(checkCommand).demandCommand(1),
  handler: () => {},
};
