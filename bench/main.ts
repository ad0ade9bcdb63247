/**
 * `npm run bench`: the benchmarks, each printing one table of figures measured side by side in
 * one run, as ratios; the results go to bench/RESULTS.md with the machine and date.
 *
 * Environment (sizes; defaults are the full benchmark, ~10 minutes on 2 cores):
 *   BENCH_ONLY                 comma list of loop,scaling,dedup,select,tokens (default all)
 *   BENCH_LATENCY_MS           fixed latency the simulated policy adds per call (200)
 *   BENCH_LOOP_INSTANCES       bundled instances in the rollout, 0 = all (0 → 9)
 *   BENCH_LOOP_SAMPLES         samples per instance (30)
 *   BENCH_LLM_CONCURRENCY      LLM calls in flight in the rollout (16, the recipe default)
 *   BENCH_CONTAINERS           containers at once (2: the machine has 2 cores)
 *   BENCH_LOOP_IN_FLIGHT       instances-in-flight settings, side by side (the recipe default 2, and 4)
 *   BENCH_SCALING_LEVELS       LLM concurrencies (1,4,16,64)
 *   BENCH_SCALING_MIN_TRAJECTORIES / BENCH_SCALING_PER_SLOT / BENCH_SCALING_MAX_TRAJECTORIES
 *                              trajectories per level = clamp(PER_SLOT × C, MIN, MAX) (12 / 4 / 270)
 *   BENCH_DEDUP_INSTANCES      instances of the rollout's pool verified both ways (2)
 *   BENCH_SELECT_TRAJECTORIES  generated pool size (100000); BENCH_SELECT_SMALL (4000) for the
 *                              side-by-side run where the naive version still fits
 *   BENCH_SELECT_CONTEXT_KB    mean file context per call, KB (1: ~40 KB per trajectory)
 *   BENCH_SELECT_CAP           per-instance cap (2), or none
 *   BENCH_POOL_DIR             where pools are generated (os.tmpdir()/rft-bench-pools)
 *   BENCH_KEEP_POOL            1 keeps the generated pools for the next run (default: removed)
 *   BENCH_RESULTS              markdown output (bench/RESULTS.md); "none" writes nothing
 *   BENCH_JSON                 also write the tables as JSON to this file
 *   BENCH_CPU_PROF_DIR         child processes write V8 CPU profiles there
 *   BENCH_SCALE_TRAJECTORIES   benchmark 6's run size (73140, full SWE-Gym; smaller sizes are extrapolated)
 *   BENCH_SCALE_OLD            its whole-layout run for the code before issue 14 (1200)
 *   BENCH_OLD_DIST             dist/ of the code before issue 14 (unset: that side is not run)
 */
import { writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { dedupBench } from './dedup.js';
import { envString } from './lib/env.js';
import { ROOT } from './lib/fixtures.js';
import { checkTable, renderMarkdown, renderText, type BenchTable } from './lib/table.js';
import { loopBench } from './loop.js';
import { scaleBench } from './scale.js';
import { scalingBench } from './scaling.js';
import { selectBench } from './select.js';
import { tokensBench } from './tokens.js';

export const BENCH_IDS = ['loop', 'scaling', 'dedup', 'select', 'tokens', 'scale'] as const;

function machine(): string[] {
  const cpus = os.cpus();
  return [
    `- Date: ${new Date().toISOString()}`,
    `- Machine: ${cpus.length} cores (${cpus[0]?.model.trim() ?? 'unknown CPU'}), ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB memory, ${os.type()} ${os.release()}`,
    `- Node ${process.version}; load average at the end ${os.loadavg().map((l) => l.toFixed(1)).join(' / ')} (the machine is shared: other people's jobs run at the same time)`,
  ];
}

async function main(): Promise<void> {
  const only = new Set(envString('BENCH_ONLY', BENCH_IDS.join(',')).split(',').map((s) => s.trim()));
  for (const id of only) if (!(BENCH_IDS as readonly string[]).includes(id)) throw new Error(`BENCH_ONLY: unknown benchmark ${id} (known: ${BENCH_IDS.join(', ')})`);
  const started = performance.now();
  const tables: BenchTable[] = [];
  const show = (table: BenchTable) => {
    checkTable(table);
    tables.push(table);
    process.stdout.write(`\n${renderText(table)}\n`);
  };

  if (only.has('loop') || only.has('dedup') || only.has('tokens')) {
    const { table, runs } = await loopBench();
    if (only.has('loop')) show(table);
    const first = runs[0]!;
    if (only.has('dedup')) show(await dedupBench(first.trajectories, first.instances));
    if (only.has('tokens')) show(tokensBench(first.trajectories, { wallMs: first.wallMs, cpuMs: first.cpuMs }));
  }
  if (only.has('scaling')) show(await scalingBench());
  if (only.has('select')) show(await selectBench());
  if (only.has('scale')) show(await scaleBench());
  const order = (t: BenchTable) => BENCH_IDS.indexOf(t.id as (typeof BENCH_IDS)[number]);
  tables.sort((a, b) => order(a) - order(b));

  const total = (performance.now() - started) / 1000;
  process.stdout.write(`\nall benchmarks: ${total.toFixed(0)} s\n`);
  const results = envString('BENCH_RESULTS', path.join(ROOT, 'bench/RESULTS.md'));
  if (results !== 'none') {
    writeFileSync(results, renderResults(tables, total));
    process.stdout.write(`results written to ${path.relative(process.cwd(), results) || results}\n`);
  }
  const json = process.env.BENCH_JSON;
  if (json) writeFileSync(json, `${JSON.stringify(tables, null, 2)}\n`);
}

export function renderResults(tables: readonly BenchTable[], totalSeconds: number): string {
  const names: Record<string, string> = { loop: '1. Loop overhead', scaling: '2. Concurrency scaling', dedup: '3. Verification dedup', select: '4. Selection at scale', tokens: '5. Token counting' };
  const summary = tables.flatMap((t) =>
    t.targets.length === 0
      ? [`| ${names[t.id] ?? t.id} | (no target: figures only) | — |`]
      : t.targets.map((target) => `| ${names[t.id] ?? t.id} | ${target.name.replace(/\|/g, '\\|')} | ${target.met === null ? 'n/a' : target.met ? 'met' : '**not met**'} |`),
  );
  return [
    '# Benchmarks',
    '',
    'Generated by `npm run bench` (bench/main.ts; sizes from the environment variables listed there). Every',
    'figure of a table is measured in the same run, side by side, and the headline figures are ratios, because',
    'this machine is shared and its absolute speed changes from minute to minute.',
    '',
    ...machine(),
    `- Total benchmark time: ${totalSeconds.toFixed(0)} s`,
    '',
    '| benchmark | target | status |',
    '| --- | --- | --- |',
    ...summary,
    '',
    ...tables.map(renderMarkdown),
    ANALYSIS,
  ].join('\n');
}

/** What the profiles showed and what was changed; kept with the generated tables so a rerun keeps it. */
const ANALYSIS = `## Profiles, findings and fixes

Profiles: \`BENCH_CPU_PROF_DIR=/tmp/prof node --cpu-prof --cpu-prof-dir=/tmp/prof dist-bench/bench/main.js\` (the
loop process, the simulated policy and the selection workers each write a V8 CPU profile).

**Selection and emission (benchmark 4) — fixed, in src/select and src/sft.** The loop's emit step
(\`run-loop.ts emitDataset\`) loads both ledgers whole (\`readLedgerFile\`: \`readFileSync\` into one string,
every record parsed and zod-validated and held) and writes train.jsonl as one string. It cannot read a
trajectory ledger over ~512 MB (V8's string limit; past 2 GiB \`readFileSync\` refuses first) — a few
thousand trajectories — and its memory grows with the bytes of the pool. Added a streaming path whose output
is byte-identical (checked by the benchmark): \`src/select/scan.ts\` (\`forEachLine\`; \`scanPool\` reads the
verdict ledger keeping only key and outcome, and the trajectory ledger in 8 MB chunks, cutting each record's
\`calls\` out before JSON.parse — safe because the bytes \`"calls":[\` and \`],"transitions":\` cannot occur inside
a JSON string, with a full parse as fallback; \`readTrajectoriesAt\` reads kept records back by offset) and
\`src/sft/stream.ts\` (\`writeDatasetStream\`: examples built per trajectory with \`buildExamples\`, written and
hashed as they go, manifest from the merged counts; \`emitDatasetFromLedgers\`: scan → select → read back →
write). The first version took 15.4 s and 540 MB on the 100k pool; its profile pointed at the verdict index
holding whole verdicts (test maps), a sha256 per comparison in the cap's sort, a second patch hash per record
in the key function, canonicalJson for trajectory keys, and JSON.parse + zod of the verdicts' test maps. Fixed:
outcome-only verdict index (\`addVerdict\` keep function) read from each verdict's leading fields,
\`preferenceCompare\` hashes each entry once (\`src/select/select.ts\`), the pool passes its patch hash to the key
function (\`VerdictKeyOf\`), \`trajectoryKey\` uses JSON.stringify (same bytes for an array of primitives).
What remains is copying the ledger out of the page cache (\`read\`), JSON.parse of 100k record heads, zod, and
GC — about 6–7 s of CPU for 4 GB. To use it in the loop, \`emitDataset\` would call
\`emitDatasetFromLedgers\` with the iterations' ledger paths (src/loop is not changed here).

**Token counting (benchmark 5) — fixed, in src/util/tokens.ts.** js-tiktoken is pure JavaScript (~1.4 MB of
text per CPU-second here) and counting at record time was about a quarter of the loop process's CPU. Most of
what a trajectory records was counted before (system prompts re-sent on every call, the samples of a task
sharing prompts), so \`countTokens\` now goes through \`TokenCounter\`, a count cache bounded to 16 M characters
(least recently used out); the counts are unchanged.

**Loop (benchmarks 1 and 2) — reported, not changed (src/loop, src/agent, src/store belong to others).**
1. The loop runs on one thread and this 2-core machine is shared: the main thread's run-queue delay
   (/proc/self/schedstat) during the rollout is as large as its CPU time or larger, which stretches every
   call past ℓ. Its own CPU per call (~6–8 ms) goes to tree-sitter (code index per instance, and
   \`currentSpans\` re-parsing an edited file on every call), the HTTP client (undici/openai), zod
   (Ledger.append validates every record), GC and, before the cache, js-tiktoken.
2. Instance-major sampling launches all samples of an instance at once behind one FIFO limit, so they
   advance in lockstep: the first trajectory of an instance ends late in its sampling span and its patches
   arrive in a burst, leaving containers idle while every LLM slot is busy, then the reverse. Giving
   priority to calls of trajectories that are further along (or bounding the samples started per instance)
   would release patches progressively.
3. An instance's slot is held until its last verification ends, so with I = 2 a slot often samples nothing
   while it waits for containers; running I = 4 side by side measures what that costs. Releasing the
   sampling slot when sampling ends (and bounding images on disk separately) would remove it.
4. \`Ledger.append\` calls \`fsyncSync\` on the event loop for every trajectory and verdict; under disk load
   that blocks all trajectories in flight (tens of ms at the tail here).
5. \`rollout\` keeps every trajectory of the phase in memory and returns them; \`Ledger.open\` reads the
   existing ledger with \`readLedgerFile\`: at SWE-Gym scale (tens of thousands of trajectories, GBs) a resume
   fails on the 512 MB string limit before sampling starts, and a fresh run holds GBs.
6. Scaling (benchmark 2) falls below 0.8 × linear once the loop's thread cannot get a CPU for the next
   response: the columns show its CPU share and its wait for a CPU per level.
`;

await main();
