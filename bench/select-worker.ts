/**
 * One side of benchmark 4, in a process of its own so its peak RSS is its own: select + emit over
 * a pool's ledgers, either `naive` (what the loop's emit step did before issue 14: the whole-file reader on both
 * ledgers, poolFromRecords, selectTrajectories, accumulate, buildExamples, writeDataset) or
 * `stream` (src/sft/stream.ts emitDatasetFromLedgers). Prints one JSON line.
 *
 * usage: node select-worker.js naive|stream <trajectories.jsonl> <verdicts.jsonl> <outDir> <cap|none>
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { TrajectorySchema, type Trajectory } from '../src/agent/trajectory.js';
import { isInfrastructureError, poolFromRecords, type PoolSource } from '../src/select/pool.js';
import { selectTrajectories } from '../src/select/select.js';
import { accumulate, buildExamples } from '../src/sft/examples.js';
import { emitDatasetFromLedgers } from '../src/sft/stream.js';
import { MANIFEST_FILE, writeDataset } from '../src/sft/write.js';
import { readLedgerFileWhole } from './lib/whole-file.js';
import { sha256Hex } from '../src/util/canonical.js';
import { normalizePatch, patchHash } from '../src/verify/patch.js';
import { VerdictSchema, verdictKey } from '../src/verify/verdict.js';
import { runQueueDelayMs } from './lib/cpu.js';
import { specHashOf } from './select-gen.js';

export interface WorkerResult {
  ok: boolean;
  seconds: number;
  /** CPU time of the process (user + system). */
  cpuSeconds: number;
  /** The main thread's run-queue delay: runnable, waiting for a CPU (the machine is shared). */
  waitSeconds: number;
  /** Bytes the process read from storage (not from the page cache), /proc/self/io read_bytes. */
  diskReadBytes: number;
  maxRssMb: number;
  error: string | null;
  kept: number | null;
  examples: number | null;
  trainSha: string | null;
  manifestSha: string | null;
  trainBytes: number | null;
}

const [mode, trajectoriesFile, verdictsFile, outDir, capArg] = process.argv.slice(2);
if (!mode || !trajectoriesFile || !verdictsFile || !outDir) throw new Error('usage: select-worker.js naive|stream <trajectories> <verdicts> <outDir> <cap|none>');
const cap = capArg === undefined || capArg === 'none' ? null : Number(capArg);
const select = { cap, order: 'fewest_calls' as const, dedup: false, seed: 1 };
const exampleOptions = { unit: 'call' as const, max_tokens: 10240, tokenizer: 'cl100k_base' as const };
const RECIPE_HASH = sha256Hex('bench-recipe');
const specHashes = new Map<string, string>();
/** As run-loop.ts keys verdicts, with the patch hash the pool passes (when it does). */
const keyOf = (t: Pick<PoolSource, 'instance_id' | 'patch'>, hash?: string) => {
  let spec = specHashes.get(t.instance_id);
  if (spec === undefined) specHashes.set(t.instance_id, (spec = specHashOf(t.instance_id)));
  return verdictKey(t.instance_id, hash ?? patchHash(normalizePatch(t.patch)), spec);
};

const maxRssMb = () => process.resourceUsage().maxRSS / 1024;
const diskRead = () => {
  try {
    return Number(/read_bytes:\s+(\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
};
const cpu0 = process.cpuUsage();
const wait0 = runQueueDelayMs();
const disk0 = diskRead();
const usage = () => {
  const cpu = process.cpuUsage(cpu0);
  return { cpuSeconds: (cpu.user + cpu.system) / 1e6, waitSeconds: (runQueueDelayMs() - wait0) / 1000, diskReadBytes: diskRead() - disk0 };
};
const started = performance.now();
let result: WorkerResult;
try {
  let kept: number;
  let examples: number;
  if (mode === 'naive') {
    const trajectories: Trajectory[] = readLedgerFileWhole(trajectoriesFile, TrajectorySchema);
    const verdicts = readLedgerFileWhole(verdictsFile, VerdictSchema);
    const selection = selectTrajectories(poolFromRecords(trajectories, verdicts, keyOf), select);
    const keptTrajectories = accumulate([{ iteration: 0, kept: selection.kept, trajectories }]);
    const built = buildExamples(keptTrajectories, exampleOptions);
    const manifest = writeDataset(outDir, {
      recipe_hash: RECIPE_HASH,
      iteration: 0,
      selections: [{ iteration: 0, selection, infrastructure_records: trajectories.filter(isInfrastructureError).length }],
      examples: built,
    });
    kept = manifest.counts.kept_after_cap;
    examples = manifest.counts.examples;
  } else if (mode === 'stream') {
    const manifest = emitDatasetFromLedgers({
      dir: outDir,
      recipe_hash: RECIPE_HASH,
      iteration: 0,
      iterations: [{ iteration: 0, trajectoriesFile, verdictsFile }],
      select,
      examples: exampleOptions,
      verdictKeyOf: keyOf,
    });
    kept = manifest.counts.kept_after_cap;
    examples = manifest.counts.examples;
  } else throw new Error(`unknown mode ${mode}`);
  const seconds = (performance.now() - started) / 1000;
  const manifestBytes = readFileSync(path.join(outDir, MANIFEST_FILE));
  const manifest = JSON.parse(manifestBytes.toString('utf8')) as { file: { sha256: string; bytes: number } };
  result = { ok: true, seconds, ...usage(), maxRssMb: maxRssMb(), error: null, kept, examples, trainSha: manifest.file.sha256, manifestSha: sha256Hex(manifestBytes), trainBytes: manifest.file.bytes };
} catch (err) {
  result = { ok: false, seconds: (performance.now() - started) / 1000, ...usage(), maxRssMb: maxRssMb(), error: `${(err as Error).name}: ${(err as Error).message}`.slice(0, 300), kept: null, examples: null, trainSha: null, manifestSha: null, trainBytes: null };
}
process.stdout.write(`${JSON.stringify(result)}\n`);
