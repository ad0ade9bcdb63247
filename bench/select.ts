/**
 * Benchmark 4 — selection at scale: select + emit over a generated pool (bench/select-gen.ts),
 * streaming (src/sft/stream.ts) vs naive load-everything (the loop's emit step today), each in its
 * own child process (bench/select-worker.ts) so peak RSS is measured separately. Both run on a
 * small pool, where their outputs must be byte-identical, and on the full one.
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { envInt, envString } from './lib/env.js';
import { profileArgs } from './lib/sim.js';
import type { BenchTable, Cell } from './lib/table.js';
import { ensurePool, type PoolFiles } from './select-gen.js';
import type { WorkerResult } from './select-worker.js';

export interface SelectConfig {
  trajectories: number;
  small: number;
  contextKb: number;
  cap: number | null;
  poolDir: string;
  keepPool: boolean;
}

export function selectConfigFromEnv(): SelectConfig {
  const cap = envString('BENCH_SELECT_CAP', '2');
  return {
    trajectories: envInt('BENCH_SELECT_TRAJECTORIES', 100_000),
    small: envInt('BENCH_SELECT_SMALL', 4_000),
    contextKb: envInt('BENCH_SELECT_CONTEXT_KB', 1),
    cap: cap === 'none' ? null : Number(cap),
    poolDir: envString('BENCH_POOL_DIR', path.join(tmpdir(), 'rft-bench-pools')),
    keepPool: envInt('BENCH_KEEP_POOL', 0) === 1,
  };
}

interface Measured extends WorkerResult {
  /** Peak RSS as polled from /proc/<pid>/status (also for a child that crashed). */
  polledHwmMb: number;
}

/** Runs one worker and polls its VmHWM while it runs. */
function runWorker(mode: 'naive' | 'stream', pool: PoolFiles, outDir: string, cap: number | null): Promise<Measured> {
  const script = fileURLToPath(new URL('./select-worker.js', import.meta.url));
  rmSync(outDir, { recursive: true, force: true });
  const child = spawn(process.execPath, [...profileArgs(), script, mode, pool.trajectoriesFile, pool.verdictsFile, outDir, cap === null ? 'none' : String(cap)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let hwmKb = 0;
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) hwmKb = Math.max(hwmKb, Number(m[1]));
    } catch {
      // the child is gone
    }
  }, 25);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  const started = performance.now();
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearInterval(poll);
      const line = stdout.trim().split('\n').at(-1) ?? '';
      try {
        const result = JSON.parse(line) as WorkerResult;
        resolve({ ...result, polledHwmMb: hwmKb / 1024 });
      } catch {
        const why = stderr.trim().split('\n').filter((l) => l.trim() !== '').slice(-3).join(' | ').slice(0, 300);
        resolve({
          ok: false,
          seconds: (performance.now() - started) / 1000,
          cpuSeconds: 0,
          waitSeconds: 0,
          diskReadBytes: 0,
          maxRssMb: hwmKb / 1024,
          polledHwmMb: hwmKb / 1024,
          error: `the process died (${signal ?? `exit ${code}`}): ${why}`,
          kept: null,
          examples: null,
          trainSha: null,
          manifestSha: null,
          trainBytes: null,
        });
      }
    });
  });
}

export async function selectBench(config: SelectConfig = selectConfigFromEnv()): Promise<BenchTable> {
  const started = performance.now();
  const small = ensurePool(config.poolDir, { trajectories: config.small, contextKb: config.contextKb, seed: 1 });
  const full = ensurePool(config.poolDir, { trajectories: config.trajectories, contextKb: config.contextKb, seed: 1 });
  const out = path.join(config.poolDir, `out-${process.pid}`);
  try {
    // The full pool was just written (or reused): the streaming run goes first, while it is in the page cache.
    const fullStream = await runWorker('stream', full, path.join(out, 'full-stream'), config.cap);
    const fullNaive = await runWorker('naive', full, path.join(out, 'full-naive'), config.cap);
    const smallNaive = await runWorker('naive', small, path.join(out, 'small-naive'), config.cap);
    const smallStream = await runWorker('stream', small, path.join(out, 'small-stream'), config.cap);

    const gb = (bytes: number) => Number((bytes / 1024 ** 3).toFixed(2));
    const rss = (m: Measured) => Math.max(m.maxRssMb, m.polledHwmMb);
    const row = (label: string, version: string, n: number, pool: PoolFiles, m: Measured): Cell[] => [
      label,
      version,
      n,
      gb(pool.bytes),
      Number(m.seconds.toFixed(2)),
      Number(m.cpuSeconds.toFixed(2)),
      Number(m.waitSeconds.toFixed(2)),
      Math.round(rss(m)),
      m.kept,
      m.examples,
      m.ok ? 'ok' : `FAILED: ${m.error}`,
    ];
    const identical = smallNaive.ok && smallStream.ok && smallNaive.trainSha === smallStream.trainSha && smallNaive.manifestSha === smallStream.manifestSha;
    const fullAgree = !fullNaive.ok || (fullNaive.trainSha === fullStream.trainSha && fullNaive.manifestSha === fullStream.manifestSha);
    const ratios: Record<string, number> = {
      full_stream_seconds_over_20s: fullStream.seconds / 20,
      full_stream_rss_over_1GiB: rss(fullStream) / 1024,
      full_scan_gb_per_s: full.bytes / 1024 ** 3 / fullStream.seconds,
    };
    if (smallNaive.ok && smallStream.ok) {
      ratios.small_time_stream_over_naive = smallStream.seconds / smallNaive.seconds;
      ratios.small_rss_stream_over_naive = rss(smallStream) / rss(smallNaive);
    }
    if (fullNaive.ok) {
      ratios.full_time_stream_over_naive = fullStream.seconds / fullNaive.seconds;
      ratios.full_rss_stream_over_naive = rss(fullStream) / rss(fullNaive);
    }
    // What the process holds before it reads anything: the failed full-size naive run died right after loading its modules.
    const baselineMb = fullNaive.ok ? 0 : rss(fullNaive);
    const naivePerTrajectoryMb = smallNaive.ok ? Math.max(0, rss(smallNaive) - baselineMb) / config.small : null;
    const notes = [
      `Pool: ${config.trajectories.toLocaleString('en')} trajectories (${Math.ceil(config.trajectories / 30)} instances × 30 samples), ${gb(full.bytes)} GB of trajectory ledger, generated in ${full.reused ? '(reused from an earlier run)' : `${full.generatedSeconds.toFixed(0)} s`}; the small pool is ${config.small.toLocaleString('en')} trajectories (${gb(small.bytes)} GB). Cap ${config.cap ?? 'none'}, fewest calls first, call unit, max_tokens 10240.`,
      'naive = what run-loop.ts emitDataset did before issue 14 (bench/lib/whole-file.ts): the whole-file reader on both ledgers (the whole file as one string, every record parsed and held), poolFromRecords, selectTrajectories, accumulate, buildExamples, writeDataset (the whole train.jsonl as one string). stream = emitDatasetFromLedgers (src/sft/stream.ts): verdicts read line by line keeping only outcomes; the trajectory ledger scanned in 8 MB chunks with each record\'s calls cut out before JSON.parse (src/select/scan.ts); select; the kept records read back by offset one at a time; train.jsonl written and hashed as it goes.',
      `Outputs: at the small size train.jsonl and manifest.json are ${identical ? 'byte-identical' : 'DIFFERENT'} between the two versions${fullNaive.ok ? (fullAgree ? ', and at the full size too' : '; at the full size they DIFFER') : ''}.`,
      naivePerTrajectoryMb === null
        ? 'The naive version failed at the small size too.'
        : `Naive memory grows with the pool: ${(naivePerTrajectoryMb * 1024).toFixed(0)} KB of RSS per trajectory at the small size (above the ${Math.round(baselineMb)} MB of a process that has loaded its modules), i.e. ~${((naivePerTrajectoryMb * config.trajectories) / 1024).toFixed(1)} GiB for the full pool — if it could read the file at all: readLedgerFile reads the ledger with readFileSync (2 GiB limit) into one string (V8's limit is ~512 MB), so it fails on any trajectory ledger over ~0.5 GB (about ${Math.floor((0.5 * 1024 ** 3) / (small.bytes / config.small)).toLocaleString('en')} trajectories of this size).`,
    ];
    const target = (name: string, met: boolean | null, reason: string) => ({ name, met, reason });
    return {
      id: 'select',
      title: `4. Selection at scale: select + emit over ${config.trajectories.toLocaleString('en')} generated trajectories`,
      columns: ['pool', 'version', 'trajectories', 'ledger GB', 'time s', 'CPU s', 'CPU wait s', 'peak RSS MB', 'kept', 'examples', 'result'],
      rows: [
        row('full', 'stream', config.trajectories, full, fullStream),
        row('full', 'naive', config.trajectories, full, fullNaive),
        row('small', 'stream', config.small, small, smallStream),
        row('small', 'naive', config.small, small, smallNaive),
      ],
      ratios,
      targets: [
        target('streaming select + emit of the full pool under 20 s', fullStream.ok && fullStream.seconds < 20, fullStream.ok ? `${fullStream.seconds.toFixed(1)} s wall (${ratios.full_scan_gb_per_s!.toFixed(2)} GB/s of ledger): ${fullStream.cpuSeconds.toFixed(1)} s of CPU, ${fullStream.waitSeconds.toFixed(1)} s waiting for a CPU on the shared machine, ${(fullStream.diskReadBytes / 1024 ** 2).toFixed(0)} MB read from storage (the rest from the page cache)` : `failed: ${fullStream.error}`),
        target('streaming peak RSS under 1 GiB', fullStream.ok && rss(fullStream) < 1024, `${Math.round(rss(fullStream))} MB`),
        target(
          'naive load-everything on the full pool (reference)',
          fullNaive.ok ? fullNaive.seconds < 20 && rss(fullNaive) < 1024 : false,
          fullNaive.ok ? `${fullNaive.seconds.toFixed(1)} s, ${Math.round(rss(fullNaive))} MB` : `fails: ${fullNaive.error}`,
        ),
        target('same train.jsonl and manifest from both versions (small pool)', identical, identical ? `sha256 ${smallStream.trainSha?.slice(0, 12)}… both` : `naive ${smallNaive.trainSha ?? smallNaive.error}, stream ${smallStream.trainSha ?? smallStream.error}`),
      ],
      notes,
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    rmSync(out, { recursive: true, force: true });
    if (!config.keepPool) {
      rmSync(small.dir, { recursive: true, force: true });
      rmSync(full.dir, { recursive: true, force: true });
    }
  }
}
