import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runLayout } from '../../src/loop/layout.js';
import { startRft, writeLoopRecipe } from './helpers.js';

/** sha256 of every file below a folder, by relative path. */
function digest(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = path.join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name !== 'lock') out.set(path.relative(dir, full), createHash('sha256').update(readFileSync(full)).digest('hex'));
    }
  };
  walk(dir);
  return out;
}

describe('rft sweep and rft fork', () => {
  it('a cap sweep shares one first iteration by hard link, runs each cap to the end, and leaves the parent untouched', async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-sweep-'));
    const recipe = writeLoopRecipe(null, { name: 'sw' });
    const sweep = await startRft(['sweep', recipe, '--grid', 'select.cap=1,none', '--runs-dir', runs]).done;
    expect(sweep.stderr).not.toMatch(/rft: /);
    expect(sweep.code).toBe(0);
    expect(sweep.stdout).toMatch(/sw-cap-1 \(select.cap=1\): complete/);
    expect(sweep.stdout).toMatch(/sw-cap-none \(select.cap=null\): complete/);

    const base = path.join(runs, 'sw');
    const forks = ['sw-cap-1', 'sw-cap-none'].map((n) => path.join(runs, n));
    // The base stopped after sampling iteration 0; the forks share those records, same inode.
    expect(existsSync(runLayout.datasetDir(base, 0, 2))).toBe(false);
    for (const fork of forks) {
      for (const file of [runLayout.trajectories(base, 0), runLayout.verdicts(base, 0), path.join(runLayout.evalDir(base, 0), 'trajectories.jsonl')]) {
        expect(statSync(path.join(fork, path.relative(base, file))).ino).toBe(statSync(file).ino);
      }
    }
    const kept = (fork: string, cap: number | null) =>
      JSON.parse(readFileSync(path.join(runLayout.datasetDir(fork, 0, cap), 'manifest.json'), 'utf8')).counts.kept_after_cap as number;
    expect(kept(forks[0]!, 1)).toBeLessThanOrEqual(3);
    expect(kept(forks[1]!, null)).toBeGreaterThan(kept(forks[0]!, 1));

    // Forking twice more from the parent and running both does not change a byte of it.
    const before = digest(base);
    const a = await startRft(['fork', base, '--name', 'sw-dedup', '--set', 'select.dedup=true']).done;
    expect(a.code).toBe(0);
    expect(a.stdout).toMatch(/files shared with/);
    const b = await startRft(['fork', base, '--name', 'sw-cap-3', '--set', 'select.cap=3']).done;
    expect(b.code).toBe(0);
    const ran = await Promise.all([startRft(['resume', path.join(runs, 'sw-dedup')]).done, startRft(['resume', path.join(runs, 'sw-cap-3')]).done]);
    for (const r of ran) expect({ code: r.code, err: r.stderr.match(/rft: .*/)?.[0] ?? null }).toEqual({ code: 0, err: null });
    const after = digest(base);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [file, hash] of before) expect({ file, hash: after.get(file) }).toEqual({ file, hash });

    // A fork of an iteration the parent has not sampled is refused.
    const refused = await startRft(['fork', base, '--name', 'sw-late', '--from-iteration', '1']).done;
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/has not finished sampling and verifying iteration 1/);
  });
});
