import { createHash } from 'node:crypto';
import path from 'node:path';

/**
 * Where each phase keeps its ledger inside runs/<name>/ (design §8). Phases read the previous
 * phase's files through these paths, never another phase's internals.
 *
 *   iter-<k>/trajectories.jsonl     sampled trajectories of iteration k (append-only; message texts
 *                                   refer into trajectories.blobs.jsonl, see src/store/trajectories.ts)
 *   iter-<k>/trajectories.blobs.jsonl  each distinct message text (chunk) once (append-only)
 *   iter-<k>/verdicts.jsonl         verdicts of their patches (append-only; `error` ones are retried, up to
 *                                   sandbox.max_error_attempts: the last is recorded as final `repeated_error`)
 *   iter-<k>/shards/                on a cluster (recipe `cluster.kind: slurm`): job.sh, jobs.jsonl, logs/, and per
 *                                   shard <i>/ its own part of the two ledgers above (read with them) + done.json
 *                                   (src/cluster/shards.ts)
 *   iter-<k>/instances.json         the instances iteration k samples, fixed when it begins (membership.ts;
 *                                   likewise eval/m<m>/instances.json)
 *   joining.json                    instances the next iteration not begun will add (for rft status)
 *   iter-<k>/datasets/cap-<c>/      train.jsonl + manifest.json (c = 1, 2, … or none)
 *   iter-<k>/finetune/              finetune.json (the job record) + the trainer's output and logs, or
 *                                   carried-forward.json when the iteration trained nothing (carry-forward.ts)
 *   eval/m<m>/trajectories.jsonl    evaluation of model m (m = 0 is the base model) + verdicts.jsonl
 *   <ledger dir>/verify-logs/       the test log of each verification (one file per instance and patch; rft show)
 *   <ledger dir>/phase-summary.json what rft status counts there (phase-summary.ts; a cache, rebuilt when stale)
 *   <ledger dir>/trajectories.index.jsonl  where each record is (src/store/trajectory-index.ts; a cache)
 *   pulled-images.jsonl             images this run pulled, for remove_after_use (src/sandbox/pulled-images.ts)
 *   stops.jsonl                     what each Ctrl-C cost: trajectories ended unrecorded, their calls (src/loop/stops.ts)
 *   sim-models/                     models written by the SIMULATED trainer (demo and tests only)
 */
export const runLayout = {
  iterationDir: (runDir: string, k: number) => path.join(runDir, `iter-${k}`),
  trajectories: (runDir: string, k: number) => path.join(runDir, `iter-${k}`, 'trajectories.jsonl'),
  verdicts: (runDir: string, k: number) => path.join(runDir, `iter-${k}`, 'verdicts.jsonl'),
  datasetDir: (runDir: string, k: number, cap: number | null) => path.join(runDir, `iter-${k}`, 'datasets', `cap-${cap ?? 'none'}`),
  finetuneDir: (runDir: string, k: number) => path.join(runDir, `iter-${k}`, 'finetune'),
  evalDir: (runDir: string, m: number) => path.join(runDir, 'eval', `m${m}`),
  simModels: (runDir: string) => path.join(runDir, 'sim-models'),
  /**
   * The test log of verifying `patchHash` on `instanceId`, beside the verdicts file of its ledger
   * folder. Instance ids may hold any character: the name keeps a readable part and a hash of the id.
   */
  verifyLog: (verdictsFile: string, instanceId: string, patchHash: string) => {
    const readable = instanceId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);
    const idHash = createHash('sha256').update(instanceId).digest('hex').slice(0, 8);
    return path.join(path.dirname(verdictsFile), 'verify-logs', `${readable}-${idHash}@${patchHash.slice(0, 16)}.log`);
  },
} as const;
