import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';

// Real processes race over one stale lock, round after round, through the compiled lock module
// (the one `rft run` uses). Each child takes the round's lock at the same instant and keeps what it
// got until the round is counted, so two winners in a round mean two holders at once.
const lockModule = path.resolve(import.meta.dirname, '../../dist/store/lock.js');
const child = `
import { acquireLock } from ${JSON.stringify(lockModule)};
import { createInterface } from 'node:readline';
let held = null;
for await (const line of createInterface({ input: process.stdin })) {
  held?.release();
  held = null;
  const [file, at] = line.split(' ');
  while (performance.timeOrigin + performance.now() < Number(at)); // start together, or staggered by a fraction of a millisecond
  try {
    held = acquireLock(file);
    process.stdout.write('won\\n');
  } catch (err) {
    process.stdout.write('lost ' + err.message.split('\\n')[0] + '\\n');
  }
}
`;

interface Racer {
  proc: ChildProcessWithoutNullStreams;
  next(): Promise<string>;
}

function racer(): Racer {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', child]);
  const lines: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  createInterface({ input: proc.stdout }).on('line', (line) => {
    const w = waiting.shift();
    if (w) w(line);
    else lines.push(line);
  });
  return { proc, next: () => new Promise((resolve) => (lines.length > 0 ? resolve(lines.shift()!) : waiting.push(resolve))) };
}

/** A pid that is surely not running: a child that has exited and been reaped. */
async function deadPid(): Promise<number> {
  const gone = spawn('true');
  await new Promise((resolve) => gone.once('exit', resolve));
  return gone.pid!;
}

function lockPid(file: string): number | null {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { pid: number }).pid;
  } catch {
    return null;
  }
}

describe('stale lock takeover with racing processes', () => {
  it('exactly one of 2-4 processes wins each of 50 rounds over a stale lock (dead pid, empty, unreadable)', async () => {
    const racers = [racer(), racer(), racer(), racer()];
    const dead = await deadPid();
    const winnersPerRound: number[] = [];
    const losses: string[] = [];
    const holders: boolean[] = [];
    const leftovers: string[] = [];
    const base = mkdtempSync(path.join(tmpdir(), 'rft-lock-race-'));
    try {
      for (let round = 0; round < 50; round++) {
        const file = path.join(mkdtempSync(path.join(base, `r${round}-`)), 'lock');
        const kind = round % 5;
        if (kind === 3) writeFileSync(file, '');
        else if (kind === 4) writeFileSync(file, '{"pid": 12');
        else writeFileSync(file, JSON.stringify({ pid: dead, host: hostname(), start_ticks: '1', acquired_at: '2026-01-01T00:00:00.000Z' }));
        if (kind >= 3) utimesSync(file, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000)); // past the grace period
        const n = 2 + (round % 3);
        const at = Date.now() + 40;
        const these = racers.slice(0, n);
        // Staggered starts (0 to 1.2 ms apart, by round) put one taker inside another's takeover.
        const stagger = (round % 7) * 0.2;
        these.forEach((r, i) => r.proc.stdin.write(`${file} ${at + i * stagger}\n`));
        const replies = await Promise.all(these.map((r) => r.next()));
        winnersPerRound.push(replies.filter((r) => r === 'won').length);
        losses.push(...replies.filter((r) => r !== 'won'));
        // The lock names a winner, and no side file of the takeover is left behind.
        holders.push(these.some((r) => lockPid(file) === r.proc.pid));
        leftovers.push(...readdirSync(path.dirname(file)).filter((name) => name !== 'lock'));
      }
    } finally {
      for (const r of racers) r.proc.stdin.end();
    }
    expect(winnersPerRound).toEqual(Array(50).fill(1));
    expect(losses.filter((l) => !/another rft process/.test(l))).toEqual([]);
    expect(holders).toEqual(Array(50).fill(true));
    expect(leftovers).toEqual([]);
  });
});
