import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import type { Trajectory } from '../agent/trajectory.js';
import { compareRefs, trajectoryKey, type TrajectoryRef, type VerdictKeyOf } from '../select/pool.js';
import { readTrajectoriesAt, scanPool, type LedgerLocation, type ScannedPool, type TrajectoryHead } from '../select/scan.js';
import { selectTrajectories, type SelectionResult, type SelectOptionsInput } from '../select/select.js';
import { fsyncDir, isWriteError, writeAll, writeFileAtomic, WriteFailedError } from '../store/atomic.js';
import { CRASH_POINTS, crashPoint } from '../store/crash-points.js';
import { buildExamples, emptyHistogram, ExampleCountsSchema, ExampleOptionsSchema, type DroppedExample, type ExampleCounts, type ExampleOptionsInput } from './examples.js';
import { buildManifest, type DatasetManifest, type IterationSelection } from './manifest.js';
import { DATASET_FILE, MANIFEST_FILE, serializeLine } from './write.js';

/**
 * The dataset writer for pools bigger than memory: the same train.jsonl and manifest.json as
 * buildExamples + writeDataset, byte for byte, from kept trajectories handed over one at a time.
 * Memory: one trajectory, its examples and a write buffer — never the whole dataset (a
 * train.jsonl of SWE-Gym size does not even fit in one JavaScript string).
 */

export interface StreamDatasetInput {
  recipe_hash: string;
  iteration: number;
  /** One per included iteration, each selected with the same options. */
  selections: readonly IterationSelection[];
  options: ExampleOptionsInput;
  /**
   * Exactly the selections' kept trajectories, in (instance_id, iteration, sample_index) order
   * (the order of train.jsonl), e.g. read back from the ledgers by readTrajectoriesAt.
   */
  trajectories: Iterable<Trajectory>;
  /** Hears how many examples each trajectory gave. */
  onExamples?: (trajectory: Trajectory, examples: number) => void;
}

const WRITE_BUFFER_CHARS = 1024 * 1024;

/** Writes train.jsonl (streamed into a temp file, then renamed) and manifest.json into `dir`. Returns the manifest. */
export function writeDatasetStream(dir: string, input: StreamDatasetInput): DatasetManifest {
  const options = ExampleOptionsSchema.parse(input.options);
  mkdirSync(dir, { recursive: true });
  const target = path.join(dir, DATASET_FILE);
  const temp = path.join(dir, `.${DATASET_FILE}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', 0o644);
  const hash = createHash('sha256');
  let bytes = 0;
  let pending = '';
  const flush = () => {
    if (pending === '') return;
    const chunk = Buffer.from(pending, 'utf8');
    // All of it or a throw (a full disk cuts a write short): the manifest's sha256 and size
    // describe only bytes that reached the file; on a throw the temp file is removed below.
    writeAll(fd, chunk);
    hash.update(chunk);
    bytes += chunk.length;
    pending = '';
  };

  const counts = emptyCounts();
  const instances = new Set<string>();
  const dropped: DroppedExample[] = [];
  let previous: TrajectoryRef | null = null;
  let manifest: DatasetManifest;
  try {
    for (const trajectory of input.trajectories) {
      if (previous !== null && compareRefs(previous, trajectory) >= 0) {
        throw new Error(
          compareRefs(previous, trajectory) === 0
            ? `trajectory ${trajectory.instance_id} #${trajectory.sample_index} (iteration ${trajectory.iteration}) is given twice`
            : `trajectories must come in (instance_id, iteration, sample_index) order: ${trajectoryKey(trajectory)} after ${trajectoryKey(previous)}`,
        );
      }
      previous = trajectory;
      const part = buildExamples([trajectory], options);
      for (const example of part.examples) {
        pending += `${serializeLine(example.line)}\n`;
        if (pending.length >= WRITE_BUFFER_CHARS) flush();
      }
      input.onExamples?.(trajectory, part.counts.examples);
      dropped.push(...part.dropped);
      addCounts(counts, part.counts);
      if (part.counts.examples > 0) instances.add(trajectory.instance_id);
    }
    flush();
    fsyncSync(fd);
    const total = counts.tokens_total;
    const finalCounts = ExampleCountsSchema.parse({
      ...counts,
      instances_with_examples: instances.size,
      tokens_mean: counts.examples === 0 ? null : total / counts.examples,
    });
    // Checks the examples against the selections before anything replaces the old files.
    manifest = buildManifest(
      { recipe_hash: input.recipe_hash, iteration: input.iteration, selections: input.selections, examples: { options, examples: [], dropped, counts: finalCounts } },
      { name: DATASET_FILE, sha256: hash.digest('hex'), bytes, lines: finalCounts.examples },
    );
  } catch (err) {
    closeSync(fd);
    unlinkSync(temp);
    throw isWriteError(err) ? new WriteFailedError(target, err) : err;
  }
  closeSync(fd);
  // The same crash points as writeFileAtomic (crash-anywhere kills the emit step here).
  crashPoint(CRASH_POINTS.atomicBeforeRename, target);
  renameSync(temp, target);
  crashPoint(CRASH_POINTS.atomicBeforeDirSync, target);
  fsyncDir(dir);
  writeFileAtomic(path.join(dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

function emptyCounts(): ExampleCounts {
  return {
    trajectories: 0,
    calls: 0,
    invalid_call: 0,
    valid_calls: 0,
    candidates: 0,
    over_max_tokens: 0,
    examples: 0,
    trajectories_with_examples: 0,
    instances_with_examples: 0,
    tokens_total: 0,
    tokens_mean: null,
    tokens_max: null,
    trained_tokens_total: 0,
    invalid_replies: 0,
    invalid_replies_left_out: 0,
    length_histogram: emptyHistogram(),
  };
}

/** Adds one trajectory's counts (instances_with_examples and tokens_mean are settled at the end). */
function addCounts(into: ExampleCounts, part: ExampleCounts): void {
  into.trajectories += part.trajectories;
  into.calls += part.calls;
  into.invalid_call += part.invalid_call;
  into.valid_calls += part.valid_calls;
  into.candidates += part.candidates;
  into.over_max_tokens += part.over_max_tokens;
  into.examples += part.examples;
  into.trajectories_with_examples += part.trajectories_with_examples;
  into.tokens_total += part.tokens_total;
  into.trained_tokens_total += part.trained_tokens_total;
  into.invalid_replies += part.invalid_replies;
  into.invalid_replies_left_out += part.invalid_replies_left_out;
  part.length_histogram.forEach((n, i) => (into.length_histogram[i]! += n));
  if (part.tokens_max !== null) into.tokens_max = into.tokens_max === null ? part.tokens_max : Math.max(into.tokens_max, part.tokens_max);
}

/** One iteration's ledgers, as the run directory holds them. */
export interface IterationLedgers {
  iteration: number;
  trajectoriesFile: string;
  verdictsFile: string;
}

export interface EmitFromLedgersInput {
  dir: string;
  recipe_hash: string;
  /** The iteration the dataset trains; `iterations` holds it, plus earlier ones when accumulating. */
  iteration: number;
  iterations: readonly IterationLedgers[];
  select: SelectOptionsInput;
  examples: ExampleOptionsInput;
  /** The verdict cache key of a trajectory (instance, normalised patch, eval spec). */
  verdictKeyOf: VerdictKeyOf<TrajectoryHead>;
}

/**
 * Selection + emission straight from the ledgers, streaming (the loop's emit step without
 * loading the iterations): scan each iteration's pool, select it, read the kept trajectories back
 * in train.jsonl order and write the dataset. Same files as poolFromRecords → selectTrajectories →
 * accumulate → buildExamples → writeDataset on the loaded ledgers.
 */
export function emitDatasetFromLedgers(input: EmitFromLedgersInput): DatasetManifest {
  const scanned = input.iterations.map((it) => ({ iteration: it.iteration, trajectoriesFile: it.trajectoriesFile, pool: scanPool(it.trajectoriesFile, it.verdictsFile, input.verdictKeyOf) }));
  return writeSelectedDataset(input.dir, {
    recipe_hash: input.recipe_hash,
    iteration: input.iteration,
    parts: scanned.map((part) => ({ ...part, selection: selectTrajectories(part.pool.entries, input.select) })),
    examples: input.examples,
  });
}

/** One iteration's pool as scanned from its ledger. */
export interface ScannedIteration {
  iteration: number;
  trajectoriesFile: string;
  pool: ScannedPool;
}

/**
 * Writes the dataset of selections already made on scanned pools: the kept trajectories are read
 * back from their ledgers one at a time, in train.jsonl order. `onExamples` hears how many
 * examples each kept trajectory gave (for ablation tables).
 */
export function writeSelectedDataset(
  dir: string,
  input: {
    recipe_hash: string;
    iteration: number;
    parts: ReadonlyArray<ScannedIteration & { selection: SelectionResult }>;
    examples: ExampleOptionsInput;
    onExamples?: (trajectory: Trajectory, examples: number) => void;
  },
): DatasetManifest {
  const kept = input.parts
    .flatMap(({ trajectoriesFile, pool, selection }) => selection.kept.map((entry) => ({ entry, file: trajectoriesFile, at: pool.locations.get(trajectoryKey(entry))! })))
    .sort((a, b) => compareRefs(a.entry, b.entry));
  return writeDatasetStream(dir, {
    recipe_hash: input.recipe_hash,
    iteration: input.iteration,
    selections: input.parts.map(({ iteration, pool, selection }) => ({ iteration, selection, infrastructure_records: pool.infrastructure_records })),
    options: input.examples,
    trajectories: readInOrder(kept),
    ...(input.onExamples ? { onExamples: input.onExamples } : {}),
  });
}

/** Reads kept records back in the order given, keeping one file open per run of the same ledger. */
function* readInOrder(kept: ReadonlyArray<{ file: string; at: LedgerLocation }>): Generator<Trajectory> {
  let i = 0;
  while (i < kept.length) {
    const file = kept[i]!.file;
    let j = i;
    while (j < kept.length && kept[j]!.file === file) j += 1;
    yield* readTrajectoriesAt(file, kept.slice(i, j).map((k) => k.at));
    i = j;
  }
}
