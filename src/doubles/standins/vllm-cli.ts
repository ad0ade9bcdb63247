import { vllmMain } from './vllm.js';

/** Entry of the SIMULATED `vllm` stand-in (test/standins/bin/vllm): a test double, see vllm.ts. */
const code = await vllmMain(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
process.exitCode = code;
