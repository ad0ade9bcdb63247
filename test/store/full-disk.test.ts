import { existsSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { TrajectorySchema, type Trajectory } from '../../src/agent/trajectory.js';
import { poolFromRecords } from '../../src/select/pool.js';
import { selectTrajectories } from '../../src/select/select.js';
import { writeDatasetStream } from '../../src/sft/stream.js';
import { Ledger, readRecords } from '../../src/store/ledger.js';
import { blobsFileOf, readTrajectories, TrajectoryLedger } from '../../src/store/trajectories.js';
import { tmpfsMounter } from '../helpers/tmpfs.js';
import { keyOfTrajectory, makeTrajectory, makeVerdict } from '../sft/records.js';

/**
 * Appends on a real full disk (a tmpfs of a few pages, mounted by the test as root): the kernel
 * cuts the write that crosses the last page short, the next write fails with ENOSPC. Whatever
 * failed must leave only whole lines behind, and the same writer must go on once space is freed.
 */

const tmpfs = tmpfsMounter('rft-full-disk-');

const Row = z.object({ id: z.number().int(), text: z.string() });
/** 1,000 bytes a line: never a divisor of a 4 KiB page, so the line that fills the disk is cut short. */
const row = (id: number) => ({ id, text: `${String(id).padStart(4, '0')}${'x'.repeat(977)}` });
const LINE_BYTES = `${JSON.stringify(row(0))}\n`.length;

/** Appends until an append throws; returns the ids that were appended and the error. */
function fill(append: (id: number) => void, from = 0): { ids: number[]; error: NodeJS.ErrnoException } {
  const ids: number[] = [];
  for (let id = from; id < from + 1000; id++) {
    try {
      append(id);
    } catch (err) {
      return { ids, error: err as NodeJS.ErrnoException };
    }
    ids.push(id);
  }
  throw new Error('the disk never filled');
}

/** A trajectory whose texts are all new (so each append writes new blobs) and a few KB long. */
function bulkyTrajectory(n: number): Trajectory {
  const base = makeTrajectory({ instance_id: `inst-${n}`, sample_index: 0, calls: ['SearchCode', 'PlanToCode'] });
  return TrajectorySchema.parse({
    ...base,
    calls: base.calls.map((call, i) => ({
      ...call,
      messages: [...call.messages, { role: 'user', content: Array.from({ length: 30 }, (_, l) => `trajectory ${n} call ${i} line ${l}: ${'y'.repeat(40)}\n`).join('') }],
    })),
  });
}

describe('appends on a full disk', () => {
  it('lines are 1,000 bytes', () => expect(LINE_BYTES).toBe(1000));

  it('a ledger append that does not fit is cut back to the last whole line; the same ledger appends once space is freed', () => {
    const fs = tmpfs(8 * 1024);
    const file = path.join(fs.dir, 'rows.jsonl');
    const { ledger } = Ledger.open(file, Row);
    const { ids, error } = fill((id) => ledger.append(row(id)));
    expect(error.code).toBe('ENOSPC');
    expect(error.message).toContain(file);
    expect(ids.length).toBeGreaterThan(0);
    // Only whole lines: the record that did not fit left nothing behind.
    expect(statSync(file).size).toBe(ids.length * LINE_BYTES);
    expect([...readRecords(file, Row)].map((r) => r.id)).toEqual(ids);

    fs.resize(64 * 1024);
    ledger.append(row(9000));
    ledger.close();
    expect([...readRecords(file, Row)].map((r) => r.id)).toEqual([...ids, 9000]);
  });

  it('a trajectory whose texts or line do not fit leaves both files whole; the same writer appends once space is freed', () => {
    const fs = tmpfs(48 * 1024);
    const file = path.join(fs.dir, 'trajectories.jsonl');
    const ledger = TrajectoryLedger.open(file);
    const written: Trajectory[] = [];
    const { error } = fill((n) => {
      const t = bulkyTrajectory(n);
      ledger.append(t);
      written.push(t);
    });
    expect(error.code).toBe('ENOSPC');
    expect(written.length).toBeGreaterThan(0);
    expect([...readTrajectories(file)]).toEqual(written);

    fs.resize(1024 * 1024);
    // Not "changed under its writer": the blob writer goes on where its file ends.
    const more = [bulkyTrajectory(5000), bulkyTrajectory(5001)];
    for (const t of more) ledger.append(t);
    ledger.close();
    expect([...readTrajectories(file)]).toEqual([...written, ...more]);
    // Nothing glued: each file ends at a line's end, and a reopen has no torn tail to cut.
    const reopened = TrajectoryLedger.open(file);
    expect(reopened.droppedTornBytes).toBe(0);
    reopened.close();
    expect(existsSync(blobsFileOf(file))).toBe(true);
  });

  it('a dataset that does not fit is not emitted: no train.jsonl whose bytes differ from the manifest, no temp file', () => {
    const ts = Array.from({ length: 200 }, (_, i) =>
      makeTrajectory({ instance_id: `inst-${String(i).padStart(3, '0')}`, sample_index: 0, calls: ['SearchCode', 'PlanToCode', 'PlanToCode', 'EditCode'] }),
    );
    const pool = poolFromRecords(ts, ts.map((t) => makeVerdict(t.instance_id, t.patch, 'resolved')), keyOfTrajectory);
    const selection = selectTrajectories(pool, { cap: null, seed: 0 });
    const emit = (into: string) => writeDatasetStream(into, { recipe_hash: 'a'.repeat(64), iteration: 0, selections: [{ iteration: 0, selection }], options: {}, trajectories: ts });
    // Where it fits: one write of the whole file (under the writer's 1 MB buffer) — the write a full disk cuts short.
    const whole = emit(mkdtempSync(path.join(tmpdir(), 'rft-full-disk-dataset-')));
    expect(whole.file.bytes).toBeGreaterThan(64 * 1024);
    expect(whole.file.bytes).toBeLessThan(1024 * 1024);
    const fs = tmpfs(32 * 1024);
    const dir = path.join(fs.dir, 'datasets');
    let error: NodeJS.ErrnoException | null = null;
    try {
      emit(dir);
    } catch (err) {
      error = err as NodeJS.ErrnoException;
    }
    expect(error?.code).toBe('ENOSPC');
    expect(readdirSync(dir)).toEqual([]);
  });
});
