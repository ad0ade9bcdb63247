import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic, writeJsonAtomic } from '../store/atomic.js';
import type { Instance } from '../tasks/instance.js';
import type { Prediction } from './predictions.js';
import { buildRunReport, instanceReport, type RunReport } from './run-report.js';
import type { VerifyContext } from './run.js';
import type { EvalSpec } from './spec.js';
import { Verifier } from './verifier.js';

/**
 * Grades a predictions file from any agent: one verification per prediction, a SWE-bench-shaped
 * run report at `out`, and per-instance `report.json` and `test_output.txt` in `<out>.d/<id>/`.
 */
export async function gradePredictions(options: {
  ctx: VerifyContext;
  instances: readonly Instance[];
  predictions: readonly Prediction[];
  specFor: (instance: Instance) => EvalSpec;
  concurrency: number;
  out: string;
}): Promise<RunReport> {
  const byId = new Map(options.instances.map((i) => [i.instance_id, i]));
  const detailDir = `${options.out}.d`;
  const logs = new Map<string, string>();
  const verifier = new Verifier(options.ctx, {
    concurrency: options.concurrency,
    specFor: options.specFor,
    onVerdict: (verdict, log) => logs.set(verdict.instance_id, log),
  });
  const graded = await Promise.all(
    options.predictions
      .filter((p) => byId.has(p.instance_id))
      .map(async (prediction) => ({ prediction, verdict: await verifier.verify(byId.get(prediction.instance_id)!, prediction.model_patch) })),
  );
  for (const { prediction, verdict } of graded) {
    const dir = path.join(detailDir, prediction.instance_id);
    mkdirSync(dir, { recursive: true });
    writeJsonAtomic(path.join(dir, 'report.json'), instanceReport(verdict, prediction.model_patch));
    writeFileAtomic(path.join(dir, 'test_output.txt'), logs.get(prediction.instance_id) ?? '');
    writeJsonAtomic(path.join(dir, 'verdict.json'), verdict);
  }
  const report = buildRunReport(options.instances, options.predictions, graded.map((g) => g.verdict));
  mkdirSync(path.dirname(path.resolve(options.out)), { recursive: true });
  writeJsonAtomic(options.out, report);
  return report;
}
