import path from 'node:path';
import type { CommandModule } from 'yargs';
import { collectGarbage } from '../loop/gc.js';
import { connectEngine, defaultEngineUrl } from '../sandbox/engine.js';

interface GcArgs {
  'dry-run': boolean;
  'runs-dir': string;
  docker: string;
}

export const gcCommand: CommandModule<object, GcArgs> = {
  command: 'gc',
  describe: 'Remove the containers of runs that are not running (a run runs iff a live process holds its lock); nothing else is touched',
  builder: (y) =>
    y
      .option('dry-run', { type: 'boolean', default: false, describe: 'say what would be removed, remove nothing' })
      .option('runs-dir', { type: 'string', default: 'runs', describe: 'where runs are looked up for containers without an rft.run_dir label' })
      .option('docker', { type: 'string', default: defaultEngineUrl(), describe: 'Docker engine address (unix://, tcp://, ssh://…)' }),
  handler: async (args) => {
    const docker = await connectEngine(args.docker);
    const result = await collectGarbage(docker, { runsDir: path.resolve(args['runs-dir']), dryRun: args['dry-run'] });
    const verb = args['dry-run'] ? 'would remove' : 'removed';
    for (const d of result.decisions) {
      const failed = result.failures.find((f) => f.id === d.container.id);
      const what = d.action === 'keep' ? 'kept' : failed ? 'could not remove' : verb;
      process.stdout.write(`${what.padEnd(16)} ${d.container.id.slice(0, 12)}  ${d.container.run}  (${d.container.state}; ${d.reason})${failed ? `: ${failed.message}` : ''}\n`);
    }
    const removable = result.decisions.filter((d) => d.action === 'remove').length;
    process.stdout.write(
      args['dry-run']
        ? `dry run: ${removable} container(s) of runs not running would be removed, ${result.kept} kept\n`
        : `${result.removed} container(s) of runs not running removed, ${result.kept} kept\n`,
    );
    if (result.failures.length > 0) process.exitCode = 1;
  },
};
