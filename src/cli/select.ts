import type { CommandModule } from 'yargs';
import { AblateError, ablateJson, formatAblateReport, parseCapList, rebuildDatasets, type SelectOrder } from '../loop/ablate.js';

interface SelectArgs {
  'run-dir': string;
  iteration: number;
  /** A repeated --cap gives several values. */
  cap: string | string[];
  dedup?: boolean;
  order?: SelectOrder;
  json: boolean;
  tokenizer?: string | string[];
}

export const selectCommand: CommandModule<object, SelectArgs> = {
  command: 'select <run-dir>',
  describe: "Rebuild an iteration's SFT datasets for other caps from its recorded pool (no LLM, no container) and compare them",
  builder: (y) =>
    y
      .positional('run-dir', { type: 'string', demandOption: true, describe: 'the run directory, e.g. runs/demo' })
      .option('iteration', { type: 'number', demandOption: true, describe: 'the iteration whose sampled pool is used (0, 1, …)' })
      .option('cap', { type: 'string', demandOption: true, describe: 'caps to compare, comma-separated, in the order of the rows: --cap 1,2,3,none' })
      .option('dedup', { type: 'boolean', describe: "one success per distinct normalised patch (default: the recipe's; --no-dedup turns it off)" })
      .option('order', { type: 'string', choices: ['fewest_calls', 'random'] as const, describe: "which successes a cap keeps first (default: the recipe's)" })
      .option('tokenizer', { type: 'string', describe: 'also count kept examples with this tokenizer: an encoding or a Hugging Face tokenizer folder (repeatable)' })
      .option('json', { type: 'boolean', default: false, describe: 'print machine-readable JSON (the rows and the folders written)' }),
  handler: async (args) => {
    try {
      const result = await rebuildDatasets({
        runDir: args['run-dir'],
        iteration: args.iteration,
        caps: parseCapList(args.cap),
        ...(args.dedup !== undefined ? { dedup: args.dedup } : {}),
        ...(args.order !== undefined ? { order: args.order } : {}),
        ...(args.tokenizer !== undefined ? { tokenizers: Array.isArray(args.tokenizer) ? args.tokenizer : [args.tokenizer] } : {}),
      });
      process.stdout.write(args.json ? `${JSON.stringify(ablateJson(result), null, 2)}\n` : formatAblateReport(result));
    } catch (error) {
      if (!(error instanceof AblateError)) throw error;
      console.error(`rft: ${error.message}`);
      process.exitCode = 2;
    }
  },
};
