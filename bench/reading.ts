/**
 * Issue 23, reading a run at SWE-Gym size: `rft status`, `rft show` of one trajectory and `rft
 * report` on a generated run (bench/scale-gen.ts), each in a process of its own with its peak RSS,
 * this code beside today's code (BENCH_OLD_DIST: the dist of a worktree of the code before) on the
 * same run directory. This code's commands run twice: the first call builds what it keeps (status's
 * phase summary, show's offset index, report's page hashes), the second reads them.
 *
 *   node dist-bench/bench/reading.js <run-dir> <old dist> <out.json>
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './lib/fixtures.js';
import { runCommand, type CommandResult } from './scale.js';

const [runDir, oldDist, out] = process.argv.slice(2);
if (!runDir || !oldDist || !out) throw new Error('usage: reading.js <run-dir> <old dist> <out.json>');
const newCli = path.join(ROOT, 'dist/cli/main.js');
const oldCli = path.join(oldDist, 'cli/main.js');
const instance = process.env.BENCH_SHOW_INSTANCE ?? 'benchgym__scale-00600';
const rows: Array<{ command: string; code: string; call: string; result: CommandResult }> = [];
const record = (command: string, code: string, call: string, result: CommandResult) => {
  rows.push({ command, code, call, result });
  process.stderr.write(`${command} | ${code} | ${call}: ${result.seconds.toFixed(1)} s, ${result.cpuSeconds?.toFixed(1)} s CPU, ${Math.round(result.maxRssMb ?? 0)} MB ${result.ok ? 'ok' : result.error}\n`);
  writeFileSync(out, JSON.stringify(rows, null, 2));
};

const show = ['show', runDir, '--iteration', '0', '--instance', instance, '--sample', '7'];
record('rft status', "today's code", 'first', await runCommand(oldCli, ['status', runDir]));
record('rft status', 'this code', 'first (summary missing: rebuilt)', await runCommand(newCli, ['status', runDir]));
record('rft status', 'this code', 'second (summary kept)', await runCommand(newCli, ['status', runDir]));
record('rft show (one trajectory)', "today's code", 'first', await runCommand(oldCli, show));
record('rft show (one trajectory)', 'this code', 'first (index built)', await runCommand(newCli, show));
record('rft show (one trajectory)', 'this code', 'second (index kept)', await runCommand(newCli, show));
const oldOut = mkdtempSync(path.join(os.tmpdir(), 'rft-bench-report-old-'));
const newOut = mkdtempSync(path.join(os.tmpdir(), 'rft-bench-report-new-'));
record('rft report', "today's code", 'first (a page per trajectory)', await runCommand(oldCli, ['report', runDir, '--out', oldOut]));
record('rft report', 'this code', 'first (default --pages auto)', await runCommand(newCli, ['report', runDir, '--out', newOut]));
record('rft report', 'this code', 'second (pages reused)', await runCommand(newCli, ['report', runDir, '--out', newOut]));
record('rft report --pages none', 'this code', 'first', await runCommand(newCli, ['report', runDir, '--out', newOut, '--pages', 'none']));
rmSync(oldOut, { recursive: true, force: true });
rmSync(newOut, { recursive: true, force: true });
