import path from 'node:path';
import type { CommandModule } from 'yargs';
import { evalHeadline } from '../report/eval-figure.js';
import { scalingText } from '../report/scaling.js';
import { DEFAULT_PAGE_CAP, DEFAULT_PAGES, describePages, parsePagesSpec } from '../report/page-selection.js';
import { createReport } from '../report/write.js';

interface ReportArgs {
  'run-dir': string[];
  out: string | undefined;
  json: boolean;
  pages: string | undefined;
}

export const reportCommand: CommandModule<object, ReportArgs> = {
  command: 'report <run-dir..>',
  describe: 'Write report.md and a self-contained report.html (charts and tables) from the ledgers of one or more runs',
  builder: (y) =>
    y
      .positional('run-dir', { type: 'string', array: true, demandOption: true, describe: 'run directories (several: shown side by side, e.g. a cap sweep)' })
      .option('out', { type: 'string', describe: 'folder to write report.md and report.html into (default: the first run\'s folder)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the whole report data as JSON' })
      .option('pages', { type: 'string', describe: `which trajectories get a page: auto | all | failed | kept | failed,kept | sample:N | none (default ${DEFAULT_PAGES}: every trajectory of a phase of at most ${DEFAULT_PAGE_CAP}, else its failed and kept ones, at most ${DEFAULT_PAGE_CAP}); pages whose inputs did not change are reused` }),
  handler: (args) => {
    const pages = parsePagesSpec(args.pages);
    const { data, files } = createReport({ runDirs: args['run-dir'], outDir: args.out, pages });
    if (args.json) {
      process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
      return;
    }
    const rel = (file: string) => path.relative(process.cwd(), file) || file;
    process.stdout.write(`wrote ${rel(files.markdown)} and ${rel(files.html)}\n`);
    files.trajectories.forEach((index, i) => {
      const n = files.pages[i]!;
      process.stdout.write(`  trajectory pages (${describePages(pages)}: ${n.written} written, ${n.reused} unchanged): ${rel(index)}\n`);
    });
    for (const run of data.runs) {
      const evals = evalHeadline(run);
      process.stdout.write(`  ${run.label}: eval ${evals ?? '–'}; ${run.datasets.length} dataset(s), ${run.finetunes.length} fine-tune record(s)\n`);
    }
    process.stdout.write(scalingText(data));
  },
};
