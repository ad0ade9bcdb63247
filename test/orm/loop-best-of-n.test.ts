import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runLayout } from '../../src/loop/layout.js';
import { VerifierManifestSchema } from '../../src/orm/dataset.js';
import { ScoreRecordSchema } from '../../src/orm/scores.js';
import { startSimServer, type SimServer } from '../../src/doubles/server.js';
import { readRecords } from '../../src/store/ledger.js';
import { rft } from '../cli/helpers.js';
import { minigymInstances } from '../helpers/minigym.js';
import { startRft, writeLoopRecipe } from '../loop/helpers.js';

/**
 * The loop with best-of-n on: one iteration on three bundled tasks, eval with 2 candidates per
 * instance scored by the SIMULATED verifier (served by the test, so it can count requests), and
 * verifier data emitted after the iteration. Then scoring is cut short (the last scores removed,
 * a torn half line left) and `rft resume` asks only for what is missing.
 */

const servers: SimServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe('rft run with eval.samples and eval.verifier', () => {
  it('scores every eval candidate, reports best-of-n and the curves, emits verifier data, and resumes mid-scoring', async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-orm-loop-'));
    const sim = await startSimServer({ models: [], tasks: minigymInstances(), modelsDir: path.join(runs, 'loop-test', 'sim-models') });
    servers.push(sim);
    const recipe = writeLoopRecipe(sim.url);
    writeFileSync(
      recipe,
      readFileSync(recipe, 'utf8').replace('iterations: 2', 'iterations: 1') +
        `eval: {samples: 2, temperature: 0.8, verifier: {base_url: ${JSON.stringify(sim.url)}, model: sim-verifier, concurrency: 2}}\nverifier: {iterations: all}\n`,
    );
    const run = startRft(['run', recipe, '--runs-dir', runs]);
    const result = await run.done;
    expect(result.code, result.stderr.slice(-2000)).toBe(0);
    const runDir = path.join(runs, 'loop-test');
    expect(result.stdout).toMatch(/best of 2/);

    // Every eval candidate of M0 and M1 scored once (3 instances × 2); empty patches without a request.
    const scores = (m: number) => [...readRecords(path.join(runLayout.evalDir(runDir, m), 'scores.jsonl'), ScoreRecordSchema)];
    for (const m of [0, 1]) expect(scores(m).map((s) => `${s.instance_id}#${s.sample_index}`).sort()).toHaveLength(6);
    const asked = sim.verifierRequests.length;
    expect(asked).toBe([0, 1].flatMap(scores).filter((s) => s.source === 'verifier').length);

    // Verifier data after iteration 0.
    const manifest = VerifierManifestSchema.parse(JSON.parse(readFileSync(path.join(runLayout.iterationDir(runDir, 0), 'verifier', 'manifest.json'), 'utf8')));
    expect(manifest.labels.yes).toBe(manifest.labels.no);
    expect(manifest.sources.map((s) => s.iteration)).toEqual([0]);

    // Cut M1's scoring short: 3 scores lost, half a line left, as a kill mid-write leaves it.
    const file = path.join(runLayout.evalDir(runDir, 1), 'scores.jsonl');
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    writeFileSync(file, `${lines.slice(0, 3).join('\n')}\n${lines[3]!.slice(0, 30)}`);
    const lost = lines.slice(3).map((l) => ScoreRecordSchema.parse(JSON.parse(l)));
    const resumed = await startRft(['resume', runDir]).done;
    expect(resumed.code, resumed.stderr.slice(-2000)).toBe(0);
    expect(sim.verifierRequests.length - asked).toBe(lost.filter((s) => s.source === 'verifier').length);
    const strip = (r: { created_at: string }) => ({ ...r, created_at: '' });
    expect(scores(1).map(strip).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual(
      lines.map((l) => strip(ScoreRecordSchema.parse(JSON.parse(l)))).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    );

    const report = rft(['report', runDir]);
    expect(report.status).toBe(0);
    expect(report.stdout).toMatch(/best-of-2 on 3 instances, verifier sim-verifier/);
    expect(report.stdout).toMatch(/k\s+pass@k\s+best@k\s+random@k/);
    expect(existsSync(path.join(runDir, 'report.html'))).toBe(true);
  }, 900_000);
});
