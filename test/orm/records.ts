import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Trajectory } from '../../src/agent/trajectory.js';
import { TrajectorySchema } from '../../src/agent/trajectory.js';
import { Ledger } from '../../src/store/ledger.js';
import type { Instance } from '../../src/tasks/instance.js';
import { VerdictSchema, type Outcome } from '../../src/verify/verdict.js';
import { makeTrajectory, makeVerdict, patchFor } from '../sft/records.js';

/** Eval/train pools of the bundled minigym tasks written by hand: gold patches resolve, others do not. */

export const TASKS_FILE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/minigym/tasks.jsonl');

export function minigym(): Instance[] {
  return readFileSync(TASKS_FILE, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Instance);
}

export interface PoolSample {
  instance: Instance;
  sample: number;
  /** gold: the instance's gold patch (resolved); wrong: another patch (unresolved); empty: '' (empty_patch). */
  kind: 'gold' | 'wrong' | 'empty';
  /** A second wrong patch name: distinct wrong patches per sample unless given. */
  wrongName?: string;
  iteration?: number;
  outcome?: Outcome;
}

export function sampleTrajectory(s: PoolSample): Trajectory {
  const patch = s.kind === 'gold' ? s.instance.patch : s.kind === 'empty' ? '' : patchFor(s.wrongName ?? `${s.instance.instance_id}_${s.sample}`);
  const t = makeTrajectory({ instance_id: s.instance.instance_id, sample_index: s.sample, iteration: s.iteration ?? 0, patch });
  // The agent's first prompt carries the issue as the workflow agent sends it.
  t.calls[0]!.messages[1] = { role: 'user', content: `<issue>\n${s.instance.problem_statement}\n</issue>\n\n<file_context>\n(empty)\n</file_context>` };
  return TrajectorySchema.parse(t);
}

/** Writes trajectories (+ verdicts unless `verdicts: false`) through the project's Ledger. */
export function writePool(trajectoriesFile: string, verdictsFile: string | null, samples: readonly PoolSample[]): Trajectory[] {
  const tl = Ledger.open(trajectoriesFile, TrajectorySchema).ledger;
  const vl = verdictsFile ? Ledger.open(verdictsFile, VerdictSchema).ledger : null;
  const seen = new Set<string>();
  const out: Trajectory[] = [];
  for (const s of samples) {
    const t = sampleTrajectory(s);
    tl.append(t);
    out.push(t);
    const outcome: Outcome = s.outcome ?? (s.kind === 'gold' ? 'resolved' : s.kind === 'empty' ? 'empty_patch' : 'unresolved');
    const v = makeVerdict(t.instance_id, t.patch, outcome);
    const key = `${v.instance_id}@${v.patch_hash}`;
    if (vl && !seen.has(key)) {
      vl.append(v);
      seen.add(key);
    }
  }
  tl.close();
  vl?.close();
  return out;
}
