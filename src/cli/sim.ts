import path from 'node:path';
import type { CommandModule } from 'yargs';
import { SIM_BASE_NAME, SimModelError, loadSimModels, type SimModel } from '../doubles/model.js';
import { startSimServer } from '../doubles/server.js';
import type { StartSimulatedPolicy } from '../policy/simulated.js';
import { readInstances } from '../tasks/read.js';

/*
 * The one place the CLI wires the test doubles (src/doubles/) in: `rft sim serve`, and the starter
 * `rft run`/`resume`/`sweep` hand the loop for `policy.kind: simulated`. Nothing else on the real
 * path imports src/doubles/ (test/doubles/import-graph.test.ts checks it).
 */

/** Starts the SIMULATED policy for a run's loop: no models but sim-base, then those the simulated trainer writes. */
export const startSimulatedPolicy: StartSimulatedPolicy = async ({ modelsDir, tasks }) => {
  const server = await startSimServer({ models: [], modelsDir, tasks });
  return { url: server.url, completions: () => server.requests.length, close: () => server.close() };
};

/** The doubles' errors that are the user's input (a bad model file), printed without a stack. */
export const SIM_USER_ERRORS = [SimModelError];

/** The package root: two levels up from dist/cli/ or src/cli/. */
const PACKAGE_ROOT = path.resolve(import.meta.dirname, '..', '..');
export const BUNDLED_TASKS = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'minigym', 'tasks.jsonl');

type ServeArgs = { port: number; host: string; models?: string; tasks: string };

const serveCommand: CommandModule<object, ServeArgs> = {
  command: 'serve',
  describe: 'Serve the SIMULATED policy (a test double, not a model; model sim-verifier is the SIMULATED verifier of best-of-n) on an OpenAI-compatible endpoint, in the foreground',
  builder: (y) =>
    y
      .option('port', { type: 'number', default: 8931, describe: 'port to listen on (0: any free port)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to bind' })
      .option('models', { type: 'string', describe: `directory of simulated model files (*.json); ${SIM_BASE_NAME} is always served` })
      .option('tasks', { type: 'string', default: BUNDLED_TASKS, describe: 'instance file (JSON/JSONL) whose gold patches the simulation knows' }),
  handler: async (args) => {
    let models: SimModel[] = [];
    if (args.models) {
      try {
        models = loadSimModels(args.models);
      } catch (err) {
        if (!(err instanceof SimModelError)) throw err;
        console.error(`rft: ${err.message}`);
        process.exit(2);
      }
    }
    const tasks = (await readInstances(args.tasks));
    const server = await startSimServer({ host: args.host, port: args.port, models, tasks });
    const names = [SIM_BASE_NAME, ...models.map((m) => m.name)].join(', ');
    process.stdout.write(`SIMULATED policy (test double) serving ${names} at ${server.url}\n`);
    process.stdout.write(`  knows ${tasks.length} task(s) from ${args.tasks}; Ctrl-C to stop\n`);
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        process.stdout.write(`${signal}: stopping the SIMULATED policy after ${server.requests.length} request(s)\n`);
        server.close().then(resolve, resolve);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  },
};

export const simCommand: CommandModule = {
  command: 'sim <command>',
  describe: 'The SIMULATED policy (test double) for tests and the demo',
  builder: (y) => y.command(serveCommand).demandCommand(1),
  handler: () => {},
};
