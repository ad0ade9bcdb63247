import type { Instance } from '../tasks/instance.js';
import type { Prediction } from './predictions.js';
import type { Verdict } from './verdict.js';

/** The shape of SWE-bench's run report (`<model>.<run_id>.json`), so existing tooling reads it. */
export interface RunReport {
  total_instances: number;
  submitted_instances: number;
  completed_instances: number;
  resolved_instances: number;
  unresolved_instances: number;
  empty_patch_instances: number;
  error_instances: number;
  completed_ids: string[];
  incomplete_ids: string[];
  empty_patch_ids: string[];
  submitted_ids: string[];
  resolved_ids: string[];
  unresolved_ids: string[];
  error_ids: string[];
  /** rft's finer split of what SWE-bench calls unresolved or error. */
  apply_failed_ids: string[];
  timeout_ids: string[];
  /** The task's own test patch did not apply: no prediction can be graded on it (counted unresolved, as SWE-bench v4 grades on). */
  invalid_task_ids: string[];
  unknown_instance_ids: string[];
  schema_version: 2;
}

/**
 * Tallies verdicts the way SWE-bench does: apply failures and timeouts are completed but
 * unresolved; `error` (the harness's failure) is not completed.
 */
export function buildRunReport(instances: readonly Instance[], predictions: readonly Prediction[], verdicts: readonly Verdict[]): RunReport {
  const known = new Set(instances.map((i) => i.instance_id));
  const ids = (pick: (v: Verdict) => boolean) => verdicts.filter(pick).map((v) => v.instance_id).sort();
  const submitted = predictions.map((p) => p.instance_id).filter((id) => known.has(id)).sort();
  const completed = ids((v) => v.outcome !== 'error' && v.outcome !== 'empty_patch');
  const resolved = ids((v) => v.outcome === 'resolved');
  const unresolved = ids((v) => ['unresolved', 'apply_failed', 'timeout', 'invalid_task'].includes(v.outcome));
  const emptyPatch = ids((v) => v.outcome === 'empty_patch');
  const errors = ids((v) => v.outcome === 'error');
  const done = new Set([...completed, ...emptyPatch]);
  return {
    total_instances: instances.length,
    submitted_instances: submitted.length,
    completed_instances: completed.length,
    resolved_instances: resolved.length,
    unresolved_instances: unresolved.length,
    empty_patch_instances: emptyPatch.length,
    error_instances: errors.length,
    completed_ids: completed,
    incomplete_ids: instances.map((i) => i.instance_id).filter((id) => !done.has(id)).sort(),
    empty_patch_ids: emptyPatch,
    submitted_ids: submitted,
    resolved_ids: resolved,
    unresolved_ids: unresolved,
    error_ids: errors,
    apply_failed_ids: ids((v) => v.outcome === 'apply_failed'),
    timeout_ids: ids((v) => v.outcome === 'timeout'),
    invalid_task_ids: ids((v) => v.outcome === 'invalid_task'),
    unknown_instance_ids: predictions.map((p) => p.instance_id).filter((id) => !known.has(id)).sort(),
    schema_version: 2,
  };
}

/** SWE-bench's per-instance report.json for one verdict. */
export function instanceReport(verdict: Verdict, patch: string): Record<string, unknown> {
  return {
    [verdict.instance_id]: {
      patch_is_None: false,
      patch_exists: patch.trim() !== '',
      patch_successfully_applied: verdict.apply_method !== null,
      resolved: verdict.outcome === 'resolved',
      outcome: verdict.outcome,
      reason: verdict.reason,
      apply_method: verdict.apply_method,
      tests_status: verdict.report ?? null,
    },
  };
}
