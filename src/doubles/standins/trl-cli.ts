/** Entry of the SIMULATED `trl` stand-in (test double); see trl.ts. */
import { trlSft } from './trl.js';
import { runStandin } from './trainer-common.js';

await runStandin('trl', (argv) => {
  const { log } = trlSft(argv);
  for (const line of log) process.stdout.write(`${line}\n`);
});
