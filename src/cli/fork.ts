import path from 'node:path';
import type { CommandModule } from 'yargs';
import { forkRun } from '../loop/fork.js';

interface ForkArgs {
  'run-dir': string;
  name: string;
  'from-iteration': number;
  set: string[];
}

export const forkCommand: CommandModule<object, ForkArgs> = {
  command: 'fork <run-dir>',
  describe: "Start a run that shares (hard links) a run's records up to iteration K's samples and continues with its own settings",
  builder: (y) =>
    y
      .positional('run-dir', { type: 'string', demandOption: true })
      .option('name', { type: 'string', demandOption: true, describe: 'name of the new run (beside the parent)' })
      .option('from-iteration', { type: 'number', default: 0, describe: 'share iterations before K whole and iteration K\'s samples and verdicts' })
      .option('set', { type: 'string', array: true, default: [], describe: 'override a recipe key for the fork: --set select.cap=1' }),
  handler: (args) => {
    const runsDir = path.dirname(path.resolve(args['run-dir']));
    const result = forkRun({
      parentDir: args['run-dir'],
      name: args.name,
      fromIteration: args['from-iteration'],
      overrides: args.set,
      runsDir,
      warn: (m) => process.stderr.write(`warning: ${m}\n`),
    });
    const where = path.relative(process.cwd(), result.runDir) || result.runDir;
    process.stdout.write(`forked ${where}: ${result.linkedFiles} files shared with ${args['run-dir']} (hard links, no copies)\ncontinue it with: rft resume ${where}\n`);
  },
};
