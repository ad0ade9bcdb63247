import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { countLines, LedgerCorruptError, ledgerLines, ledgerParts, readRecords, shardLedgerFile } from '../../src/store/ledger.js';
import { locateInstance } from '../../src/store/trajectory-index.js';
import { readTrajectories, readTrajectoriesAt, readTrajectoryHeads, TrajectoryLedger } from '../../src/store/trajectories.js';
import { makeTrajectory } from '../sft/records.js';

const Row = z.object({ n: z.number() }).strict();

function ledgerDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'rft-parts-'));
}

describe('a ledger with shard parts (a cluster run: iter-<k>/shards/<i>/)', () => {
  it('is read as the named file, then each shard part by number; a part torn mid-write yields its whole lines only', () => {
    const dir = ledgerDir();
    const file = path.join(dir, 'verdicts.jsonl');
    writeFileSync(file, '{"n":1}\n');
    for (const [shard, text] of [[10, '{"n":10}\n'], [2, '{"n":20}\n{"n":21}\n{"n":2'], [0, '{"n":0}\n']] as const) {
      mkdirSync(path.dirname(shardLedgerFile(file, shard)), { recursive: true });
      writeFileSync(shardLedgerFile(file, shard), text);
    }
    mkdirSync(path.join(dir, 'shards', '5')); // a shard that recorded nothing yet
    mkdirSync(path.join(dir, 'shards', 'logs'));
    expect(ledgerParts(file).map((p) => path.relative(dir, p))).toEqual(['verdicts.jsonl', 'shards/0/verdicts.jsonl', 'shards/2/verdicts.jsonl', 'shards/10/verdicts.jsonl']);
    expect([...readRecords(file, Row)].map((r) => r.n)).toEqual([1, 0, 20, 21, 10]);
    expect(countLines(file)).toBe(5);
    const lines = [...ledgerLines(file)].map((l) => ({ file: l.file && path.relative(dir, l.file), line: l.line }));
    expect(lines).toEqual([{ file: undefined, line: 1 }, { file: 'shards/0/verdicts.jsonl', line: 1 }, { file: 'shards/2/verdicts.jsonl', line: 1 }, { file: 'shards/2/verdicts.jsonl', line: 2 }, { file: 'shards/10/verdicts.jsonl', line: 1 }]);
  });

  it('names the part and its line when a record there is bad', () => {
    const dir = ledgerDir();
    const file = path.join(dir, 'verdicts.jsonl');
    const part = shardLedgerFile(file, 1);
    mkdirSync(path.dirname(part), { recursive: true });
    writeFileSync(part, '{"n":1}\n{"n":"x"}\n');
    expect(() => [...readRecords(file, Row)]).toThrow(LedgerCorruptError);
    expect(() => [...readRecords(file, Row)]).toThrow(`${part}:2: field n`);
  });

  it('trajectories written by shards are read back whole from where the heads were found, parts mixed in any order', () => {
    const dir = ledgerDir();
    const file = path.join(dir, 'trajectories.jsonl');
    const write = (target: string, ids: [string, number][]) => {
      mkdirSync(path.dirname(target), { recursive: true });
      const ledger = TrajectoryLedger.open(target);
      for (const [id, s] of ids) ledger.append(makeTrajectory({ instance_id: id, sample_index: s }));
      ledger.close();
    };
    write(file, [['a', 0]]);
    write(shardLedgerFile(file, 0), [['b', 0], ['b', 1]]);
    write(shardLedgerFile(file, 1), [['c', 0]]);
    appendFileSync(shardLedgerFile(file, 1), '{"torn":'); // a shard killed mid-append
    const heads = [...readTrajectoryHeads(file)];
    expect(heads.map((h) => `${h.head.instance_id}#${h.head.sample_index}`)).toEqual(['a#0', 'b#0', 'b#1', 'c#0']);
    const wanted = [heads[3]!, heads[0]!, heads[2]!].map((h) => h.at);
    const back = [...readTrajectoriesAt(file, wanted)];
    expect(back).toEqual([makeTrajectory({ instance_id: 'c', sample_index: 0 }), makeTrajectory({ instance_id: 'a', sample_index: 0 }), makeTrajectory({ instance_id: 'b', sample_index: 1 })]);
    expect([...readTrajectories(file)].map((t) => t.instance_id)).toEqual(['a', 'b', 'b', 'c']);
    // rft show: an instance's samples are found in the parts too (the index covers the named file only).
    const at = locateInstance(file, 'b');
    expect([...at.keys()].sort()).toEqual([0, 1]);
    expect([...readTrajectoriesAt(file, [at.get(1)!])]).toEqual([makeTrajectory({ instance_id: 'b', sample_index: 1 })]);
  });

  it('an index extended from an offset reads the named file only (offsets are of that file)', () => {
    const dir = ledgerDir();
    const file = path.join(dir, 'verdicts.jsonl');
    writeFileSync(file, '{"n":1}\n{"n":2}\n');
    mkdirSync(path.dirname(shardLedgerFile(file, 0)), { recursive: true });
    writeFileSync(shardLedgerFile(file, 0), '{"n":3}\n');
    expect([...ledgerLines(file, undefined, { offset: 8, line: 1 })].map((l) => l.bytes.toString())).toEqual(['{"n":2}']);
  });
});
