import path from 'node:path';
import type { CommandModule } from 'yargs';
import { evalHeadline } from '../report/eval-figure.js';
import { scalingText } from '../report/scaling.js';
import { createReport } from '../report/write.js';

interface ReportArgs {
  'run-dir': string[];
  out: string | undefined;
  json: boolean;
}

export const reportCommand: CommandModule<object, ReportArgs> = {
  command: 'report <run-dir..>',
  describe: 'Write report.md and a self-contained report.html (charts and tables) from the ledgers of one or more runs',
  builder: (y) =>
    y
      .positional('run-dir', { type: 'string', array: true, demandOption: true, describe: 'run directories (several: shown side by side, e.g. a cap sweep)' })
      .option('out', { type: 'string', describe: 'folder to write report.md and report.html into (default: the first run\'s folder)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the whole report data as JSON' }),
  handler: (args) => {
    const { data, files } = createReport({ runDirs: args['run-dir'], outDir: args.out });
    if (args.json) {
      process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
      return;
    }
    const rel = (file: string) => path.relative(process.cwd(), file) || file;
    process.stdout.write(`wrote ${rel(files.markdown)} and ${rel(files.html)}\n`);
    for (const index of files.trajectories) process.stdout.write(`  trajectory pages: ${rel(index)}\n`);
    for (const run of data.runs) {
      const evals = evalHeadline(run);
      process.stdout.write(`  ${run.label}: eval ${evals ?? '–'}; ${run.datasets.length} dataset(s), ${run.finetunes.length} fine-tune record(s)\n`);
    }
    process.stdout.write(scalingText(data));
  },
};
