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
import { showTrajectories } from '../../src/report/show.js';
import { instancePageName, trajectoryPageName } from '../../src/report/trajectory-page.js';
import { createReport } from '../../src/report/write.js';
import { readFileSync } from 'node:fs';
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
    expect(md).toMatch(/1\/2 \(50\.0%\) best of 2 \(verifier pick\); mean over samples 50\.0%/);
  });
});

describe('best-of-n in every view', () => {
  it('rft show --eval lists the candidates with score and rank and marks the submitted one', () => {
    const a = showTrajectories(runDir, { eval: 0, instance: A!.instance_id });
    expect(a).toContain(`${A!.instance_id} in eval/m0: 2 samples · best-of-2 by verifier my-verifier: submits #0 (resolved)`);
    expect(a).toMatch(/#0 resolved \(finished, \d+ calls\) · score 0\.900 · rank 1 of 2 ◀ submitted\n/);
    expect(a).toMatch(/#1 unresolved \(finished, \d+ calls\) · score 0\.200 · rank 2 of 2\n/);
    // B: the verifier picks the wrong candidate, and show says so.
    const b = showTrajectories(runDir, { eval: 0, instance: B!.instance_id });
    expect(b).toContain('submits #1 (not resolved)');
    expect(b).toMatch(/#1 unresolved .* · score 0\.600 · rank 1 of 2 ◀ submitted/);
    expect(b).not.toMatch(/#0 .*submitted/);
    // One candidate: the same marks in its header.
    expect(showTrajectories(runDir, { eval: 0, instance: B!.instance_id, sample: 0 })).toContain('best-of-2 by verifier my-verifier: score 0.300 · rank 2 of 2 · not submitted');
    // An eval without scores says so.
    expect(showTrajectories(runDir, { eval: 1, instance: A!.instance_id })).toContain('no verifier scores recorded');
  });

  it('the pages show each candidate\'s score, rank and pick, and the instance page lists them all', () => {
    const dir = path.join(mkdtempSync(path.join(tmpdir(), 'rft-orm-pages-')), 'out');
    createReport({ runDirs: [runDir], outDir: dir, now: () => new Date(0) });
    const page = (sample: number) => readFileSync(path.join(dir, 'trajectories', trajectoryPageName('eval/m0', B!.instance_id, sample)), 'utf8');
    expect(page(1)).toContain('best-of-2 by verifier my-verifier: score 0.600 · rank 1 of 2 · <span class="submitted">submitted</span>');
    expect(page(0)).toContain('score 0.300 · rank 2 of 2 · <span>not submitted</span>');
    const instance = readFileSync(path.join(dir, 'trajectories', instancePageName('eval/m0', B!.instance_id)), 'utf8');
    expect(instance).toContain('verifier my-verifier: submits #1 (unresolved)');
    expect(instance).toContain('<th class="num">score</th><th>rank</th><th>best-of-n pick</th>');
    expect(instance.match(/<tr><td><a href=/g)).toHaveLength(2);
    const index = readFileSync(path.join(dir, 'trajectories', 'index.html'), 'utf8');
    expect(index).toMatch(/#1 unresolved ★<\/a>/);
  });

  it('the chart, the table and the headline report the same eval figure, labelled', () => {
    const data = gatherReport([runDir], { now: () => new Date(0) });
    // A pool whose best-of-n differs from its mean over samples (50%): the verifier picked right on both.
    data.runs[0]!.scaling[0]!.best_of_n = { resolved: 2, rate: 1 };
    const html = renderHtml(data);
    const md = renderMarkdown(data);
    expect(html).toContain('eval resolved M0 100.0% (best of 2 (verifier pick)) → M1 100.0% (mean over samples); mean over samples 50.0% → 100.0%');
    expect(md).toContain('eval resolved M0 100.0% (best of 2 (verifier pick)) → M1 100.0% (mean over samples); mean over samples 50.0% → 100.0%');
    expect(md).toMatch(/2\/2 \(100\.0%\) best of 2 \(verifier pick\); mean over samples 50\.0%/);
    // The chart's solid eval line goes through 100% at M0, its thin dashed line through the mean.
    expect(html).toContain('eval of M_m: best of n where scored, else mean over samples');
    expect(html).toMatch(/<title>bestof: eval of M0 \(base-model\): 100\.0% best of 2 \(verifier pick\); mean over samples 50\.0%/);
    expect(html).toMatch(/<title>bestof: eval of M0: mean over samples 2\/4 \(50\.0%\)<\/title>/);
  });
});
