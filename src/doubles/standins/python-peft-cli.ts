/** Entry of the SIMULATED `python-peft` stand-in (test double); see python-peft.ts. */
import { pythonPeft } from './python-peft.js';
import { runStandin } from './trainer-common.js';

await runStandin('python-peft', (argv) => {
  for (const line of pythonPeft(argv)) process.stdout.write(`${line}\n`);
});
