import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { FINETUNE_FILE, FinetuneJobSchema } from '../finetune/job.js';
import { MANIFEST_FILE } from '../sft/files.js';
import { wholeLinesEnd } from '../store/ledger.js';
import { liveLockHolder, type LockInfo } from '../store/lock.js';
import { RUN_FILES, RunStateSchema } from '../store/run-dir.js';
import { readCarriedForward } from './carry-forward.js';
import { shardProgress } from '../cluster/shards.js';
import { EXCLUDED_FILE, readExclusions, type Exclusion } from '../verify/preflight.js';
import { loadRunRecipe } from './run-recipe.js';
import { phaseCounts } from './phase-summary.js';
import { runLayout } from './layout.js';
import { readStops, type StopRecord } from './stops.js';
import { readJoining, type Joining } from './membership.js';
import { formatTable, summarizeRun, type IterationRow } from './summary.js';

/**
 * running: begun, and an rft process holds the run's lock now; stopped: begun, and no rft process
 * holds it (it exited, crashed or was killed: `rft resume` continues); failed: a fine-tune recorded
 * as failed; skipped: the eval of a model carried forward (it is the previous model); damaged: a
 * ledger line that no reader accepts (resume refuses it too).
 */
export type PhaseState = 'done' | 'running' | 'stopped' | 'failed' | 'skipped' | 'damaged' | 'pending';

export interface PhaseStatus {
  phase: string;
  status: PhaseState;
  detail: string;
}

export interface RunStatus {
  runDir: string;
  name: string;
  phases: PhaseStatus[];
  rows: IterationRow[];
  table: string;
  complete: boolean;
  /** Instances the run left out before sampling (their image cannot be had, they cannot be verified). */
  excluded: Exclusion[];
  /** Instances the next iteration not yet begun will add (they became available after the last begun one began), or null. */
  joining: Joining | null;
  /** The live rft process driving the run now (from its lock), or null: nothing runs. */
  driver: LockInfo | null;
  /** What the user's stops (Ctrl-C) cost: trajectories ended unrecorded and their LLM calls (stops.jsonl). */
  stops: StopRecord[];
}

/**
 * What is done, running and left in a run, read from its ledgers (no lock needed: it only reads).
 * It reads what `rft resume` and `rft select` read: a torn last line (a write cut off, no newline)
 * is not recorded, whatever state.json says; a phase is running only while a live rft process
 * holds the run's lock.
 */
export function runStatus(runDir: string): RunStatus {
  const { recipe } = loadRunRecipe(runDir, []);
  const state = RunStateSchema.parse(JSON.parse(readFileSync(path.join(runDir, RUN_FILES.state), 'utf8')));
  const driver = liveLockHolder(path.join(runDir, RUN_FILES.lock));
  const begun: PhaseState = driver ? 'running' : 'stopped';
  const phases: PhaseStatus[] = [];
  const models: (string | null)[] = [recipe.policy.model];
  const sameAs: number[] = [0];
  const rollout = (phase: string, trajectoriesFile: string, verdictsFile: string) => {
    // The phase's kept summary, or its ledgers counted (streaming) when it is missing or stale; a
    // damaged line stops status as it stops resume and select (LedgerCorruptError names the file and line).
    const { trajectories, final_verdicts: finalVerdicts, repeated_errors: repeatedErrors } = phaseCounts(trajectoriesFile, verdictsFile);
    const torn = [trajectoriesFile, verdictsFile].flatMap((file) => {
      const { validBytes, totalBytes } = wholeLinesEnd(file);
      return totalBytes > validBytes ? [`${path.relative(runDir, file)} ends in a torn line of ${totalBytes - validBytes} bytes, not recorded (resume redoes it)`] : [];
    });
    const recorded = state.phases[phase]?.status;
    phases.push({
      phase,
      status: recorded === 'done' && torn.length === 0 ? 'done' : trajectories > 0 || recorded !== undefined ? begun : 'pending',
      detail: [`${trajectories} trajectories, ${finalVerdicts} verdicts${repeatedErrors > 0 ? ` (${repeatedErrors} final after repeated harness errors, counted unresolved)` : ''}`, ...torn].join('; '),
    });
  };
  if (recipe.tasks.eval && recipe.eval.zero_shot) rollout('eval/m0', path.join(runLayout.evalDir(runDir, 0), 'trajectories.jsonl'), path.join(runLayout.evalDir(runDir, 0), 'verdicts.jsonl'));
  for (let k = 0; k < recipe.iterations; k++) {
    rollout(`iter-${k}/sample`, runLayout.trajectories(runDir, k), runLayout.verdicts(runDir, k));
    // Sampled on a cluster: each shard's own ledgers and its Slurm job (src/cluster/shards.ts).
    for (const shard of shardProgress(runLayout.iterationDir(runDir, k))) {
      const job = shard.job ? `; job ${shard.job}, attempt ${shard.attempts}${shard.last_state ? `, ended ${shard.last_state}` : ''}` : '';
      phases.push({ phase: `iter-${k}/sample shard ${shard.shard}`, status: shard.finished || state.phases[`iter-${k}/sample`]?.status === 'done' ? 'done' : begun, detail: `${shard.trajectories} trajectories, ${shard.verdicts} verdicts${job}` });
    }
    const manifest = path.join(runLayout.datasetDir(runDir, k, recipe.select.cap), MANIFEST_FILE);
    phases.push({ phase: `iter-${k}/select`, status: existsSync(manifest) ? 'done' : 'pending', detail: existsSync(manifest) ? path.relative(runDir, manifest) : '' });
    const carried = readCarriedForward(runDir, k);
    const jobFile = path.join(runLayout.finetuneDir(runDir, k), FINETUNE_FILE);
    if (carried) {
      models[k + 1] = carried.model;
      phases.push({ phase: `iter-${k}/finetune`, status: 'done', detail: `nothing trained: M${k + 1} is M${k} carried forward (${carried.model}): ${carried.reason}` });
    } else if (existsSync(jobFile)) {
      const job = FinetuneJobSchema.parse(JSON.parse(readFileSync(jobFile, 'utf8')));
      models[k + 1] = job.output_model;
      const status = job.status === 'succeeded' ? 'done' : job.status === 'failed' ? 'failed' : begun;
      phases.push({ phase: `iter-${k}/finetune`, status, detail: `${job.status}${job.output_model ? ` → ${job.output_model}` : ''}${job.error ? `: ${job.error}` : ''}` });
    } else phases.push({ phase: `iter-${k}/finetune`, status: 'pending', detail: '' });
    if (!recipe.tasks.eval) continue;
    // A chain of carried iterations: M_k+1 is the model last trained (or M_0), evaluated once.
    sameAs[k + 1] = carried ? sameAs[k]! : k + 1;
    if (carried) phases.push({ phase: `eval/m${k + 1}`, status: 'skipped', detail: `M${k + 1} is M${sameAs[k]}: see eval/m${sameAs[k]}` });
    else rollout(`eval/m${k + 1}`, path.join(runLayout.evalDir(runDir, k + 1), 'trajectories.jsonl'), path.join(runLayout.evalDir(runDir, k + 1), 'verdicts.jsonl'));
  }
  const rows = summarizeRun(runDir, recipe.iterations, recipe.select.cap, models);
  const excluded = readExclusions(path.join(runDir, EXCLUDED_FILE));
  const complete = phases.every((p) => p.status === 'done' || p.status === 'skipped');
  const joining = readJoining(runDir, (k) => runLayout.iterationDir(runDir, k));
  return { runDir, name: recipe.name, phases, rows, table: formatTable(rows, recipe.select.cap), complete, excluded, joining, driver, stops: readStops(runDir) };
}
