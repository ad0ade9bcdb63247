/**
 * The agent's own CPU per LLM call, on the loop's thread alone (/proc/thread-self/schedstat):
 * prompt building, budgets, token counts, parsing of actions, the HTTP client and the record, with
 * the code index in its worker (not counted) and the SIMULATED policy in a child process (not
 * counted). 108 trajectories of the 9 bundled instances (12 seeds each), 16 at once, ℓ = 50 ms.
 * The ledger is not written (benchmark 1 counts it). Thread CPU is the process's own work, so the
 * figure holds on a loaded machine better than a wall time does.
 *
 *   node dist-bench/bench/agent-cpu.js [<another rft checkout, built with tsc -p bench/tsconfig.json>]
 *
 * With a checkout, its code is measured instead (before/after comparisons: alternate the two).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { ROOT } from './lib/fixtures.js';

type Fixtures = typeof import('./lib/fixtures.js');

async function main(): Promise<void> {
  const root = process.argv[2] ? path.resolve(process.argv[2]) : ROOT;
  const load = async <T>(rel: string): Promise<T> => (await import(pathToFileURL(path.join(root, 'dist-bench', rel)).href)) as T;
  const { startSimChild } = await load<typeof import('./lib/sim.js')>('bench/lib/sim.js');
  const { agentDefaults, bundledInstances, TASKS_FILE } = await load<Fixtures>('bench/lib/fixtures.js');
  const { OpenAiPolicy } = await load<typeof import('../src/policy/client.js')>('src/policy/client.js');
  const { runTrajectory } = await load<typeof import('../src/agent/run.js')>('src/agent/run.js');
  const { WorkerCodeIndex } = await load<typeof import('../src/agent/worker-index.js')>('src/agent/worker-index.js');
  const { PythonSpanParser } = await load<typeof import('../src/agent/python-spans.js')>('src/agent/python-spans.js');
  const { countTokens } = await load<typeof import('../src/util/tokens.js')>('src/util/tokens.js');
  const threadCpuMs = () => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;

  const sim = await startSimChild(TASKS_FILE, 50);
  const policy = new OpenAiPolicy({ baseUrl: sim.url, model: 'sim-base', apiKey: null, timeoutMs: 600_000, maxRetries: 2 });
  const parser = await PythonSpanParser.create();
  countTokens('the encoder is built once per process, not per call');
  const prepared = [];
  for (const instance of bundledInstances(0)) {
    const dir = path.join(root, 'test/fixtures/minigym/repos', instance.repo.split('/')[1]!);
    const files = new Map<string, string>();
    for (const rel of readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()) {
      const full = path.join(dir, rel);
      if (statSync(full).isFile() && !rel.includes('__pycache__')) files.set(rel.split(path.sep).join('/'), readFileSync(full, 'utf8'));
    }
    prepared.push({ instance, files, index: await WorkerCodeIndex.start(files, parser) });
  }
  const jobs = prepared.flatMap((p) => Array.from({ length: 12 }, (_, s) => ({ ...p, s })));
  let calls = 0;
  let next = 0;
  const cpu0 = threadCpuMs();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next < jobs.length) {
        const { instance, files, index, s } = jobs[next++]!;
        const ids = { run: 'bench', iteration: 0, instance_id: instance.instance_id, sample_index: s };
        const t = await runTrajectory({ ids, seed: 500 + s, instance, files, index, parser, policy, agent: agentDefaults(), sampling: { temperature: 1, top_p: 1 } });
        calls += t.calls.length;
      }
    }),
  );
  const cpuMs = threadCpuMs() - cpu0;
  const wallS = (performance.now() - t0) / 1000;
  for (const p of prepared) await p.index.close();
  await sim.stop();
  console.log(JSON.stringify({ code: root, trajectories: jobs.length, calls, thread_cpu_ms: Math.round(cpuMs), cpu_ms_per_call: +(cpuMs / calls).toFixed(2), wall_s: +wallS.toFixed(1) }));
}

await main();
