import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { FINETUNE_FILE, FinetuneJobSchema } from '../finetune/job.js';
import { MANIFEST_FILE } from '../sft/write.js';
import { countLines } from '../store/ledger.js';
import { readVerdictsStreaming } from '../select/scan.js';
import { RUN_FILES, RunStateSchema } from '../store/run-dir.js';
import { EXCLUDED_FILE, readExclusions, type Exclusion } from '../verify/preflight.js';
import { loadRunRecipe } from './drive.js';
import { runLayout } from './layout.js';
import { formatTable, summarizeRun, type IterationRow } from './summary.js';

export interface PhaseStatus {
  phase: string;
  status: 'done' | 'running' | 'pending';
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
}

/** What is done, running and left in a run, read from its ledgers (no lock needed: it only reads). */
export function runStatus(runDir: string): RunStatus {
  const { recipe } = loadRunRecipe(runDir, []);
  const state = RunStateSchema.parse(JSON.parse(readFileSync(path.join(runDir, RUN_FILES.state), 'utf8')));
  const phases: PhaseStatus[] = [];
  const models: (string | null)[] = [recipe.policy.model];
  const rollout = (phase: string, trajectoriesFile: string, verdictsFile: string) => {
    // Counted line by line (a ledger may be gigabytes): trajectory records are not even parsed.
    const trajectories = countLines(trajectoriesFile);
    let finalVerdicts = 0;
    readVerdictsStreaming(verdictsFile, (v) => {
      if (v.outcome !== 'error') finalVerdicts += 1;
    });
    const recorded = state.phases[phase]?.status;
    phases.push({
      phase,
      status: recorded === 'done' ? 'done' : trajectories > 0 || recorded === 'running' ? 'running' : 'pending',
      detail: `${trajectories} trajectories, ${finalVerdicts} verdicts`,
    });
  };
  if (recipe.tasks.eval && recipe.eval.zero_shot) rollout('eval/m0', path.join(runLayout.evalDir(runDir, 0), 'trajectories.jsonl'), path.join(runLayout.evalDir(runDir, 0), 'verdicts.jsonl'));
  for (let k = 0; k < recipe.iterations; k++) {
    rollout(`iter-${k}/sample`, runLayout.trajectories(runDir, k), runLayout.verdicts(runDir, k));
    const manifest = path.join(runLayout.datasetDir(runDir, k, recipe.select.cap), MANIFEST_FILE);
    phases.push({ phase: `iter-${k}/select`, status: existsSync(manifest) ? 'done' : 'pending', detail: existsSync(manifest) ? path.relative(runDir, manifest) : '' });
    const jobFile = path.join(runLayout.finetuneDir(runDir, k), FINETUNE_FILE);
    if (existsSync(jobFile)) {
      const job = FinetuneJobSchema.parse(JSON.parse(readFileSync(jobFile, 'utf8')));
      models[k + 1] = job.output_model;
      phases.push({ phase: `iter-${k}/finetune`, status: job.status === 'succeeded' ? 'done' : 'running', detail: `${job.status}${job.output_model ? ` → ${job.output_model}` : ''}${job.error ? `: ${job.error}` : ''}` });
    } else phases.push({ phase: `iter-${k}/finetune`, status: 'pending', detail: '' });
    if (recipe.tasks.eval) rollout(`eval/m${k + 1}`, path.join(runLayout.evalDir(runDir, k + 1), 'trajectories.jsonl'), path.join(runLayout.evalDir(runDir, k + 1), 'verdicts.jsonl'));
  }
  const rows = summarizeRun(runDir, recipe.iterations, recipe.select.cap, models);
  const excluded = readExclusions(path.join(runDir, EXCLUDED_FILE));
  return { runDir, name: recipe.name, phases, rows, table: formatTable(rows, recipe.select.cap), complete: phases.every((p) => p.status === 'done'), excluded };
}
