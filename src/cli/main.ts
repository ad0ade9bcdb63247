#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import type { CommandModule } from 'yargs';
import { refuseNonNumbers } from './arguments.js';

type AnyCommand = CommandModule<object, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * The commands by name, each loaded only when it runs: loading every command's modules (the
 * OpenAI client, dockerode, tokenizers, parsers…) costs over a second before any work, which is
 * most of `rft status` and `rft show` on a run of any size. `rft --help`, no command and an
 * unknown one (for its suggestion) load them all. Listed in the order `rft --help` shows.
 */
const COMMANDS: readonly [name: string, load: () => Promise<AnyCommand[]>][] = [
  ['run', async () => [(await import('./run.js')).runCommand]],
  ['resume', async () => [(await import('./run.js')).resumeCommand]],
  ['status', async () => [(await import('./status.js')).statusCommand]],
  ['report', async () => [(await import('./report.js')).reportCommand]],
  ['show', async () => [(await import('./show.js')).showCommand]],
  ['select', async () => [(await import('./select.js')).selectCommand]],
  ['sft', async () => [(await import('./sft.js')).sftCommand]],
  ['fork', async () => [(await import('./fork.js')).forkCommand]],
  ['gc', async () => [(await import('./gc.js')).gcCommand]],
  ['sweep', async () => [(await import('./sweep.js')).sweepCommand]],
  ['recipe', async () => [(await import('./recipe.js')).recipeCommand]],
  ['doctor', async () => [(await import('./doctor.js')).doctorCommand]],
  ['schema', async () => [(await import('./schema.js')).schemaCommand]],
  ['tasks', async () => [(await import('./tasks.js')).tasksCommand]],
  ['verify', async () => [(await import('./verify.js')).verifyCommand]],
  ['verifier', async () => [(await import('./verifier.js')).verifierCommand]],
  ['agent', async () => [(await import('./agent.js')).agentCommand]],
  ['sim', async () => [(await import('./sim.js')).simCommand]],
  ['worker', async () => [(await import('./worker.js')).workerCommand]],
];

/** The command the arguments name (their first word that is not an option), if rft has it. */
function namedCommand(argv: readonly string[]): string | null {
  const first = argv.find((a) => !a.startsWith('-'));
  return first !== undefined && COMMANDS.some(([name]) => name === first) ? first : null;
}

try {
  const argv = hideBin(process.argv);
  const named = namedCommand(argv);
  const commands = (await Promise.all(COMMANDS.filter(([name]) => named === null || name === named).map(([, load]) => load()))).flat();
  let parser = yargs(argv);
  for (const command of commands) parser = parser.command(command);
  await parser
    .scriptName('rft')
    .usage('$0 <command>\n\nIterative rejection-sampling fine-tuning of software-engineering agents.')
    .middleware((parsed) => refuseNonNumbers(parsed, argv))
    .demandCommand(1, 'name a command (see the list above)')
    .strict()
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((message, error, y) => {
      // A command's own error goes to the catch below (reportFailure, loaded only then).
      if (error) throw error;
      y.showHelp('error');
      console.error(`\n${message}`);
      process.exit(2);
    })
    .parseAsync();
} catch (error) {
  // Loaded only on failure: it names every error class rft has, and with them their modules.
  const { reportFailure } = await import('./errors.js');
  reportFailure(error);
}
