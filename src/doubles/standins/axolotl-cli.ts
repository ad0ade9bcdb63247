/** Entry of the SIMULATED `axolotl` stand-in (test double); see axolotl.ts. */
import { axolotlCli } from './axolotl.js';
import { runStandin } from './trainer-common.js';

await runStandin('axolotl', (argv) => {
  for (const line of axolotlCli(argv)) process.stdout.write(`${line}\n`);
});
