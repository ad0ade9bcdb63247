import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { driveRun } from '../../src/loop/drive.js';
import { runLayout } from '../../src/loop/layout.js';
import { runStatus } from '../../src/loop/status.js';
import { gatherReport } from '../../src/report/data.js';
import { startSimServer, type SimServer } from '../../src/doubles/server.js';
import { readRecords } from '../../src/store/ledger.js';
import { VerdictSchema, type Verdict } from '../../src/verify/verdict.js';
import { MINIGYM_TASKS, minigymInstances } from '../helpers/minigym.js';

/*
 * Errors that repeat become final (issue 21, item 5). The recipe asks for a conda env the minigym
 * images do not have (sandbox.python_env: conda, as an image whose env has another name would):
 * every verification is an `error` verdict, the harness's failure, on every attempt. Before,
 * every resume retried them and the iteration never completed; now the third error on the same
 * patch and spec is recorded as final (`repeated_error`) and the iteration completes.
 */

const TASKS = ['minigym__iniform-201', 'minigym__unitkit-101'];
let sim: SimServer;

beforeAll(async () => {
  sim = await startSimServer({ models: [], tasks: minigymInstances() });
});

afterAll(async () => {
  await sim?.close();
});

function recipe(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-errors-recipe-'));
  writeFileSync(path.join(dir, 'ids.txt'), `${TASKS.join('\n')}\n`);
  const file = path.join(dir, 'recipe.yaml');
  writeFileSync(
    file,
    `name: always-errors
seed: 5
iterations: 1
tasks:
  train: {path: ${MINIGYM_TASKS}, ids_file: ids.txt}
sandbox: {memory: 512m, pids: 256, test_timeout_s: 60, concurrency: 2, python_env: conda}
policy: {kind: openai, base_url: ${sim.url}, model: sim-base, concurrency: 8, retries: 0}
sampling: {samples_per_task: 2, instances_in_flight: 2}
select: {cap: 2}
finetune:
  backend: command
  command: "false"
  base_model: sim-base
  output_model_file: '{output_dir}/MODEL'
  on_empty: carry_forward
`,
  );
  return file;
}

async function drive(runsDir: string, from: { recipeFile: string } | { runDir: string }) {
  const lines: string[] = [];
  const result = await driveRun({ ...from, runsDir, log: (m) => lines.push(m), warn: (m) => lines.push(`warning: ${m}`) });
  return { result, lines };
}

const verdicts = (runDir: string): Verdict[] => [...readRecords(runLayout.verdicts(runDir, 0), VerdictSchema)];
const byPatch = (list: Verdict[]) => {
  const map = new Map<string, string[]>();
  for (const v of list) map.set(`${v.instance_id}@${v.patch_hash}`, [...(map.get(`${v.instance_id}@${v.patch_hash}`) ?? []), v.outcome]);
  return map;
};

describe('a verification that always fails for the harness', () => {
  it('is retried on resume until its third error, which is final: the iteration completes, status counts it apart', async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-errors-runs-'));
    const first = await drive(runs, { recipeFile: recipe() });
    const runDir = first.result.runDir;
    expect(first.result.status).toBe('incomplete');
    const patches = byPatch(verdicts(runDir)).size;
    expect(patches).toBeGreaterThan(0);
    expect(verdicts(runDir).every((v) => v.outcome === 'error' && /conda/.test(v.reason ?? ''))).toBe(true);

    const second = await drive(runs, { runDir });
    expect(second.result.status).toBe('incomplete');
    const third = await drive(runs, { runDir });
    // Each patch: two `error` lines, then the final one with the reason (one per attempt, across resumes).
    for (const [key, outcomes] of byPatch(verdicts(runDir))) expect(outcomes, key).toEqual(['error', 'error', 'repeated_error']);
    const finals = verdicts(runDir).filter((v) => v.outcome === 'repeated_error');
    expect(finals).toHaveLength(patches);
    for (const v of finals) expect(v.reason).toMatch(/^the harness failed 3 times on this patch \(sandbox\.max_error_attempts\): .*conda/);
    expect(third.result.status).toBe('complete');
    expect(third.lines.join('\n')).toMatch(/recorded as final/);

    const status = runStatus(runDir);
    const sample = status.phases.find((p) => p.phase === 'iter-0/sample')!;
    expect(sample.status).toBe('done');
    expect(sample.detail).toContain(`${patches} final after repeated harness errors`);
    // Counted as unresolved: in the rate's denominator, never its numerator.
    expect(status.rows[0]!.train).toMatchObject({ resolved: 0, trajectories: 4 });

    // The report counts them apart, never as resolved.
    const train = gatherReport([runDir]).runs[0]!.train[0]!;
    expect(train).toMatchObject({ samples: 4, resolved: 0, unverified: 0, repeated_errors: 4 });

    // A fourth start runs no container and records nothing more.
    const lines = verdicts(runDir).length;
    const fourth = await drive(runs, { runDir });
    expect(fourth.result.status).toBe('complete');
    expect(verdicts(runDir)).toHaveLength(lines);
  });
});
