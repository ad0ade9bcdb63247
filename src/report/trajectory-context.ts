import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { loadRunRecipe } from '../loop/run-recipe.js';
import { runLayout } from '../loop/layout.js';
import { readEvalPool, rankCandidates, type CandidateRank } from '../orm/eval-pool.js';
import { trajectoryKey } from '../select/pool.js';
import { DropReasonSchema, selectTrajectories } from '../select/select.js';
import { DatasetManifestSchema, manifestSelectOptions } from '../sft/manifest.js';
import { MANIFEST_FILE } from '../sft/files.js';
import { iterationFolders, readLedgers, type Ledgers } from './data.js';
import type { PhaseLedgers } from './trajectory-source.js';

/**
 * What the run's other records say of one trajectory: which datasets kept it (train samples) and
 * where the verifier ranked it (eval candidates). Datasets do not list their trajectories, so each
 * dataset's selection is made again from the pool with its manifest's options (selection is
 * deterministic; the report's dataset section does the same and reports a mismatch with the
 * manifest). Eval ranks are the pick bestOfN counts (src/orm/eval-pool.ts). Read once per run,
 * lazily: a phase's records are read when a trajectory of it is first asked about.
 */

export const DatasetMarkSchema = z.object({
  /** The dataset folder, relative to the run directory. */
  folder: z.string(),
  /** The dataset the run trained on (its recipe's cap). */
  trained_on: z.boolean(),
  kept: z.boolean(),
  /** Why selection left it out, when it did. */
  reason: DropReasonSchema.nullable(),
});
export type DatasetMark = z.infer<typeof DatasetMarkSchema>;

export const CandidateMarkSchema = z.object({
  verifier: z.string(),
  score: z.number().nullable(),
  rank: z.number().int().positive().nullable(),
  of: z.number().int().nonnegative(),
  submitted: z.enum(['yes', 'tied', 'no']).nullable(),
  tied: z.number().int().nonnegative(),
});
export type CandidateMark = z.infer<typeof CandidateMarkSchema>;

export const TrajectoryContextSchema = z.object({
  /** Every dataset made from this trajectory's iteration (empty for eval candidates). */
  datasets: z.array(DatasetMarkSchema),
  /** Eval candidates: where the verifier ranked it; null when the eval was not scored or the candidate is not in the pool (no final verdict). */
  candidate: CandidateMarkSchema.nullable(),
  /** Eval phases: the verifier whose scores rank the pool (null: none recorded). */
  verifier: z.string().nullable(),
});
export type TrajectoryContext = z.infer<typeof TrajectoryContextSchema>;

export interface RunContext {
  of(phase: PhaseLedgers, instanceId: string, sampleIndex: number): TrajectoryContext;
}

interface EvalRanks {
  verifier: string | null;
  byInstance: Map<string, CandidateRank[]>;
}

/** The ranks of an eval folder's candidates (eval/m<m>/scores.jsonl against its verdicts). */
export function evalRanks(evalDir: string): EvalRanks {
  const pool = readEvalPool(evalDir);
  return { verifier: pool.verifier, byInstance: rankCandidates(pool) };
}

export function candidateMark(ranks: EvalRanks, instanceId: string, sampleIndex: number): CandidateMark | null {
  const c = ranks.verifier === null ? undefined : ranks.byInstance.get(instanceId)?.find((x) => x.sample_index === sampleIndex);
  if (c === undefined || ranks.verifier === null) return null;
  return { verifier: ranks.verifier, score: c.score, rank: c.rank, of: c.of, submitted: c.submitted, tied: c.tied };
}

interface DatasetDecisions {
  folder: string;
  trained_on: boolean;
  /** Per iteration included: trajectoryKey → null (kept) or why it was left out. */
  decisions: Map<string, DatasetMark['reason']>;
  iterations: Set<number>;
}

function readDatasets(runDir: string): DatasetDecisions[] {
  const { recipe } = loadRunRecipe(runDir, []);
  const ledgers = new Map<number, Ledgers>();
  const ledgersOf = (k: number): Ledgers => {
    let l = ledgers.get(k);
    if (!l) ledgers.set(k, (l = readLedgers(runLayout.trajectories(runDir, k), runLayout.verdicts(runDir, k))));
    return l;
  };
  const out: DatasetDecisions[] = [];
  for (const k of iterationFolders(runDir)) {
    const root = path.join(runLayout.iterationDir(runDir, k), 'datasets');
    if (!existsSync(root)) continue;
    for (const name of readdirSync(root).sort()) {
      const dir = path.join(root, name);
      const manifestFile = path.join(dir, MANIFEST_FILE);
      if (!statSync(dir).isDirectory() || !existsSync(manifestFile)) continue;
      // A manifest the report's dataset section warns about is left out here.
      const parsed = DatasetManifestSchema.safeParse(JSON.parse(readFileSync(manifestFile, 'utf8')));
      if (!parsed.success) continue;
      const m = parsed.data;
      const options = manifestSelectOptions(m);
      const decisions = new Map<string, DatasetMark['reason']>();
      for (const i of m.iterations_included) {
        if (!existsSync(runLayout.trajectories(runDir, i))) continue;
        const selection = selectTrajectories(ledgersOf(i).pool, options);
        for (const e of selection.kept) decisions.set(trajectoryKey(e), null);
        for (const d of selection.dropped) decisions.set(trajectoryKey(d.entry), d.reason);
      }
      out.push({
        folder: path.relative(runDir, dir),
        trained_on: dir === runLayout.datasetDir(runDir, m.iteration, recipe.select.cap),
        decisions,
        iterations: new Set(m.iterations_included),
      });
    }
  }
  return out;
}

/** The context of every trajectory of a run, read on first use. */
export function readRunContext(runDir: string): RunContext {
  let datasets: DatasetDecisions[] | null = null;
  const ranks = new Map<number, EvalRanks>();
  return {
    of(phase, instanceId, sampleIndex) {
      if (phase.kind === 'eval') {
        let r = ranks.get(phase.index);
        if (!r) ranks.set(phase.index, (r = evalRanks(path.dirname(phase.trajectories))));
        return { datasets: [], candidate: candidateMark(r, instanceId, sampleIndex), verifier: r.verifier };
      }
      datasets ??= readDatasets(runDir);
      const key = trajectoryKey({ iteration: phase.index, instance_id: instanceId, sample_index: sampleIndex });
      const marks = datasets
        .filter((d) => d.iterations.has(phase.index) && d.decisions.has(key))
        .map((d) => ({ folder: d.folder, trained_on: d.trained_on, kept: d.decisions.get(key) === null, reason: d.decisions.get(key) ?? null }));
      return { datasets: marks, candidate: null, verifier: null };
    },
  };
}

/** "kept in iter-0/datasets/cap-1 (trained on)" or "not kept in …: over_cap". */
export function datasetMarkText(d: DatasetMark): string {
  return `${d.kept ? 'kept in' : 'not kept in'} ${d.folder}${d.trained_on ? ' (trained on)' : ''}${d.reason ? `: ${d.reason.replace(/_/g, ' ')}` : ''}`;
}

/** A candidate's score, rank and pick in a few words. */
export function candidateText(c: CandidateMark): { score: string; rank: string; submitted: string } {
  return {
    score: c.score === null ? 'unscored' : c.score.toFixed(3),
    rank: c.rank === null ? '–' : `${c.rank} of ${c.of}${c.tied > 1 ? ` (tied ×${c.tied})` : ''}`,
    submitted:
      c.submitted === 'yes' ? 'submitted' : c.submitted === 'tied' ? `tied for the pick (1 of ${c.tied}; best-of-n counts their mean)` : c.submitted === 'no' ? 'not submitted' : 'no pick yet (not every candidate scored)',
  };
}
