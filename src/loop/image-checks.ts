import type { Instance } from '../tasks/instance.js';

/**
 * Which instances a start of the run checks images for (src/verify/preflight.ts): those that still
 * have work. A phase recorded as done in state.json samples and verifies nothing more, so its
 * instances need no image: a resume of a fully sampled iteration asks no engine or registry (at
 * SWE-Gym size that was 2,438 registry look-ups, ~15 minutes, before selection could start). A
 * phase not done (not begun, or begun and interrupted) counts all its instances. A new run checks
 * every instance.
 */
export interface WorkPhases {
  /** Names of the phases state.json records as done (`iter-<k>/sample`, `eval/m<m>`). */
  done: ReadonlySet<string>;
  iterations: number;
  /** The eval phases the recipe runs (m = 0 only with zero_shot), or none without an eval set. */
  evalModels: readonly number[];
}

export function instancesWithWork(train: readonly Instance[], evalSet: readonly Instance[] | null, phases: WorkPhases): Instance[] {
  const out = new Map<string, Instance>();
  const add = (set: readonly Instance[]) => {
    for (const i of set) if (!out.has(i.instance_id)) out.set(i.instance_id, i);
  };
  for (let k = 0; k < phases.iterations; k++) if (!phases.done.has(`iter-${k}/sample`)) add(train);
  if (evalSet) for (const m of phases.evalModels) if (!phases.done.has(`eval/m${m}`)) add(evalSet);
  return [...out.values()];
}
