import { linkSync, mkdtempSync, readFileSync, statSync, truncateSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TrajectorySchema, type Trajectory } from '../../src/agent/trajectory.js';
import { chunkText } from '../../src/store/blobs.js';
import { Ledger, LedgerCorruptError } from '../../src/store/ledger.js';
import { blobsFileOf, readTrajectories, readTrajectoriesAt, readTrajectoryHeads, TrajectoryLedger } from '../../src/store/trajectories.js';
import { makeTrajectory } from '../sft/records.js';

function freshFile(): string {
  return path.join(mkdtempSync(path.join(tmpdir(), 'rft-traj-')), 'trajectories.jsonl');
}

/** Opens the compact ledger at `file`, appends the records, closes it. */
function appendAll(file: string, ...records: Trajectory[]): void {
  const ledger = TrajectoryLedger.open(file);
  for (const r of records) ledger.append(r);
  ledger.close();
}

/** Code-like text: numbered lines of one "file" of an instance. */
function code(file: string, lines: number, from = 0): string {
  return Array.from({ length: lines }, (_, i) => `    def f_${file}_${from + i}(self, x):  # line ${from + i} of ${file}\n`).join('');
}

/**
 * A trajectory shaped like the agent's at realistic size: the same system prompt and issue in
 * every call and sample, a user prompt whose file context grows call by call (files inserted in
 * path order, so new text lands in the middle), and text a JSON writer must escape.
 */
function bigTrajectory(instance: string, sample: number, calls = 8): Trajectory {
  const base = makeTrajectory({ instance_id: instance, sample_index: sample, calls: Array.from({ length: calls }, () => 'PlanToCode' as const) });
  const issue = `<issue>\n${code(`issue_${instance}`, 40)}</issue>`;
  const files = ['a.py', 'm.py', 'z.py', 'c.py', 'q.py', 'e.py', 'k.py', 'b.py'];
  return TrajectorySchema.parse({
    ...base,
    calls: base.calls.map((call, i) => {
      const context = files
        .slice(0, i + 1)
        .sort()
        .map((f) => `<file path="${f}">\n${code(`${instance}/${f}`, 60 + sample)}</file>\n`)
        .join('');
      return {
        ...call,
        messages: [
          { role: 'system', content: `You plan code changes.\n${code('system', 30)}` },
          { role: 'user', content: `${issue}\n\n${context}` },
          ...(i > 0 ? [{ role: 'assistant', content: `{"action":"step ${i - 1}","quote":"\\"x\\" é 🙂 \ud800 lone"}` }] : []),
        ],
        completion: { role: 'assistant', content: `{"action":"step ${i}","sample":${sample},"pad":"${'w'.repeat(80)}"}` },
      };
    }),
  });
}

function sizeOf(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}

describe('the compact trajectory ledger', () => {
  it('gives back exactly the records appended: whole, heads only, and read back by location', () => {
    const file = freshFile();
    const records = [bigTrajectory('inst-a', 0), bigTrajectory('inst-a', 1), makeTrajectory({ instance_id: 'tiny', protocol: 'tools', calls: ['SearchCode', { state: 'IdentifyCode', invalid: 'bad' }, 'IdentifyCode'] })];
    appendAll(file, ...records);
    expect([...readTrajectories(file)]).toEqual(records);
    const heads = [...readTrajectoryHeads(file)];
    expect(heads.map((h) => h.head)).toEqual(records.map(({ calls: _calls, ...head }) => head));
    const backwards = [...heads].reverse().map((h) => h.at);
    expect([...readTrajectoriesAt(file, backwards)]).toEqual([...records].reverse());
    // The texts live in the blob file; the ledger line refers to them.
    expect(readFileSync(file, 'utf8')).not.toContain('You plan code changes.');
    expect(readFileSync(blobsFileOf(file), 'utf8')).toContain('You plan code changes.');
  });

  it('stores each distinct text once: at least 5× fewer bytes than whole records on an instance\'s samples', () => {
    const file = freshFile();
    const records = Array.from({ length: 10 }, (_, s) => bigTrajectory('inst-b', s % 3));
    appendAll(file, ...records);
    const whole = records.reduce((n, r) => n + Buffer.byteLength(`${JSON.stringify(r)}\n`), 0);
    const compact = sizeOf(file) + sizeOf(blobsFileOf(file));
    expect(whole / compact).toBeGreaterThan(5);
    expect([...readTrajectories(file)]).toEqual(records);
  });

  it('reads ledgers written whole (older run directories), and a ledger mixing both layouts', () => {
    const file = freshFile();
    const old = Ledger.open(file, TrajectorySchema).ledger;
    const first = bigTrajectory('inst-c', 0);
    old.append(first);
    old.close();
    expect(readFileSync(file, 'utf8')).toContain('You plan code changes.');
    const second = bigTrajectory('inst-c', 1);
    appendAll(file, second);
    expect([...readTrajectories(file)]).toEqual([first, second]);
  });

  it('a crash between the texts and the record, or in either, loses only that record; the next appends read back whole', () => {
    const file = freshFile();
    const a = bigTrajectory('inst-d', 0);
    appendAll(file, a);
    const recordEnd = sizeOf(file);
    const blobsEnd = sizeOf(blobsFileOf(file));
    // Texts of a second record written, its line torn; then a torn text after them.
    appendAll(file, bigTrajectory('inst-d', 7));
    truncateSync(file, recordEnd + 25);
    appendFileSync(blobsFileOf(file), '"half a te');
    expect(sizeOf(blobsFileOf(file))).toBeGreaterThan(blobsEnd);
    const torn: number[] = [];
    const resumed = TrajectoryLedger.open(file, (bytes) => torn.push(bytes));
    expect(torn).toEqual([25]);
    const b = bigTrajectory('inst-d', 1);
    resumed.append(b);
    resumed.close();
    expect([...readTrajectories(file)]).toEqual([a, b]);
  });

  it('a fork shares both files by hard link; its first append copies them, the parent is untouched', () => {
    const parent = freshFile();
    appendAll(parent, bigTrajectory('inst-e', 0));
    const before = [readFileSync(parent), readFileSync(blobsFileOf(parent))];
    const fork = path.join(mkdtempSync(path.join(tmpdir(), 'rft-fork-')), 'trajectories.jsonl');
    linkSync(parent, fork);
    linkSync(blobsFileOf(parent), blobsFileOf(fork));
    appendAll(fork, bigTrajectory('inst-e', 1));
    expect(statSync(fork).ino).not.toBe(statSync(parent).ino);
    expect(statSync(blobsFileOf(fork)).ino).not.toBe(statSync(blobsFileOf(parent)).ino);
    expect([readFileSync(parent), readFileSync(blobsFileOf(parent))]).toEqual(before);
    expect([...readTrajectories(fork)].map((t) => t.sample_index)).toEqual([0, 1]);
    expect([...readTrajectories(parent)].map((t) => t.sample_index)).toEqual([0]);
  });

  it('a record pointing at texts that are not there is an error naming the ledger line', () => {
    const file = freshFile();
    appendAll(file, bigTrajectory('inst-f', 0));
    truncateSync(blobsFileOf(file), 100);
    expect(() => [...readTrajectories(file)]).toThrow(LedgerCorruptError);
    expect(() => [...readTrajectories(file)]).toThrow(`${file}:1:`);
    // Heads need no texts.
    expect([...readTrajectoryHeads(file)]).toHaveLength(1);
  });
});

describe('content-defined chunks', () => {
  it('join back to the text, and a block inserted in the middle leaves the other chunks as they were', () => {
    const before = code('x', 400) + code('y', 400);
    const after = code('x', 400) + code('new', 50) + code('y', 400);
    for (const text of [before, after, 'short', '', `${'🙂'.repeat(20_000)}`]) expect(chunkText(text).join('')).toBe(text);
    const a = new Set(chunkText(before));
    const b = chunkText(after);
    const shared = b.filter((c) => a.has(c)).reduce((n, c) => n + c.length, 0);
    expect(shared / before.length).toBeGreaterThan(0.9);
    // A surrogate pair is never split by a cut on length.
    for (const c of chunkText('🙂'.repeat(20_000))) expect(c.length % 2).toBe(0);
  });
});
