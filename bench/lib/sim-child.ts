/**
 * Runs the SIMULATED policy server in a process of its own (an LLM endpoint is another process,
 * so its CPU time is not the loop's), with the fixed added latency per completion. Prints one
 * JSON line {url} on stdout once listening; exits when its stdin closes (the parent ended).
 *
 * usage: node sim-child.js <tasks.jsonl> <latencyMs>
 */
import { startSimServer } from '../../src/doubles/server.js';
import { loadInstances } from '../../src/tasks/load.js';

const [tasksFile, latencyArg] = process.argv.slice(2);
if (!tasksFile) throw new Error('usage: sim-child.js <tasks.jsonl> <latencyMs>');
const server = await startSimServer({ models: [], tasks: loadInstances(tasksFile), latencyMs: Number(latencyArg ?? 0) });
process.stdout.write(`${JSON.stringify({ url: server.url, pid: process.pid })}\n`);
const stop = () => {
  void server.close().finally(() => process.exit(0));
};
process.stdin.on('end', stop);
process.stdin.on('close', stop);
process.stdin.resume();
process.on('SIGTERM', stop);
