import { appendFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { finetuneMetrics, METRICS_FILE, MetricsLineSchema, MetricsLog, rolloutMetrics } from '../../src/loop/metrics.js';
import { LedgerCorruptError } from '../../src/store/ledger.js';
import { makeTrajectory, makeVerdict, patchFor } from '../sft/records.js';

const common = { run: 'r', iteration: 0, model: 'm0', duration_s: 12.5, resumed: false, now: new Date('2025-01-01T00:00:00Z') };

describe('metrics.jsonl', () => {
  it('a rollout line counts trajectories (the last record of a sample), resolved ones, successes, patches, calls and tokens', () => {
    const shared = patchFor('shared');
    const trajectories = [
      makeTrajectory({ instance_id: 'a', sample_index: 0, patch: shared, calls: ['SearchCode', 'EditCode'] }),
      makeTrajectory({ instance_id: 'a', sample_index: 1, patch: shared, outcome: { status: 'rejected', reason: 'gave up' } }),
      makeTrajectory({ instance_id: 'b', sample_index: 0, patch: '' }),
      makeTrajectory({ instance_id: 'b', sample_index: 1, outcome: { status: 'error', reason: 'endpoint down', fault: 'infrastructure' } }),
      makeTrajectory({ instance_id: 'b', sample_index: 1 }),
    ];
    const verdicts = [makeVerdict('a', shared, 'resolved'), makeVerdict('b', '', 'empty_patch'), makeVerdict('b', trajectories[4]!.patch, 'error')];
    const line = rolloutMetrics('sample', common, trajectories, verdicts);
    const data = [trajectories[0]!, trajectories[1]!, trajectories[2]!, trajectories[4]!];
    expect(line).toMatchObject({
      phase: 'sample',
      trajectories: 4,
      resolved: 2,
      resolve_rate: 0.5,
      resolved_finished: 1,
      empty_patches: 1,
      distinct_patches: 3,
      llm_calls: data.reduce((n, t) => n + t.llm_calls, 0),
      tokens: { prompt: data.reduce((n, t) => n + t.tokens.prompt, 0), completion: data.reduce((n, t) => n + t.tokens.completion, 0) },
      finished_at: '2025-01-01T00:00:00.000Z',
      duration_s: 12.5,
    });
  });

  it('is appended once per phase with fsync; a resume that passes a written phase adds nothing; a torn last line is dropped', () => {
    const runDir = mkdtempSync(path.join(tmpdir(), 'rft-metrics-'));
    const file = path.join(runDir, METRICS_FILE);
    const log = MetricsLog.open(runDir);
    const job = { iteration: 0, attempt: 1, backend: 'command', status: 'succeeded', dataset: 'd', dataset_sha256: 'f'.repeat(64), base_model: 'm0', output_model: 'm1', started_at: '2025-01-01T00:00:00.000Z', finished_at: '2025-01-01T00:01:30.000Z', error: null } as const;
    expect(log.append(rolloutMetrics('eval', common, [], []))).toBe(true);
    expect(log.append(finetuneMetrics(common, job as never))).toBe(true);
    expect(log.append(rolloutMetrics('eval', { ...common, duration_s: 1 }, [], []))).toBe(false);
    log.close();
    appendFileSync(file, '{"run":"r","iteration":1,"pha');
    const warnings: string[] = [];
    const again = MetricsLog.open(runDir, (w) => warnings.push(w));
    expect(again.append(finetuneMetrics(common, job as never))).toBe(false);
    again.close();
    expect(warnings[0]).toMatch(/dropped a torn last line/);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => MetricsLineSchema.parse(JSON.parse(l)));
    expect(lines.map((l) => `${l.phase}/${l.iteration}`)).toEqual(['eval/0', 'finetune/0']);
    expect(lines[1]).toMatchObject({ finetune_status: 'succeeded', output_model: 'm1', finetune_seconds: 90, resolve_rate: null });

    appendFileSync(file, '{"run":"r","iteration":-1}\n');
    expect(() => MetricsLog.open(runDir)).toThrow(LedgerCorruptError);
  });
});
