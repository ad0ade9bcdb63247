import type { Argv } from 'yargs';
import { connectEngine } from '../sandbox/engine.js';
import { LABEL } from '../sandbox/container.js';
import { parseByteSize } from '../sandbox/limits.js';
import { imageNameFor } from '../tasks/image-name.js';
import type { VerifyContext } from '../verify/run.js';
import { buildEvalSpec, type EvalSpec, type PythonEnvMode } from '../verify/spec.js';
import type { Instance } from '../tasks/instance.js';
import { ArgumentError, requirePositiveInts } from './arguments.js';

export interface SandboxArgs {
  image: string;
  memory: string;
  cpus: number;
  pids: number;
  timeout: number;
  concurrency: number;
  'python-env': PythonEnvMode;
}

/** Options shared by the commands that run task containers outside a run (validate, verify). */
export function withSandboxOptions<T>(y: Argv<T>): Argv<T & SandboxArgs> {
  return y
    .option('image', { type: 'string', default: 'swebench', describe: 'image name: swebench, swebench-hub, swegym or a template with {id}, {id_lower}, {id_swebench}, {id_swegym}' })
    .option('memory', { type: 'string', default: '2g', describe: 'memory limit per container' })
    .option('cpus', { type: 'number', default: 1, describe: 'CPUs per container' })
    .option('pids', { type: 'number', default: 512, describe: 'process limit per container' })
    .option('timeout', { type: 'number', default: 1800, describe: 'seconds one test run may take' })
    .option('concurrency', { type: 'number', default: 2, describe: 'containers at once' })
    .option('python-env', {
      choices: ['auto', 'conda', 'system'] as const,
      default: 'auto' as const,
      describe: "run the tests in the image's conda env testbed (conda), as they are (system), or conda where /opt/miniconda3 exists (auto)",
    }) as unknown as Argv<T & SandboxArgs>;
}

export async function verifyContextFrom(args: SandboxArgs, purpose: string): Promise<{ ctx: VerifyContext; specFor: (i: Instance) => EvalSpec }> {
  requirePositiveInts(args, ['pids', 'timeout', 'concurrency']);
  if (!(args.cpus > 0)) throw new ArgumentError(`--cpus: ${args.cpus} is not a number of CPUs above 0; e.g. --cpus 1 or --cpus 0.5`);
  const ctx: VerifyContext = {
    docker: await connectEngine(),
    imageFor: (instance) => imageNameFor(instance.instance_id, args.image),
    limits: { memoryBytes: parseByteSize(args.memory), cpus: args.cpus, pids: args.pids },
    labels: { [LABEL.run]: `${purpose}-${process.pid}` },
  };
  return { ctx, specFor: (instance) => buildEvalSpec(instance, { timeout_s: args.timeout, pythonEnv: args['python-env'] }) };
}
