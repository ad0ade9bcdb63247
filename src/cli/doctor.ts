import type { CommandModule } from 'yargs';
import { runDoctor, formatResult } from '../doctor/run.js';
import { loadRecipe } from '../recipe/load.js';

interface DoctorArgs {
  recipe: string;
  set: string[];
  sample?: number;
  'runs-dir': string;
  json: boolean;
}

export const doctorCommand: CommandModule<object, DoctorArgs> = {
  command: 'doctor <recipe>',
  describe: 'Check in seconds that a recipe can run here: Docker, task files, images, endpoint and model, context length, tokenizer, trainer, output folder, disk',
  builder: (y) =>
    y
      .positional('recipe', { type: 'string', demandOption: true, describe: 'recipe YAML file' })
      .option('set', { type: 'string', array: true, default: [], describe: 'override a recipe key: --set policy.base_url=http://gpu1:8000/v1 (repeatable)' })
      .option('sample', { type: 'number', describe: 'check a seeded sample of N images per task set (default: all)' })
      .option('runs-dir', { type: 'string', default: 'runs', describe: 'where run directories live (as for rft run)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' })
      .check((args) => {
        if (args.sample !== undefined && !(Number.isInteger(args.sample) && args.sample >= 1)) throw new Error('--sample takes a whole number ≥ 1');
        return true;
      }),
  handler: async (args) => {
    const loaded = loadRecipe(args.recipe, args.set);
    const report = await runDoctor({ loaded, runsDir: args['runs-dir'], sample: args.sample ?? null });
    if (args.json) {
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    } else {
      for (const result of report.results) process.stdout.write(`${formatResult(result)}\n`);
      const verdict = report.failed > 0 ? `${report.failed} check(s) failed` : 'every check passed';
      process.stdout.write(`\n${verdict}${report.warned > 0 ? `, ${report.warned} warning(s)` : ''} (${(report.duration_ms / 1000).toFixed(1)} s; paths resolved against ${report.base_dir})\n`);
    }
    // Open sockets of timed-out probes must not keep the process alive.
    process.exit(report.failed > 0 ? 1 : 0);
  },
};
