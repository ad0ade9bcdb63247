import type { CommandModule } from 'yargs';
import { formatVerifierManifest, VerifierDataError, verifierDataFromRuns } from '../orm/from-runs.js';

interface DataArgs {
  'run-dir': string[];
  iteration: string;
  out: string | undefined;
  balance: boolean;
  'max-tokens': number | undefined;
  seed: number | undefined;
  json: boolean;
}

const dataCommand: CommandModule<object, DataArgs> = {
  command: 'data <run-dir..>',
  describe: 'Write verifier training data (chat JSONL, target YES/NO) from recorded pools: no LLM call, no container',
  builder: (y) =>
    y
      .positional('run-dir', { type: 'string', array: true, demandOption: true, describe: 'run directories whose pools to draw on (several: on- and off-policy mixed)' })
      .option('iteration', { type: 'string', default: 'all', describe: 'the iteration to draw on (0, 1, …) or all' })
      .option('out', { type: 'string', describe: 'folder for train.jsonl and manifest.json (default: <first run>/verifier)' })
      .option('balance', { type: 'boolean', default: true, describe: 'as many NO as YES examples (--no-balance keeps all)' })
      .option('max-tokens', { type: 'number', describe: "drop examples longer than this (default: the recipe's verifier.max_tokens, else 16384)" })
      .option('seed', { type: 'number', describe: "seed of the duplicate and balance picks (default: the run's seed)" })
      .option('json', { type: 'boolean', default: false, describe: 'print the manifest as JSON' }),
  handler: async (args) => {
    try {
      const iteration = args.iteration === 'all' ? 'all' : /^\d+$/.test(args.iteration) ? Number(args.iteration) : null;
      if (iteration === null) throw new VerifierDataError(`--iteration: ${JSON.stringify(args.iteration)} is not an iteration; give 0, 1, … or all`);
      if (args['max-tokens'] !== undefined && !(Number.isInteger(args['max-tokens']) && args['max-tokens'] > 0)) throw new VerifierDataError('--max-tokens: give a whole number of tokens above 0');
      const { manifest, outDir } = await verifierDataFromRuns({
        runDirs: args['run-dir'],
        iteration,
        balance: args.balance,
        ...(args.out !== undefined ? { outDir: args.out } : {}),
        ...(args['max-tokens'] !== undefined ? { maxTokens: args['max-tokens'] } : {}),
        ...(args.seed !== undefined ? { seed: args.seed } : {}),
      });
      process.stdout.write(args.json ? `${JSON.stringify(manifest, null, 2)}\n` : formatVerifierManifest(manifest, outDir));
    } catch (error) {
      if (!(error instanceof VerifierDataError)) throw error;
      console.error(`rft: ${error.message}`);
      process.exitCode = 2;
    }
  },
};

export const verifierCommand: CommandModule = {
  command: 'verifier <command>',
  describe: 'The learned verifier (outcome reward model) of best-of-n: its training data',
  builder: (y) => y.command(dataCommand).demandCommand(1, 'name a verifier command: data'),
  handler: () => {},
};
