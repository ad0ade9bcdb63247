import path from 'node:path';
import type { CommandModule } from 'yargs';
import { driveRun, type DriveResult } from '../loop/drive.js';
import { startSimulatedPolicy } from './sim.js';

interface RunArgs {
  recipe: string;
  name?: string;
  set: string[];
  'runs-dir': string;
  'allow-recipe-change': boolean;
  'retry-failed': boolean;
}

interface ResumeArgs {
  'run-dir': string;
  'retry-failed': boolean;
}

const log = (message: string) => process.stderr.write(`${message}\n`);
const warn = (message: string) => process.stderr.write(`warning: ${message}\n`);

function report(result: DriveResult): void {
  const where = path.relative(process.cwd(), result.runDir) || result.runDir;
  if (result.table) process.stdout.write(`\n${result.table}\n`);
  if (result.status === 'complete') {
    process.stdout.write(`\nrun complete: ${where}\n`);
    return;
  }
  if (result.status === 'nothing_to_train') {
    // The reason says what to change: resuming as it is would stop at the same place.
    process.stdout.write(`\nrun stopped, nothing to train on: ${result.reason}\n`);
    process.exitCode = 1;
    return;
  }
  process.stdout.write(`\nrun ${result.status}${result.reason ? ` (${result.reason})` : ''}; continue with: rft resume ${where}\n`);
  process.exitCode = result.status === 'stopped' ? 130 : 1;
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run <recipe>',
  describe: 'Run the RFT loop of a recipe (sample → verify → select → emit → fine-tune → serve → eval); continues a run that exists',
  builder: (y) =>
    y
      .positional('recipe', { type: 'string', demandOption: true, describe: 'recipe YAML file' })
      .option('name', { type: 'string', describe: 'run name (default: the recipe\'s name); the run lives in <runs-dir>/<name>' })
      .option('set', { type: 'string', array: true, default: [], describe: 'override a recipe key: --set select.cap=1 (repeatable)' })
      .option('runs-dir', { type: 'string', default: 'runs', describe: 'where run directories live' })
      .option('allow-recipe-change', { type: 'boolean', default: false, describe: 'continue an existing run whose recipe differs' })
      .option('retry-failed', { type: 'boolean', default: false, describe: 'try a fine-tune that failed again (its record is kept aside)' }),
  handler: async (args) => {
    const overrides = [...args.set, ...(args.name ? [`name=${args.name}`] : [])];
    report(
      await driveRun({ recipeFile: args.recipe, overrides, runsDir: args['runs-dir'], allowRecipeChange: args['allow-recipe-change'], retryFailed: args['retry-failed'], startSimulated: startSimulatedPolicy, log, warn }),
    );
  },
};

export const resumeCommand: CommandModule<object, ResumeArgs> = {
  command: 'resume <run-dir>',
  describe: 'Continue a run where it stopped: recorded trajectories, verdicts and fine-tunes are never redone',
  builder: (y) =>
    y
      .positional('run-dir', { type: 'string', demandOption: true, describe: 'the run directory, e.g. runs/demo' })
      .option('retry-failed', { type: 'boolean', default: false, describe: 'try a fine-tune that failed again (its record is kept aside)' }),
  handler: async (args) => {
    report(await driveRun({ runDir: args['run-dir'], runsDir: path.dirname(args['run-dir']), retryFailed: args['retry-failed'], startSimulated: startSimulatedPolicy, log, warn }));
  },
};
