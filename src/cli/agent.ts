import type { CommandModule } from 'yargs';
import { prepareInstance } from '../agent/instance-workspace.js';
import { runTrajectory } from '../agent/run.js';
import { OpenAiPolicy } from '../policy/client.js';
import { AgentSchema } from '../recipe/schema.js';
import { LABEL } from '../sandbox/container.js';
import { imageNameFor } from '../tasks/image-name.js';
import { readInstances } from '../tasks/read.js';
import { pickInstances } from './arguments.js';
import { verifyContextFrom, withSandboxOptions, type SandboxArgs } from './sandbox-options.js';
import type { Instance } from '../tasks/instance.js';
import { verifyPatch } from '../verify/run.js';

type AgentRunArgs = SandboxArgs & {
  tasks: string;
  instance: string;
  'base-url': string;
  model: string;
  'api-key-env'?: string;
  seed: number;
  temperature: number;
  protocol: 'json' | 'tools';
  verify: boolean;
  json: boolean;
};

const runCommand: CommandModule<object, AgentRunArgs> = {
  command: 'run',
  describe: 'Run one trajectory of the workflow agent on one instance, printing each state and action (for debugging)',
  builder: (y) =>
    withSandboxOptions(
      y
        .option('tasks', { type: 'string', demandOption: true, describe: 'instance file' })
        .option('instance', { type: 'string', demandOption: true, describe: 'instance id' })
        .option('base-url', { type: 'string', default: 'http://127.0.0.1:8931/v1', describe: 'OpenAI-compatible endpoint' })
        .option('model', { type: 'string', default: 'sim-base' })
        .option('api-key-env', { type: 'string', describe: 'name of the env variable holding the API key' })
        .option('seed', { type: 'number', default: 0 })
        .option('temperature', { type: 'number', default: 1.0 })
        .option('protocol', { choices: ['json', 'tools'] as const, default: 'json' as const })
        .option('verify', { type: 'boolean', default: false, describe: 'run the tests on the final patch in Docker' })
        .option('json', { type: 'boolean', default: false, describe: 'print the trajectory record as JSON at the end' }),
    ),
  handler: async (args) => {
    const [instance] = pickInstances(await readInstances(args.tasks), [args.instance], args.tasks, '--instance') as [Instance];
    const { ctx, specFor } = await verifyContextFrom(args, 'agent');
    const prepared = await prepareInstance(ctx.docker, imageNameFor(instance.instance_id, args.image), { [LABEL.run]: ctx.labels[LABEL.run]! });
    const apiKey = args['api-key-env'] ? (process.env[args['api-key-env']] ?? null) : null;
    const policy = new OpenAiPolicy({ baseUrl: args['base-url'], model: args.model, apiKey, timeoutMs: 600_000, maxRetries: 3 });
    const trajectory = await runTrajectory({
      ids: { run: 'agent-run', iteration: 0, instance_id: instance.instance_id, sample_index: 0 },
      seed: args.seed,
      instance,
      ...prepared,
      policy,
      agent: AgentSchema.parse({ protocol: args.protocol }),
      sampling: { temperature: args.temperature, top_p: 1 },
      onStep: (step) => process.stdout.write(`${step.invalid ? '  ! ' : '  '}${step.state.padEnd(18)} ${step.summary}${step.next ? `  → ${step.next}` : ''}\n`),
    });
    const outcome = trajectory.outcome;
    process.stdout.write(`\noutcome: ${outcome.status}${'reason' in outcome && outcome.reason ? ` (${outcome.reason})` : ''}; ${trajectory.llm_calls} LLM calls, ${trajectory.tokens.prompt + trajectory.tokens.completion} tokens\n`);
    process.stdout.write(trajectory.patch ? `\npatch:\n${trajectory.patch}` : '\npatch: (empty)\n');
    if (args.verify) {
      const { verdict } = await verifyPatch(ctx, instance, specFor(instance), trajectory.patch);
      process.stdout.write(`\nverdict: ${verdict.outcome}${verdict.reason ? ` (${verdict.reason})` : ''}\n`);
    }
    if (args.json) process.stdout.write(`${JSON.stringify(trajectory)}\n`);
  },
};

export const agentCommand: CommandModule = {
  command: 'agent <command>',
  describe: 'The workflow agent',
  builder: (y) => y.command(runCommand).demandCommand(1),
  handler: () => {},
};
