import type { CommandModule } from 'yargs';
import { DEFAULT_ENDPOINT, fetchDataset } from '../tasks/fetch.js';

interface FetchArgs {
  dataset: string;
  split: string;
  config: string;
  out: string;
  endpoint: string;
}

/** `rft tasks fetch <dataset>`: download a SWE-bench-format dataset split as a JSONL instance file. */
export const tasksFetchCommand: CommandModule<object, FetchArgs> = {
  command: 'fetch <dataset>',
  describe: 'Download a SWE-bench-format dataset split from Hugging Face (e.g. SWE-Gym/SWE-Gym-Lite) as a JSONL instance file',
  builder: (y) =>
    y
      .positional('dataset', { type: 'string', demandOption: true, describe: 'Hugging Face dataset, e.g. SWE-Gym/SWE-Gym-Lite or princeton-nlp/SWE-bench_Verified' })
      .option('split', { type: 'string', default: 'train', describe: 'split to download (SWE-bench uses test/dev)' })
      .option('config', { type: 'string', default: 'default', describe: 'dataset configuration' })
      .option('out', { type: 'string', demandOption: true, describe: 'JSONL file to write (replaced atomically, only if every row is good)' })
      .option('endpoint', { type: 'string', default: DEFAULT_ENDPOINT, describe: 'dataset viewer API (for mirrors and tests)' }),
  handler: async (args) => {
    const result = await fetchDataset({
      dataset: args.dataset,
      split: args.split,
      config: args.config,
      endpoint: args.endpoint,
      out: args.out,
      token: process.env.HF_TOKEN ?? null,
      onProgress: process.stderr.isTTY ? (read, total) => process.stderr.write(`\r${read}/${total} rows`) : undefined,
    });
    if (process.stderr.isTTY) process.stderr.write('\n');
    process.stdout.write(`wrote ${result.count} instances of ${result.dataset} (${result.config}/${result.split}) to ${result.out}\n`);
  },
};
