import type { CommandModule } from 'yargs';
import { DEFAULT_ENDPOINT, fetchDataset } from '../tasks/fetch.js';
import { DEFAULT_HUB_ENDPOINT, fetchHubFiles } from '../tasks/fetch-hub.js';

interface FetchArgs {
  dataset: string;
  split: string;
  config: string;
  out: string;
  api: string | undefined;
  endpoint: string | undefined;
  revision: string;
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
      .option('api', {
        type: 'string',
        choices: ['rows', 'files'],
        describe: 'rows: the dataset viewer\'s /rows API; files: the hub\'s files (Parquet/JSONL, as huggingface-cli downloads them). Default: files when HF_ENDPOINT is set, else rows',
      })
      .option('revision', { type: 'string', default: 'main', describe: 'branch, tag or commit of the dataset repository (files API)' })
      .option('endpoint', { type: 'string', describe: `server to ask (default: rows ${DEFAULT_ENDPOINT}; files $HF_ENDPOINT or ${DEFAULT_HUB_ENDPOINT})` }),
  handler: async (args) => {
    const hfEndpoint = process.env.HF_ENDPOINT || undefined;
    const api = args.api ?? (hfEndpoint ? 'files' : 'rows');
    const token = process.env.HF_TOKEN ?? null;
    const result =
      api === 'files'
        ? await fetchHubFiles({
            dataset: args.dataset,
            split: args.split,
            config: args.config,
            revision: args.revision,
            endpoint: args.endpoint ?? hfEndpoint ?? DEFAULT_HUB_ENDPOINT,
            out: args.out,
            token,
            onProgress: process.stderr.isTTY ? (message) => process.stderr.write(`\r\x1b[2K${message}`) : undefined,
          })
        : await fetchDataset({
            dataset: args.dataset,
            split: args.split,
            config: args.config,
            endpoint: args.endpoint ?? DEFAULT_ENDPOINT,
            out: args.out,
            token,
            onProgress: process.stderr.isTTY ? (read, total) => process.stderr.write(`\r${read}/${total} rows`) : undefined,
          });
    if (process.stderr.isTTY) process.stderr.write('\n');
    process.stdout.write(`wrote ${result.count} instances of ${result.dataset} (${result.config}/${result.split}) to ${result.out}\n`);
  },
};
