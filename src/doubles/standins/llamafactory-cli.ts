/** Entry of the SIMULATED `llamafactory-cli` stand-in (test double); see llamafactory.ts. */
import { llamafactoryCli } from './llamafactory.js';
import { runStandin } from './trainer-common.js';

await runStandin('llamafactory-cli', (argv) => {
  for (const line of llamafactoryCli(argv)) process.stdout.write(`${line}\n`);
});
