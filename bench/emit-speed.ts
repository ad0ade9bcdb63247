/**
 * Benchmark 8 (issue 25): the emit step, the check after it and `rft select --cap 1,2,none` on a
 * run directory of SWE-Gym shape (bench/scale-gen.ts), by today's code (another build: a worktree
 * of the base commit, tsc'd) and this code, one after the other in one run, each in a process of
 * its own (bench/lib/rss-run.ts: peak RSS and CPU at exit).
 *
 *   node dist-bench/bench/emit-speed.js <run-dir> <old dist> <out.json> [old steps] [new steps]
 *
 * Steps: a comma list of emit, check, select (default all; `-` none), so the slow side can be left
 * out at sizes where it cannot finish in the time at hand. The old check reads the old emit's
 * file, the new one the new emit's (same bytes: compared by sha256). `rft select` writes the run's
 * own dataset folders: each side's train.jsonl are hashed right after it.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './lib/fixtures.js';
import { runCommand, type CommandResult } from './scale.js';

const [runDirArg, oldDistArg, outFile, oldStepsArg, newStepsArg] = process.argv.slice(2);
if (!runDirArg || !oldDistArg || !outFile) throw new Error('usage: emit-speed.js <run-dir> <old dist> <out.json> [old steps] [new steps]');
const runDir = path.resolve(runDirArg);
const sides = { old: path.resolve(oldDistArg), new: path.join(ROOT, 'dist') } as const;
const stepsOf = (arg: string | undefined) => (arg === undefined ? ['emit', 'check', 'select'] : arg === '-' ? [] : arg.split(','));
const steps = { old: stepsOf(oldStepsArg), new: stepsOf(newStepsArg) };
const emitStep = path.join(ROOT, 'dist-bench/bench/lib/emit-step.js');

function sha256(file: string): string | null {
  if (!existsSync(file)) return null;
  const hash = createHash('sha256');
  const fd = openSync(file, 'r');
  const buffer = Buffer.alloc(1 << 22);
  for (let n = readSync(fd, buffer); n > 0; n = readSync(fd, buffer)) hash.update(buffer.subarray(0, n));
  closeSync(fd);
  return hash.digest('hex');
}

interface Row {
  step: string;
  side: 'old' | 'new';
  result: CommandResult;
  /** Bytes of train.jsonl written (emit, select: all caps) or read (check). */
  bytes: number;
  sha256: Record<string, string | null>;
}

const rows: Row[] = [];
const datasetsDir = path.join(runDir, 'iter-0', 'datasets');
for (const side of ['old', 'new'] as const) {
  const out = path.join(path.dirname(runDir), `emit-${side}`);
  const file = path.join(out, 'train.jsonl');
  for (const step of steps[side]) {
    process.stderr.write(`${new Date().toISOString()} ${side} ${step}\n`);
    let result: CommandResult;
    if (step === 'select') result = await runCommand(path.join(sides[side], 'cli/main.js'), ['select', runDir, '--iteration', '0', '--cap', '1,2,none']);
    else result = await runCommand(emitStep, [sides[side], runDir, step, out]);
    if (!result.ok) process.stderr.write(`  failed: ${result.error}\n`);
    const caps = ['cap-1', 'cap-2', 'cap-none'].map((c) => path.join(datasetsDir, c, 'train.jsonl'));
    const files = step === 'select' ? caps : [file];
    rows.push({
      step,
      side,
      result,
      bytes: files.reduce((sum, f) => sum + (existsSync(f) ? statSync(f).size : 0), 0),
      sha256: Object.fromEntries(files.map((f) => [path.relative(runDir, f).startsWith('..') ? 'train.jsonl' : path.relative(runDir, f), sha256(f)])),
    });
    process.stderr.write(`  ${result.seconds.toFixed(1)} s wall, ${result.cpuSeconds?.toFixed(1)} s CPU, ${result.maxRssMb?.toFixed(0)} MB\n`);
  }
}
writeFileSync(outFile, `${JSON.stringify({ runDir, rows }, null, 2)}\n`);

const f1 = (n: number | null | undefined) => (n === null || n === undefined ? '—' : n.toFixed(1));
const lines = ['| step | code | wall s | CPU s | peak RSS MB | train.jsonl MB | MB/s (wall) | sha256 |', '| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |'];
for (const r of rows) {
  const other = rows.find((o) => o.step === r.step && o.side !== r.side);
  const same = other ? JSON.stringify(other.sha256) === JSON.stringify(r.sha256) : null;
  const mb = r.bytes / 1e6;
  lines.push(
    `| ${r.step} | ${r.side === 'old' ? "today's code" : 'this code'} | ${f1(r.result.seconds)} | ${f1(r.result.cpuSeconds)} | ${f1(r.result.maxRssMb)} | ${mb.toFixed(0)} | ${(mb / r.result.seconds).toFixed(1)} | ${same === null ? Object.values(r.sha256).map((h) => h?.slice(0, 12)).join(' ') : same ? 'equal' : 'DIFFERENT'} |`,
  );
}
console.log(lines.join('\n'));
