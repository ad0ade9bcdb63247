import type { CommandModule } from 'yargs';
import { ALL_BACKENDS, type SftBackend, type TrainOn } from '../sft/backends.js';
import { formatCheckReport } from '../sft/check.js';
import { checkDatasetFile, DatasetCheckError } from '../sft/check-dataset.js';
import { TokenizerError } from '../sft/tokenizer.js';

interface CheckArgs {
  file: string;
  tokenizer?: string;
  backend?: string | string[];
  'train-on'?: TrainOn;
  'max-length'?: number;
  json: boolean;
}

const sftCheckCommand: CommandModule<object, CheckArgs> = {
  command: 'check <file>',
  describe: 'Report what each trainer will train on in an SFT file: trained tokens per policy, truncated or skipped lines, format errors',
  builder: (y) =>
    y
      .positional('file', { type: 'string', demandOption: true, describe: 'a train.jsonl (its manifest.json, if beside it, gives the defaults)' })
      .option('tokenizer', { type: 'string', describe: 'cl100k_base, o200k_base, or a Hugging Face tokenizer folder (tokenizer.json + tokenizer_config.json)' })
      .option('backend', { type: 'string', choices: ALL_BACKENDS, describe: 'backend(s) whose reading of the file as written is checked (repeatable; default: the manifest\'s, else all)' })
      .option('train-on', { type: 'string', choices: ['target', 'assistant'] as const, describe: "the policy the file was written for (default: the manifest's)" })
      .option('max-length', { type: 'number', describe: "the trainers' maximum length (default: the manifest's max_tokens, else 10240)" })
      .option('json', { type: 'boolean', default: false, describe: 'print the report as JSON' }),
  handler: (args) => {
    const backends = (args.backend === undefined ? [] : Array.isArray(args.backend) ? args.backend : [args.backend]) as SftBackend[];
    try {
      const report = checkDatasetFile({ file: args.file, tokenizer: args.tokenizer ?? null, backends, train_on: args['train-on'] ?? null, max_length: args['max-length'] ?? null });
      process.stdout.write(args.json ? `${JSON.stringify(report, null, 2)}\n` : formatCheckReport(report, args.file));
      if (report.errors.length > 0) process.exitCode = 1;
    } catch (error) {
      if (!(error instanceof DatasetCheckError || error instanceof TokenizerError)) throw error;
      console.error(`rft: ${error.message}`);
      process.exitCode = 2;
    }
  },
};

export const sftCommand: CommandModule = {
  command: 'sft <command>',
  describe: 'SFT data: check what each trainer will train on',
  builder: (y) => y.command(sftCheckCommand).demandCommand(1),
  handler: () => {},
};
