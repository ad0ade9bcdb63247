import pLimit from 'p-limit';
import type { Instance } from '../tasks/instance.js';
import { verifyPatch, type VerifyContext } from './run.js';
import type { EvalSpec } from './spec.js';
import type { Verdict } from './verdict.js';
import { junkIds } from './junk-ids.js';
import { repoFamily } from './runners.js';

export interface TaskValidation {
  instance_id: string;
  gold: Verdict;
  empty: Verdict;
  valid: boolean;
  /** Why the task cannot be trusted; null when valid. */
  problem: string | null;
  /** Listed ids no test run can produce (junk-ids.ts), which grading leaves out. */
  junk: ListedJunk;
  /** What else the user should know about the task (ids no run can produce, a skipped install step). */
  notes: string[];
}

export interface ListedJunk {
  FAIL_TO_PASS: string[];
  PASS_TO_PASS: string[];
}

type Lists = Pick<Instance, 'FAIL_TO_PASS' | 'PASS_TO_PASS'>;

export function listedJunk(instance: Lists): ListedJunk {
  return { FAIL_TO_PASS: junkIds(instance.FAIL_TO_PASS), PASS_TO_PASS: junkIds(instance.PASS_TO_PASS) };
}

/** The note naming an instance's junk ids and how it grades with them; null when it lists none. */
export function junkNote(instance: Lists): string | null {
  const junk = listedJunk(instance);
  const named = (['FAIL_TO_PASS', 'PASS_TO_PASS'] as const)
    .filter((list) => junk[list].length > 0)
    .map((list) => `${list} ${junk[list].map((id) => JSON.stringify(id)).join(', ')}`);
  if (named.length === 0) return null;
  const noneLeft = instance.FAIL_TO_PASS.length > 0 && junk.FAIL_TO_PASS.length === instance.FAIL_TO_PASS.length;
  return (
    `listed ids no test run can produce (a reference parser read them from progress or separator text): ${named.join('; ')}. ` +
    'rft grades without them (they count in neither list); SWE-bench grades them by whatever its parser reads from ' +
    'similar text in the new log, and fails them when there is none' +
    (noneLeft ? '. Without them FAIL_TO_PASS is empty, so the instance never resolves' : '')
  );
}

/**
 * Facts about a task that no run shows: listed ids no test run can ever produce (a reference
 * parser made them up; junkNote), and the install step SWE-bench/SWE-Gym re-run before the tests that rft
 * does not (repos.ts), with why it matters.
 */
export function taskNotes(instance: Pick<Instance, 'repo' | 'version' | 'FAIL_TO_PASS' | 'PASS_TO_PASS'>): string[] {
  const notes: string[] = [];
  const junk = junkNote(instance);
  if (junk !== null) notes.push(junk);
  const reinstall = repoFamily(instance.repo)?.facts.reinstall;
  if (reinstall && (!reinstall.versions || (instance.version !== null && instance.version !== undefined && reinstall.versions.includes(instance.version)))) {
    notes.push(`needs the install step re-run before the tests, which rft does not do offline: ${reinstall.note}`);
  }
  return notes;
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
        return { instance_id: instance.instance_id, gold, empty, valid: problem === null, problem, junk: listedJunk(instance), notes: taskNotes(instance) };
      }),
    ),
  );
}
