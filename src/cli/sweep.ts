import type { CommandModule } from 'yargs';
import { formatTable } from '../loop/summary.js';
import { sweep } from '../loop/sweep.js';
import { startSimulatedPolicy } from './sim.js';

interface SweepArgs {
  recipe: string;
  grid: string[];
  'runs-dir': string;
}

export const sweepCommand: CommandModule<object, SweepArgs> = {
  command: 'sweep <recipe>',
  describe: 'Run sibling runs over a grid of settings off one shared first iteration (e.g. --grid select.cap=1,2,none)',
  builder: (y) =>
    y
      .positional('recipe', { type: 'string', demandOption: true })
      .option('grid', { type: 'string', array: true, demandOption: true, describe: 'key=v1,v2,… (repeatable: the runs are every combination)' })
      .option('runs-dir', { type: 'string', default: 'runs' }),
  handler: async (args) => {
    const result = await sweep({
      recipeFile: args.recipe,
      grid: args.grid,
      runsDir: args['runs-dir'],
      startSimulated: startSimulatedPolicy,
      log: (m) => process.stderr.write(`${m}\n`),
      warn: (m) => process.stderr.write(`warning: ${m}\n`),
    });
    for (const run of result.runs) {
      process.stdout.write(`\n${run.name} (${run.settings.join(' ')}): ${run.result?.status ?? 'not run'}\n`);
      if (run.result?.rows.length) process.stdout.write(`${formatTable(run.result.rows, null)}\n`);
    }
    const unfinished = [result.base, ...result.runs.map((r) => r.result)].filter((r) => r && r.status !== 'complete' && r.status !== 'sampled');
    if (unfinished.length > 0 || result.runs.length === 0) {
      process.stdout.write('\nthe sweep is not complete; run the same command again to continue it\n');
      process.exitCode = 1;
    }
  },
};
