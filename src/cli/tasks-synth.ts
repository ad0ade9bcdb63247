import type { CommandModule } from 'yargs';
import { readInstances } from '../tasks/read.js';
import { ArgumentError, parseInstanceIds, pickInstances, requirePositiveInts, withInstanceIds } from './arguments.js';
import { withSandboxOptions, type SandboxArgs } from './sandbox-options.js';

type SynthArgs = SandboxArgs & {
  from: string;
  out: string;
  'instance-ids'?: string[];
  limit: number;
  'max-candidates': number;
  seed: number;
  strategies?: string;
  'trace-scope': 'instance' | 'all';
  'max-fail-to-pass': number;
  'max-fail-fraction': number;
  'policy-url'?: string;
  model?: string;
  'api-key-env': string;
  'max-minutes'?: number;
};

export const tasksSynthCommand: CommandModule<object, SynthArgs> = {
  command: 'synth',
  describe: 'Make validated tasks by injecting bugs into the repositories of graded instances (images rft-synth/…, --image synth to use them)',
  builder: (y) =>
    withSandboxOptions(withInstanceIds(y, 'use only these source instances'))
      .option('from', { type: 'string', demandOption: true, describe: 'source task file: each instance image at its base commit is one repository environment' })
      .option('out', { type: 'string', demandOption: true, describe: 'task file to write (JSONL); its ledger and yield report go beside it' })
      .option('limit', { type: 'number', default: 10, describe: 'tasks per environment at most' })
      .option('max-candidates', { type: 'number', default: 60, describe: 'candidate bugs tried per environment at most' })
      .option('seed', { type: 'number', default: 0, describe: 'the same seed gives the same tasks in the same order' })
      .option('strategies', { type: 'string', describe: 'comma-separated strategies (procedural, llm_rewrite, history_revert); default: all that can run' })
      .option('trace-scope', { choices: ['instance', 'all'] as const, default: 'instance' as const, describe: "trace the source instance's test files, or the repository's whole suite" })
      .option('max-fail-to-pass', { type: 'number', default: 20, describe: 'reject a bug that breaks more tests than this' })
      .option('max-fail-fraction', { type: 'number', default: 0.6, describe: 'reject a bug that breaks more than this share of the tests it runs (with 4 or more)' })
      .option('policy-url', { type: 'string', describe: 'OpenAI-compatible endpoint for the LLM strategy and issue texts (else: template texts, no llm_rewrite)' })
      .option('model', { type: 'string', describe: 'model name at --policy-url' })
      .option('api-key-env', { type: 'string', default: 'OPENAI_API_KEY', describe: 'environment variable holding the endpoint key' })
      .option('max-minutes', { type: 'number', describe: 'start no candidate after this many minutes; the tasks so far are written, and the same command later goes on' })
      .option('timeout', { type: 'number', default: 300, describe: 'seconds one test run may take (a bug that runs longer is rejected)' })
      .option('concurrency', { type: 'number', default: 1, describe: 'environments (containers) at once' }) as never,
  handler: async (args) => {
    requirePositiveInts(args, ['limit', 'max-candidates', 'max-fail-to-pass', 'concurrency', 'timeout', 'pids']);
    if (!Number.isInteger(args.seed)) throw new ArgumentError(`--seed: ${args.seed} is not a whole number; e.g. --seed 1`);
    if (!(args['max-fail-fraction'] > 0 && args['max-fail-fraction'] <= 1)) throw new ArgumentError(`--max-fail-fraction: ${args['max-fail-fraction']} is not above 0 and at most 1; e.g. --max-fail-fraction 0.5`);
    if ((args['policy-url'] === undefined) !== (args.model === undefined)) throw new ArgumentError('--policy-url and --model go together; give both or neither');
    if (args['max-minutes'] !== undefined && !(args['max-minutes'] > 0)) throw new ArgumentError(`--max-minutes: ${args['max-minutes']} is not above 0; e.g. --max-minutes 30`);
    const sources = pickInstances(await readInstances(args.from), parseInstanceIds(args['instance-ids']), args.from);
    const { runSynthCommand } = await import('../synth/command-run.js');
    await runSynthCommand({
      sources,
      out: args.out,
      image: args.image,
      limits: { memory: args.memory, cpus: args.cpus, pids: args.pids },
      pythonEnv: args['python-env'],
      limit: args.limit,
      maxCandidates: args['max-candidates'],
      seed: args.seed,
      strategies: args.strategies?.split(',').map((s) => s.trim()).filter((s) => s !== '') ?? null,
      traceScope: args['trace-scope'],
      bounds: { maxFailToPass: args['max-fail-to-pass'], maxFailFraction: args['max-fail-fraction'] },
      timeoutS: args.timeout,
      concurrency: args.concurrency,
      maxMinutes: args['max-minutes'] ?? null,
      policy: args['policy-url'] && args.model ? { baseUrl: args['policy-url'], model: args.model, apiKeyEnv: args['api-key-env'] } : null,
    });
  },
};
