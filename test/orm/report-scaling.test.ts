import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { runLayout } from '../../src/loop/layout.js';
import { ScoreRecordSchema, type ScoreRecord } from '../../src/orm/scores.js';
import { loadRecipe } from '../../src/recipe/load.js';
import { gatherReport } from '../../src/report/data.js';
import { renderHtml } from '../../src/report/html.js';
import { renderMarkdown } from '../../src/report/markdown.js';
import { scalingText } from '../../src/report/scaling.js';
import { Ledger } from '../../src/store/ledger.js';
import { RunDir } from '../../src/store/run-dir.js';
import { normalizePatch, patchHash } from '../../src/verify/patch.js';
import { minigym, TASKS_FILE, writePool, type PoolSample } from './records.js';

const [A, B] = minigym();

/**
 * eval/m0 with n = 2 per instance. A: gold scored 0.9, wrong 0.2 (the verifier is right);
 * B: gold scored 0.3, wrong 0.6 (it is wrong). Hand-computed:
 *   k=1: pass = random = best = ½ (each instance has 1 of 2 resolved)
 *   k=2: pass = 1; best = (1 + 0)/2 = ½; random = ½
 * eval/m1 with one candidate per instance: no curve.
 */
let runDir: string;

beforeAll(() => {
  const base = mkdtempSync(path.join(tmpdir(), 'rft-orm-report-'));
  const recipeFile = path.join(base, 'recipe.yaml');
  writeFileSync(
    recipeFile,
    `name: bestof\niterations: 1\ntasks:\n  train: {path: ${JSON.stringify(TASKS_FILE)}}\n  eval: {path: ${JSON.stringify(TASKS_FILE)}}\npolicy: {kind: openai, base_url: "http://127.0.0.1:9/v1", model: base-model}\nfinetune: {backend: command, command: "true", base_model: base-model}\neval: {samples: 2, temperature: 0.8, verifier: {base_url: "http://127.0.0.1:9/v1", model: my-verifier}}\n`,
  );
  const run = RunDir.open({ runsDir: path.join(base, 'runs'), loaded: loadRecipe(recipeFile) });
  runDir = run.dir;
  run.close();
  const m0 = runLayout.evalDir(runDir, 0);
  const pool: PoolSample[] = [
    { instance: A!, sample: 0, kind: 'gold' },
    { instance: A!, sample: 1, kind: 'wrong' },
    { instance: B!, sample: 0, kind: 'gold' },
    { instance: B!, sample: 1, kind: 'wrong' },
  ];
  const written = writePool(path.join(m0, 'trajectories.jsonl'), path.join(m0, 'verdicts.jsonl'), pool);
  const scoreOf: Record<string, number> = { [`${A!.instance_id}#0`]: 0.9, [`${A!.instance_id}#1`]: 0.2, [`${B!.instance_id}#0`]: 0.3, [`${B!.instance_id}#1`]: 0.6 };
  const l = Ledger.open(path.join(m0, 'scores.jsonl'), ScoreRecordSchema).ledger;
  for (const t of written) {
    const r: ScoreRecord = { instance_id: t.instance_id, sample_index: t.sample_index, verifier: 'my-verifier', patch_hash: patchHash(normalizePatch(t.patch)), score: scoreOf[`${t.instance_id}#${t.sample_index}`]!, p_yes: null, p_no: null, source: 'verifier', created_at: '2026-01-01T00:00:00Z' };
    l.append(r);
  }
  l.close();
  const m1 = runLayout.evalDir(runDir, 1);
  writePool(path.join(m1, 'trajectories.jsonl'), path.join(m1, 'verdicts.jsonl'), [{ instance: A!, sample: 0, kind: 'gold' }]);
});

describe('rft report: inference-time scaling', () => {
  it('computes pass@k, best@k and random@k from the one eval pool, and the best-of-n result', () => {
    const data = gatherReport([runDir], { now: () => new Date(0) });
    const [curve, ...rest] = data.runs[0]!.scaling;
    expect(rest).toEqual([]);
    expect(curve).toMatchObject({ model_index: 0, samples_per_instance: 2, instances: 2, verifier: 'my-verifier', simulated_verifier: false, unscored: 0, best_of_n: { resolved: 1, rate: 0.5 } });
    expect(curve!.points).toEqual([
      { k: 1, instances: 2, pass: 0.5, best: 0.5, random: 0.5 },
      { k: 2, instances: 2, pass: 1, best: 0.5, random: 0.5 },
    ]);
  });

  it('draws the chart on a log-x axis in report.html, and the table in report.md and the CLI text', () => {
    const data = gatherReport([runDir], { now: () => new Date(0) });
    const html = renderHtml(data);
    expect(html).toContain('id="scaling-section"');
    expect(html).toMatch(/<svg class="chart" data-chart="scaling"/);
    expect(html).toContain('k candidates per instance (log scale)');
    expect(html).toContain('best@k (my-verifier)');
    const md = renderMarkdown(data);
    expect(md).toContain('## 8. Inference-time scaling (best-of-n)');
    expect(md).toMatch(/\| bestof \| M0 \(base-model\) \| my-verifier \| 2 \| 2 \| 100\.0% \| 50\.0% \| 50\.0% \|/);
    expect(scalingText(data)).toMatch(/best-of-2 on 2 instances, verifier my-verifier: 1\/2 resolved \(50\.0%\)/);
    // The resolve-rate table reports the best-of-n result for M0.
    expect(md).toMatch(/1\/2 \(50\.0%\) best of 2; all samples 50\.0%/);
  });
});
