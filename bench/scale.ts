/**
 * Benchmark 6: the real `rft` commands on a run directory of SWE-Gym shape (bench/scale-gen.ts),
 * each in a process of its own, with its peak RSS: the loop's select/emit on resume (`rft resume`:
 * the resume scan of the ledgers, then selection and the streamed train.jsonl), `rft select --cap
 * 1,2,none`, `rft report`, `rft status`. Side by side: the same commands of the code before issue 14
 * ("today's code", built from the merge base into BENCH_OLD_DIST) on a whole-layout run directory
 * of the first BENCH_SCALE_OLD trajectories — as large as it still reads — and this code on that same
 * directory. Also the ledger bytes per trajectory of the two layouts on the same records.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { envInt, envString } from './lib/env.js';
import { ROOT } from './lib/fixtures.js';
import type { BenchTable } from './lib/table.js';
import { ensureScaleRun, type ScaleRun } from './scale-gen.js';

/** Full SWE-Gym: 2,438 instances × 30 samples. */
export const SWE_GYM_TRAJECTORIES = 73_140;

export interface CommandResult {
  ok: boolean;
  code: number | null;
  seconds: number;
  /** rft resume only: from the sampling line to the dataset line (resume scan + select + emit). */
  emitSeconds: number | null;
  maxRssMb: number | null;
  cpuSeconds: number | null;
  error: string | null;
}

export function runCommand(cli: string, args: string[], marks?: { from: RegExp; to: RegExp }): Promise<CommandResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'rft-bench-scale-'));
  const out = path.join(dir, 'usage.json');
  const wrapper = path.join(ROOT, 'dist-bench/bench/lib/rss-run.js');
  const started = performance.now();
  let from: number | null = null;
  let to: number | null = null;
  let stderr = '';
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--max-old-space-size=4096', wrapper, out, cli, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      const now = performance.now();
      if (marks && from === null && marks.from.test(stderr)) from = now;
      if (marks && to === null && marks.to.test(stderr)) to = now;
      if (stderr.length > 1_000_000) stderr = stderr.slice(-100_000);
    });
    child.on('close', (code) => {
      const seconds = (performance.now() - started) / 1000;
      const usage = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as { maxRssMb: number; cpuSeconds: number }) : null;
      rmSync(dir, { recursive: true, force: true });
      const emitSeconds = from !== null && to !== null ? (to - from) / 1000 : null;
      const ok = marks ? emitSeconds !== null : code === 0;
      const error = ok ? null : (stderr.split('\n').filter((l) => /rft:|Error|error/.test(l)).slice(-2).join(' ') || `exit ${code}`).slice(0, 240);
      resolve({ ok, code, seconds, emitSeconds, maxRssMb: usage?.maxRssMb ?? null, cpuSeconds: usage?.cpuSeconds ?? null, error });
    });
  });
}

const EMIT_MARKS = { from: /iteration 0: sampling/, to: /iteration 0: dataset/ };

async function commands(cli: string, runDir: string): Promise<Array<[string, CommandResult]>> {
  return [
    ['loop select/emit on resume (rft resume)', await runCommand(cli, ['resume', runDir], EMIT_MARKS)],
    ['rft select --cap 1,2,none', await runCommand(cli, ['select', runDir, '--iteration', '0', '--cap', '1,2,none'])],
    ['rft report', await runCommand(cli, ['report', runDir])],
    ['rft status', await runCommand(cli, ['status', runDir])],
  ];
}

const f1 = (n: number | null) => (n === null ? '—' : Number(n.toFixed(1)));
const kb = (n: number) => Number((n / 1024).toFixed(1));

export async function scaleBench(): Promise<BenchTable> {
  const started = performance.now();
  const trajectories = envInt('BENCH_SCALE_TRAJECTORIES', SWE_GYM_TRAJECTORIES);
  const oldCount = envInt('BENCH_SCALE_OLD', 1200);
  const poolDir = envString('BENCH_POOL_DIR', path.join(os.tmpdir(), 'rft-bench-pools'));
  const oldDist = envString('BENCH_OLD_DIST', '');
  const run: ScaleRun = ensureScaleRun(poolDir, trajectories, oldCount);
  const newCli = path.join(ROOT, 'dist/cli/main.js');
  const scale = SWE_GYM_TRAJECTORIES / run.trajectories;

  const fresh = await commands(newCli, run.runDir);
  const newOnOld = await commands(newCli, run.oldRunDir);
  const oldCli = oldDist ? path.join(oldDist, 'cli/main.js') : null;
  const oldOnOld = oldCli && existsSync(oldCli) ? await commands(oldCli, run.oldRunDir) : null;

  const rows: BenchTable['rows'] = [];
  const add = (pool: string, version: string, n: number, results: Array<[string, CommandResult]>) => {
    for (const [command, r] of results) {
      rows.push([command, pool, version, n, f1(r.seconds), f1(r.emitSeconds), f1(r.cpuSeconds), r.maxRssMb === null ? '—' : Math.round(r.maxRssMb), r.ok ? 'ok' : `FAILED: ${r.error}`]);
    }
  };
  add('compact', 'this code', run.trajectories, fresh);
  add('whole', 'this code', run.oldTrajectories, newOnOld);
  if (oldOnOld) add('whole', "today's code", run.oldTrajectories, oldOnOld);

  const emit = fresh[0]![1];
  const maxRss = Math.max(...fresh.map(([, r]) => r.maxRssMb ?? 0));
  // Time extrapolates linearly in the records read; memory holds a few hundred bytes per record
  // (pool entries, locations) above what a process needs anyway: extrapolated from the two sizes.
  const emitAtFull = emit.emitSeconds === null ? null : emit.emitSeconds * scale;
  const newSmallRss = newOnOld.map(([, r]) => r.maxRssMb ?? 0);
  const rssPerTrajectory = fresh.map(([, r], i) => ((r.maxRssMb ?? 0) - newSmallRss[i]!) / Math.max(1, run.trajectories - run.oldTrajectories));
  const rssAtFull = fresh.map(([, r], i) => (r.maxRssMb ?? 0) + Math.max(0, rssPerTrajectory[i]!) * (SWE_GYM_TRAJECTORIES - run.trajectories));
  const maxRssAtFull = Math.max(...rssAtFull);
  const wholePer = run.wholeBytes / run.trajectories;
  const compactPer = run.compactBytes / run.trajectories;
  const full = run.trajectories >= SWE_GYM_TRAJECTORIES;
  const at = full ? 'measured at full size' : `measured at ${run.trajectories.toLocaleString('en')} trajectories (1/${scale.toFixed(1)} of full SWE-Gym), extrapolated ×${scale.toFixed(1)}`;

  return {
    id: 'scale',
    title: `6. The rft commands at SWE-Gym size: ${run.trajectories.toLocaleString('en')} trajectories (${run.instances} instances × 30), ${run.meanCalls.toFixed(1)} calls, prompts ${run.meanPromptKb.toFixed(1)} KB mean / ${run.maxPromptKb.toFixed(1)} KB max`,
    columns: ['command', 'layout', 'code', 'trajectories', 'wall s', 'emit step s', 'CPU s', 'peak RSS MB', 'result'],
    rows,
    ratios: {
      whole_over_compact_bytes: wholePer / compactPer,
      emit_seconds_full_over_60s: (emitAtFull ?? 999) / 60,
      max_rss_full_over_1GiB: maxRssAtFull / 1024,
      max_rss_measured_over_1GiB: maxRss / 1024,
    },
    targets: [
      { name: 'ledger bytes per trajectory ≥ 5× fewer than whole records', met: wholePer / compactPer >= 5, reason: `${kb(wholePer)} KB whole vs ${kb(compactPer)} KB compact (${kb(run.recordBytes / run.trajectories)} KB of records + ${kb(run.blobBytes / run.trajectories)} KB of texts): ${(wholePer / compactPer).toFixed(1)}× on the same ${run.trajectories.toLocaleString('en')} records` },
      { name: 'emit (loop select/emit on resume) < 60 s at full SWE-Gym size', met: emitAtFull !== null && emitAtFull < 60, reason: emitAtFull === null ? `did not finish: ${emit.error}` : `${emit.emitSeconds!.toFixed(1)} s for ${run.trajectories.toLocaleString('en')} trajectories (resume scan + select + streamed train.jsonl; the whole process ${emit.seconds.toFixed(1)} s); ${at}: ${emitAtFull.toFixed(1)} s` },
      { name: 'peak RSS < 1 GiB for each command at full SWE-Gym size', met: maxRssAtFull < 1024, reason: `largest measured ${Math.round(maxRss)} MB (${fresh.map(([c, r]) => `${c.split(' (')[0]}: ${Math.round(r.maxRssMb ?? 0)} MB`).join(', ')}); ${full ? '' : `growth per trajectory measured between ${run.oldTrajectories.toLocaleString('en')} and ${run.trajectories.toLocaleString('en')} trajectories, extrapolated to 73,140: largest ${Math.round(maxRssAtFull)} MB`}` },
      {
        name: "today's code on the same commands (reference, where it still runs)",
        met: null,
        reason: oldOnOld
          ? `on ${run.oldTrajectories.toLocaleString('en')} trajectories in the whole layout (${(run.wholeBytes / run.trajectories * run.oldTrajectories / 1024 ** 2).toFixed(0)} MB of ledger): ${oldOnOld.map(([c, r]) => `${c.split(' (')[0]} ${r.ok ? `${Math.round(r.maxRssMb ?? 0)} MB` : 'failed'}`).join(', ')}; it reads a ledger into one string, so it cannot read a whole-layout ledger over ~512 MB (~${Math.floor((512 * 1024 ** 2) / wholePer).toLocaleString('en')} trajectories of this size; full SWE-Gym would be ${((wholePer * SWE_GYM_TRAJECTORIES) / 1024 ** 3).toFixed(1)} GB) nor the compact layout at all`
          : 'not run (BENCH_OLD_DIST unset)',
      },
    ],
    notes: [
      `Generated ${run.reused ? '(reused from an earlier run)' : `in ${run.generatedSeconds.toFixed(0)} s`} through the real writer (TrajectoryLedger); the whole-layout bytes are JSON.stringify of the same records. Per trajectory: ${kb(wholePer)} KB whole, ${kb(compactPer)} KB compact; a full SWE-Gym iteration: ${((wholePer * SWE_GYM_TRAJECTORIES) / 1024 ** 3).toFixed(1)} GB whole, ${((compactPer * SWE_GYM_TRAJECTORIES) / 1024 ** 3).toFixed(1)} GB compact. Each instance's 25 candidate files are its own (no text shared between instances: conservative).`,
      "rft resume stops after the emit step here (the recipe's fine-tune command is `false`); 'emit step' is the time from its sampling line (the resume scan of the ledgers starts) to its dataset line. Each command runs in its own process, peak RSS from getrusage at exit (bench/lib/rss-run.ts).",
    ],
    seconds: (performance.now() - started) / 1000,
  };
}
