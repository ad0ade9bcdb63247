/**
 * Runs a Node ES module as if it were the program (`node rss-run.js <out.json> <module> args…`)
 * and, when the process exits, writes its peak RSS and CPU time to <out.json>: how benchmark 6
 * measures the real `rft` commands' memory from outside (Node gives a process only its own rusage).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [out, script, ...args] = process.argv.slice(2);
if (!out || !script) throw new Error('usage: rss-run.js <out.json> <module> [args…]');
process.argv = [process.argv[0]!, path.resolve(script), ...args];
process.on('exit', (code) => {
  const usage = process.resourceUsage();
  writeFileSync(out, JSON.stringify({ code, maxRssMb: usage.maxRSS / 1024, cpuSeconds: (usage.userCPUTime + usage.systemCPUTime) / 1e6 }));
});
await import(pathToFileURL(path.resolve(script)).href);
