#!/usr/bin/env node
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { agentCommand } from './agent.js';
import { recipeCommand } from './recipe.js';
import { doctorCommand } from './doctor.js';
import { reportCommand } from './report.js';
import { showCommand } from './show.js';
import { resumeCommand, runCommand } from './run.js';
import { statusCommand } from './status.js';
import { selectCommand } from './select.js';
import { forkCommand } from './fork.js';
import { gcCommand } from './gc.js';
import { sweepCommand } from './sweep.js';
import { schemaCommand } from './schema.js';
import { sftCommand } from './sft.js';
import { simCommand } from './sim.js';
import { tasksCommand } from './tasks.js';
import { verifyCommand } from './verify.js';
import { verifierCommand } from './verifier.js';
import { reportFailure } from './errors.js';
import { refuseNonNumbers } from './arguments.js';

try {
  await yargs(hideBin(process.argv))
    .scriptName('rft')
    .usage('$0 <command>\n\nIterative rejection-sampling fine-tuning of software-engineering agents.')
    .command(runCommand)
    .command(resumeCommand)
    .command(statusCommand)
    .command(reportCommand)
    .command(showCommand)
    .command(selectCommand)
    .command(sftCommand)
    .command(forkCommand)
    .command(gcCommand)
    .command(sweepCommand)
    .command(recipeCommand)
    .command(doctorCommand)
    .command(schemaCommand)
    .command(tasksCommand)
    .command(verifyCommand)
    .command(verifierCommand)
    .command(agentCommand)
    .command(simCommand)
    .middleware((argv) => refuseNonNumbers(argv, hideBin(process.argv)))
    .demandCommand(1, 'name a command (see the list above)')
    .strict()
    .recommendCommands()
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((message, error, y) => {
      if (error) reportFailure(error);
      y.showHelp('error');
      console.error(`\n${message}`);
      process.exit(2);
    })
    .parseAsync();
} catch (error) {
  reportFailure(error);
}
