import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runLayout } from '../../src/loop/layout.js';
import { RUN_DIR_LABEL } from '../../src/loop/gc.js';
import { LABEL } from '../../src/sandbox/container.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import { wholeLinesEnd } from '../../src/store/ledger.js';
import { readTrajectories } from '../../src/store/trajectories.js';
import { MINIGYM_TASKS } from '../helpers/minigym.js';
import { tmpfsMounter } from '../helpers/tmpfs.js';
import { startRft } from '../loop/helpers.js';
import { simTrainerFinetune } from '../helpers/sim-trainer.js';

/**
 * The whole loop on a real small filesystem (a tmpfs mounted by the test, as root) that fills up
 * mid-run: the run must stop with a clear ENOSPC error, every file whole; once the filesystem is
 * grown, `rft resume` must finish it with nothing edited by hand, and its datasets must equal an
 * uninterrupted run's byte for byte.
 */

const NAME = 'full-disk';
const TASKS = ['minigym__iniform-201', 'minigym__ledgerlite-303'];
const PAGE = 4096;
/** The small filesystems' sizes, as fractions of what the whole run takes. */
const FILLS = [0.5, 0.8];

const tmpfs = tmpfsMounter('rft-full-disk-run-');

/** Bytes in use on a filesystem (pages, as the size limit counts them). */
function usedBytes(dir: string): number {
  const s = statfsSync(dir);
  return (s.blocks - s.bfree) * s.bsize;
}

/** One recipe file for both runs (its hash is in every manifest); the run lives where --runs-dir says. */
function writeRecipe(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-full-disk-recipe-'));
  writeFileSync(path.join(dir, 'ids.txt'), `${TASKS.join('\n')}\n`);
  const file = path.join(dir, 'recipe.yaml');
  writeFileSync(
    file,
    `name: ${NAME}
seed: 5
iterations: 2
tasks:
  train: {path: ${MINIGYM_TASKS}, ids_file: ids.txt}
  eval: {path: ${MINIGYM_TASKS}, ids_file: ids.txt}
sandbox: {memory: 512m, pids: 256, test_timeout_s: 60, concurrency: 2}
policy: {kind: simulated, model: sim-base, concurrency: 8}
sampling: {samples_per_task: 3, instances_in_flight: 2}
eval: {samples: 1}
select: {cap: 2}
${simTrainerFinetune()}`,
  );
  return file;
}

/** Every dataset file of the run (names and sha256): a stray temp file counts too. */
function datasets(runDir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of [0, 1]) {
    const dir = runLayout.datasetDir(runDir, k, 2);
    for (const name of readdirSync(dir).sort()) out[`iter-${k}/${name}`] = createHash('sha256').update(readFileSync(path.join(dir, name))).digest('hex');
  }
  return out;
}

/** Every .jsonl file under the run, relative to it. */
function jsonlFiles(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? jsonlFiles(path.join(dir, e.name), base) : e.name.endsWith('.jsonl') ? [path.relative(base, path.join(dir, e.name))] : [],
  );
}

async function containersOf(runDir: string): Promise<number> {
  const docker = await connectEngine();
  return (await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL.run}=${NAME}`, `${RUN_DIR_LABEL}=${runDir}`] }) })).length;
}

describe('rft run on a disk that fills up mid-run', () => {
  it('stops with a clear ENOSPC error leaving every file whole, and resumes once space is freed to the datasets of an uninterrupted run', async () => {
    const recipe = writeRecipe();

    // The uninterrupted run, on a roomy tmpfs: its datasets, and how much the whole run takes.
    const roomy = tmpfs(512 * 1024 * 1024);
    const a = await startRft(['run', recipe, '--runs-dir', roomy.dir]).done;
    expect(a.stderr).not.toMatch(/rft: |Error/);
    expect(a.code).toBe(0);
    const expected = datasets(path.join(roomy.dir, NAME));
    // train.counts.json: the emit's token counts, which the after-emit check reuses (issue 25).
    expect(Object.keys(expected)).toEqual([
      'iter-0/manifest.json',
      'iter-0/train.counts.json',
      'iter-0/train.jsonl',
      'iter-1/manifest.json',
      'iter-1/train.counts.json',
      'iter-1/train.jsonl',
    ]);
    const full = usedBytes(roomy.dir);

    // The same run on filesystems with room for part of it: the disk fills in different phases.
    for (const fraction of FILLS) {
      const small = tmpfs(Math.ceil((full * fraction) / PAGE) * PAGE);
      const runDir = path.join(small.dir, NAME);
      const b = await startRft(['run', recipe, '--runs-dir', small.dir]).done;
      // Where the disk filled (for the figures in RELIABILITY.md).
      console.log(`full-disk ${fraction}: the run takes ${full} bytes; stopped at ${usedBytes(small.dir)} bytes:\n${b.stderr.trim().split('\n').slice(-3).join('\n')}`);
      expect(b.code).not.toBe(0);
      expect(b.stderr).toMatch(/ENOSPC: no space left on device/);
      expect(b.stderr).not.toMatch(/\n\s+at /); // an error, not a stack trace
      // Every ledger ends at a line's end (nothing for the next append to be glued onto) and reads back.
      const ledgers = jsonlFiles(runDir);
      expect(ledgers.length).toBeGreaterThan(0);
      for (const file of ledgers) {
        const { validBytes, totalBytes } = wholeLinesEnd(path.join(runDir, file));
        expect({ file, torn: totalBytes - validBytes }).toEqual({ file, torn: 0 });
      }
      for (const file of ledgers.filter((f) => f.endsWith('trajectories.jsonl'))) [...readTrajectories(path.join(runDir, file))];
      expect(await containersOf(runDir)).toBe(0);

      // Space freed: resume, nothing edited by hand.
      small.resize(512 * 1024 * 1024);
      const c = await startRft(['resume', runDir]).done;
      console.log(`full-disk ${fraction}: resume: exit ${c.code}\n${c.stderr.trim().split('\n').slice(-2).join('\n')}`);
      expect(c.stderr).not.toMatch(/rft: |Error|by hand/);
      expect(c.code).toBe(0);
      expect(c.stdout).toMatch(/run complete/);
      expect(datasets(runDir)).toEqual(expected);
    }
  }, 900_000);
});
