import pLimit from 'p-limit';
import type { Instance } from '../tasks/instance.js';
import { verifyPatch, type VerifyContext } from './run.js';
import type { EvalSpec } from './spec.js';
import type { Verdict } from './verdict.js';

export interface TaskValidation {
  instance_id: string;
  gold: Verdict;
  empty: Verdict;
  valid: boolean;
  /** Why the task cannot be trusted; null when valid. */
  problem: string | null;
}

/**
 * A task is trusted only if its gold patch resolves it and the unpatched repository does not
 * (design §4, "gold check"): otherwise its tests cannot tell a fix from no fix.
 */
export async function validateTasks(
  ctx: VerifyContext,
  instances: readonly Instance[],
  specFor: (instance: Instance) => EvalSpec,
  concurrency: number,
): Promise<TaskValidation[]> {
  const limit = pLimit(concurrency);
  return Promise.all(
    instances.map((instance) =>
      limit(async () => {
        const spec = specFor(instance);
        const gold = (await verifyPatch(ctx, instance, spec, instance.patch)).verdict;
        const empty = (await verifyPatch(ctx, instance, spec, '', { runEmpty: true })).verdict;
        const problem =
          gold.outcome !== 'resolved'
            ? `gold patch is ${gold.outcome}${gold.reason ? ` (${gold.reason})` : ''}`
            : empty.outcome !== 'unresolved'
              ? `unpatched repository is ${empty.outcome}${empty.reason ? ` (${empty.reason})` : ''}`
              : null;
        return { instance_id: instance.instance_id, gold, empty, valid: problem === null, problem };
      }),
    ),
  );
}
