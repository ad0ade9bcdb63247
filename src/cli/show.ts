import type { CommandModule } from 'yargs';
import { showTrajectories } from '../report/show.js';
import { parseInstanceIds, withInstanceIds } from './arguments.js';

interface ShowArgs {
  'run-dir': string;
  iteration: number | undefined;
  eval: number | undefined;
  instance: string | undefined;
  sample: number | undefined;
  full: boolean;
  'instance-ids'?: string[];
}

export const showCommand: CommandModule<object, ShowArgs> = {
  command: 'show <run-dir>',
  describe: 'Read trajectories: list them, or print one (states, prompts, actions, patch, verdict, failing tests\' log)',
  builder: (y) =>
    withInstanceIds(y, 'list only these (each must have a trajectory in the phase)')
      .positional('run-dir', { type: 'string', demandOption: true })
      .option('iteration', { type: 'number', describe: 'train iteration k (default: the first recorded)' })
      .option('eval', { type: 'number', describe: 'the eval of model M_m instead of a train iteration' })
      .option('instance', { type: 'string', describe: 'instance id (without it: the list of instances)' })
      .option('sample', { type: 'number', describe: 'sample index (without it: the list of the instance\'s samples)' })
      .option('full', { type: 'boolean', default: false, describe: 'show long texts whole instead of collapsed' }),
  handler: (args) => {
    process.stdout.write(showTrajectories(args['run-dir'], { iteration: args.iteration, eval: args.eval, instance: args.instance, instanceIds: parseInstanceIds(args['instance-ids']), sample: args.sample, full: args.full }));
  },
};
