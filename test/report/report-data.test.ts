import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { gatherReport, ReportDataSchema, type ReportData } from '../../src/report/data.js';
import { appendSample, FIXTURE_RUN_NAME, SCRIPT_ERROR, writeFixtureRun } from './fixture.js';

const NOW = () => new Date('2025-02-03T04:05:06.000Z');

describe('gatherReport on a hand-built run', () => {
  const runDir = writeFixtureRun();
  const data: ReportData = gatherReport([runDir], { now: NOW });
  const run = data.runs[0]!;

  it('is a valid ReportData record naming the run', () => {
    expect(ReportDataSchema.parse(data)).toEqual(data);
    expect(data.generated_at).toBe('2025-02-03T04:05:06.000Z');
    expect(run.name).toBe(FIXTURE_RUN_NAME);
    expect(run.label).toBe(FIXTURE_RUN_NAME);
    expect(run.dir).toBe(path.resolve(runDir));
    expect(run.simulated_policy).toBe(false);
    expect(run.simulated_trainer).toBe(false);
    expect(run.settings).toMatchObject({ iterations: 2, samples_per_task: 3, temperature: 1, eval_temperature: 0, cap: 1, unit: 'call', max_tokens: 1000 });
    // M2 has no fine-tune yet: iteration 1's is still running.
    expect(run.models).toEqual(['base-model', 'tiny-m1', null]);
  });

  it('counts the train rollouts: infrastructure records left out, model errors, empty patches and error verdicts counted', () => {
    expect(run.train.map((t) => t.model_index)).toEqual([0, 1]);
    const it0 = run.train[0]!;
    expect(it0).toMatchObject({
      kind: 'train',
      folder: 'iter-0',
      models: ['base-model'],
      temperatures: [1],
      trajectory_records: 10,
      infrastructure_records: 1,
      samples: 9,
      instances: 3,
      resolved: 4,
      successes: 3,
      empty_patch: 1,
      model_errors: 1,
      unverified: 0,
      verdict_records: 10,
      verdict_errors: 1,
    });
    expect(it0.resolve_rate).toBeCloseTo(4 / 9, 12);
    expect(it0.empty_patch_rate).toBeCloseTo(1 / 9, 12);
    expect(it0.model_error_rate).toBeCloseTo(1 / 9, 12);
    expect(it0.verdict_error_rate).toBeCloseTo(0.1, 12);
    const it1 = run.train[1]!;
    expect(it1).toMatchObject({ models: ['tiny-m1'], samples: 9, resolved: 5, successes: 5, empty_patch: 0, model_errors: 0, verdict_errors: 0 });
    expect(it1.resolve_rate).toBeCloseTo(5 / 9, 12);
  });

  it('counts the evals, M0 being the zero-shot point', () => {
    expect(run.eval.map((e) => [e.model_index, e.folder, e.resolved, e.samples, e.temperatures])).toEqual([
      [0, 'eval/m0', 1, 3, [0]],
      [1, 'eval/m1', 2, 3, [0]],
    ]);
    expect(run.eval[1]!.resolve_rate).toBeCloseTo(2 / 3, 12);
  });

  it('histograms how many of the 3 samples of each instance succeeded', () => {
    expect(run.success_counts).toEqual([
      { iteration: 0, samples_per_instance: 3, instances: 3, bins: [0, 1, 2, 3].map((s) => ({ successes: s, instances: s === 3 ? 0 : 1 })) },
      { iteration: 1, samples_per_instance: 3, instances: 3, bins: [{ successes: 0, instances: 0 }, { successes: 1, instances: 2 }, { successes: 2, instances: 0 }, { successes: 3, instances: 1 }] },
    ]);
  });

  it('summarises LLM calls of successes and failures (the rejected-but-resolved sample is a failure)', () => {
    const c = run.llm_calls[0]!;
    expect(c.success).toEqual({ n: 3, min: 3, q1: 4, median: 5, q3: 5.5, max: 6, mean: 14 / 3, counts: [{ value: 3, count: 1 }, { value: 5, count: 1 }, { value: 6, count: 1 }] });
    expect(c.failure).toEqual({ n: 6, min: 2, q1: 2.25, median: 3, q3: 3.75, max: 4, mean: 3, counts: [{ value: 2, count: 2 }, { value: 3, count: 2 }, { value: 4, count: 2 }] });
  });

  it('reads every dataset folder and recomputes the cap comparison and per-example tokens from the pool', () => {
    expect(run.datasets.map((d) => [d.folder, d.cap, d.trained_on])).toEqual([
      ['iter-0/datasets/cap-1', 1, true],
      ['iter-0/datasets/cap-none', null, false],
    ]);
    const [cap1, none] = run.datasets as [ReportData['runs'][number]['datasets'][number], ReportData['runs'][number]['datasets'][number]];
    expect(cap1.problems).toEqual([]);
    expect(cap1.manifest).toMatchObject({ kept: 2, examples: 8, over_max_tokens: 1, invalid_call: 0, instances_covered: 2, instances_with_success: 2, instances_in_pool: 3, mean_llm_calls: 4.5, tokens_total: 3600, mean_tokens_per_example: 450, max_tokens_per_example: 800 });
    expect(cap1.comparison).toEqual({
      cap: 1,
      trajectories: 2,
      examples: 8,
      instances_covered: 2,
      instances_with_success: 2,
      mean_llm_calls: 4.5,
      mean_tokens: 2550,
      max_tokens: 4500,
      max_example_tokens: 1500,
      easiest_instances: 1,
      easiest_share: 3 / 8,
    });
    expect(cap1.example_tokens).toEqual({
      summary: { n: 8, min: 100, q1: 275, median: 450, q3: 625, max: 800, mean: 450 },
      total: 3600,
      bin_width: 100,
      bins: [100, 200, 300, 400, 500, 600, 700, 800].map((from) => ({ from, to: from + 100, count: 1 })),
    });

    expect(none.problems).toEqual([]);
    expect(none.manifest).toMatchObject({ kept: 3, examples: 12, invalid_call: 1, over_max_tokens: 1, tokens_total: 4130 });
    expect(none.comparison!.examples).toBe(12);
    expect(none.comparison!.mean_tokens).toBeCloseTo(5750 / 3, 9);
    expect(none.comparison!.easiest_share).toBeCloseTo(7 / 12, 12);
    expect(none.example_tokens!.summary.n).toBe(12);
    expect(none.example_tokens!.bins.reduce((a, b) => a + b.count, 0)).toBe(12);
  });

  it('lists the fine-tune records, failed attempts included, with their status and error', () => {
    expect(run.finetunes.map((f) => [f.iteration, f.attempt, f.file, f.backend, f.base_model, f.output_model, f.status, f.error, f.duration_s])).toEqual([
      [0, 1, 'iter-0/finetune/finetune.json', 'command', 'base-model', 'tiny-m1', 'succeeded', null, 90],
      [1, 1, 'iter-1/finetune/finetune.failed-1.json', 'command', 'tiny-m1', null, 'failed', SCRIPT_ERROR, 10],
      [1, 2, 'iter-1/finetune/finetune.json', 'command', 'tiny-m1', null, 'running', null, null],
    ]);
  });

  it('notes the infrastructure records', () => {
    expect(run.warnings).toEqual(['iter-0: 1 trajectory record is an infrastructure error (not data; retried on resume)']);
  });
});

describe('gatherReport: several runs, partial runs, changed ledgers', () => {
  it('labels runs of the same name by their folder', () => {
    const a = writeFixtureRun();
    const b = writeFixtureRun();
    const data = gatherReport([a, b], { now: NOW });
    expect(data.runs.map((r) => r.label)).toEqual([`${FIXTURE_RUN_NAME} (${path.resolve(a)})`, `${FIXTURE_RUN_NAME} (${path.resolve(b)})`]);
  });

  it('reports a dataset whose ledgers gained samples since it was written, and one without a manifest', () => {
    const runDir = writeFixtureRun();
    appendSample(runDir, 0, { id: 'c', sample: 3, calls: 2, verdicts: ['resolved'] });
    const manifest = path.join(runDir, 'iter-0', 'datasets', 'cap-1', 'manifest.json');
    expect(existsSync(manifest)).toBe(true);
    // A dataset folder being written (no manifest yet).
    const partial = path.join(runDir, 'iter-0', 'datasets', 'cap-3');
    mkdirSync(partial, { recursive: true });
    const run = gatherReport([runDir], { now: NOW }).runs[0]!;
    const cap1 = run.datasets.find((d) => d.folder === 'iter-0/datasets/cap-1')!;
    expect(cap1.manifest.kept).toBe(2);
    expect(cap1.comparison!.trajectories).toBe(3);
    expect(cap1.problems.join('\n')).toContain('gives 3 trajectories / 10 examples, the manifest says 2 / 8');
    expect(run.datasets.map((d) => d.folder)).not.toContain('iter-0/datasets/cap-3');
    expect(run.warnings).toContain('iter-0/datasets/cap-3 has no manifest.json (being written, or not a dataset): left out');
    expect(run.train[0]!.samples).toBe(10);
    expect(run.train[0]!.resolved).toBe(5);
    expect(JSON.parse(readFileSync(manifest, 'utf8')).counts.kept_after_cap).toBe(2);
  });

  it('refuses a folder that is not a run directory', () => {
    expect(() => gatherReport([path.join(writeFixtureRun(), 'iter-0')])).toThrow(/not a run directory/);
    expect(() => gatherReport([])).toThrow(/at least one run directory/);
  });
});

