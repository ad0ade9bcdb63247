import { createHash, randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Trajectory } from '../agent/trajectory.js';
import { compareRefs, trajectoryKey, type TrajectoryRef, type VerdictKeyOf } from '../select/pool.js';
import { readTrajectoriesAt, scanPool, type LedgerLocation, type ScannedPool, type TrajectoryHead } from '../select/scan.js';
import { selectTrajectories, type SelectionResult, type SelectOptionsInput } from '../select/select.js';
import { fsyncDir, isWriteError, writeAll, writeFileAtomic, WriteFailedError } from '../store/atomic.js';
import { CRASH_POINTS, crashPoint } from '../store/crash-points.js';
import { buildExamples, emptyHistogram, ExampleCountsSchema, ExampleOptionsSchema, type DroppedExample, type ExampleCounts, type ExampleOptions, type ExampleOptionsInput, type ExamplesResult } from './examples.js';
import { lineCountsText, LINE_COUNTS_FILE } from './line-counts.js';
import { exampleTokenizer, type LineTokens, type TokenizerInfo } from './tokenizer.js';
import { buildManifest, type DatasetManifest, type IterationSelection } from './manifest.js';
import { DATASET_FILE, MANIFEST_FILE, serializeLine } from './write.js';

/**
 * The dataset writer for pools bigger than memory: the same train.jsonl and manifest.json as
 * buildExamples + writeDataset, byte for byte, from kept trajectories handed over one at a time.
 * Memory: one trajectory, its examples and their bytes — never the whole dataset (a
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

const NEWLINE = Buffer.from('\n');

/**
 * A trajectory's train.jsonl lines, encoded once (every dataset keeping it writes these bytes).
 * Line by line: encoding one joined string of a trajectory's lines measured ~5× slower in V8.
 */
function linesBytes(part: ExamplesResult): Buffer {
  return Buffer.concat(part.examples.flatMap((e) => [Buffer.from(serializeLine(e.line), 'utf8'), NEWLINE]));
}

/** Writes train.jsonl (streamed into a temp file, then renamed) and manifest.json into `dir`. Returns the manifest. */
export function writeDatasetStream(dir: string, input: StreamDatasetInput): DatasetManifest {
  const options = ExampleOptionsSchema.parse(input.options);
  const sink = new DatasetSink(dir);
  try {
    for (const trajectory of input.trajectories) {
      const part = buildExamples([trajectory], options);
      sink.add(trajectory, part, linesBytes(part));
      input.onExamples?.(trajectory, part.counts.examples);
    }
    return sink.finish({ recipe_hash: input.recipe_hash, iteration: input.iteration, selections: input.selections, options });
  } catch (err) {
    sink.abort();
    throw sink.failure(err);
  }
}

/**
 * One dataset folder being written: train.jsonl streamed into a temp file (renamed into place by
 * finish), its sha256 and counts kept as lines come, and the examples' token counts for the
 * check after the emit (train.counts.json). Fed one trajectory at a time, with the examples built
 * once for it (several sinks can share them: writeSelectedDatasets).
 */
class DatasetSink {
  private readonly target: string;
  private readonly temp: string;
  private readonly fd: number;
  private readonly hash = createHash('sha256');
  private bytes = 0;
  private readonly counts = emptyCounts();
  private readonly instances = new Set<string>();
  private readonly dropped: DroppedExample[] = [];
  private readonly lineCounts: LineTokens[] = [];
  private tokenizer: TokenizerInfo | null = null;
  private previous: TrajectoryRef | null = null;
  private closed = false;

  constructor(private readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.target = path.join(dir, DATASET_FILE);
    this.temp = path.join(dir, `.${DATASET_FILE}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    this.fd = openSync(this.temp, 'wx', 0o644);
  }

  /** A trajectory's examples (`part`, built from it alone) and their lines, serialised (`lines`). */
  add(trajectory: Trajectory, part: ExamplesResult, lines: Buffer): void {
    const previous = this.previous;
    if (previous !== null && compareRefs(previous, trajectory) >= 0) {
      throw new Error(
        compareRefs(previous, trajectory) === 0
          ? `trajectory ${trajectory.instance_id} #${trajectory.sample_index} (iteration ${trajectory.iteration}) is given twice`
          : `trajectories must come in (instance_id, iteration, sample_index) order: ${trajectoryKey(trajectory)} after ${trajectoryKey(previous)}`,
      );
    }
    this.previous = trajectory;
    // All of it or a throw (a full disk cuts a write short): the manifest's sha256 and size
    // describe only bytes that reached the file; on a throw the temp file is removed (abort).
    writeAll(this.fd, lines);
    this.hash.update(lines);
    this.bytes += lines.length;
    for (const example of part.examples) this.lineCounts.push(example.counts);
    this.tokenizer = part.tokenizer;
    for (const d of part.dropped) this.dropped.push(d);
    addCounts(this.counts, part.counts);
    if (part.counts.examples > 0) this.instances.add(trajectory.instance_id);
  }

  /** Puts train.jsonl in place, then its counts and manifest.json (each atomically). Returns the manifest. */
  finish(input: { recipe_hash: string; iteration: number; selections: readonly IterationSelection[]; options: ExampleOptions }): DatasetManifest {
    let manifest: DatasetManifest;
    const tokenizer = this.tokenizer ?? exampleTokenizer(input.options.tokenizer).info;
    try {
      fsyncSync(this.fd);
      const total = this.counts.tokens_total;
      const finalCounts = ExampleCountsSchema.parse({
        ...this.counts,
        instances_with_examples: this.instances.size,
        tokens_mean: this.counts.examples === 0 ? null : total / this.counts.examples,
      });
      // Checks the examples against the selections before anything replaces the old files.
      manifest = buildManifest(
        { recipe_hash: input.recipe_hash, iteration: input.iteration, selections: input.selections, examples: { options: input.options, tokenizer, examples: [], dropped: this.dropped, counts: finalCounts } },
        { name: DATASET_FILE, sha256: this.hash.digest('hex'), bytes: this.bytes, lines: finalCounts.examples },
      );
    } catch (err) {
      this.abort();
      throw err;
    }
    this.closed = true;
    closeSync(this.fd);
    // The same crash points as writeFileAtomic (crash-anywhere kills the emit step here).
    crashPoint(CRASH_POINTS.atomicBeforeRename, this.target);
    renameSync(this.temp, this.target);
    crashPoint(CRASH_POINTS.atomicBeforeDirSync, this.target);
    fsyncDir(this.dir);
    writeFileAtomic(path.join(this.dir, LINE_COUNTS_FILE), lineCountsText({ sha256: manifest.file.sha256, bytes: manifest.file.bytes }, tokenizer, this.lineCounts));
    writeFileAtomic(path.join(this.dir, MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  }

  /** Removes the temp file (after a failure). */
  abort(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
    rmSync(this.temp, { force: true });
  }

  /** A write error as the error of the target file. */
  failure(err: unknown): unknown {
    return isWriteError(err) ? new WriteFailedError(this.target, err) : err;
  }
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
  const onExamples = input.onExamples;
  return writeSelectedDatasets([{ dir, parts: input.parts }], {
    recipe_hash: input.recipe_hash,
    iteration: input.iteration,
    examples: input.examples,
    ...(onExamples ? { onTrajectory: (t: Trajectory, n: number) => onExamples(t, n) } : {}),
  })[0]!;
}

/** One dataset of writeSelectedDatasets: its folder and its selections of the scanned pools. */
export interface SelectedDatasetOutput {
  dir: string;
  parts: ReadonlyArray<ScannedIteration & { selection: SelectionResult }>;
}

/**
 * Several datasets of the same pools and example options (`rft select --cap 1,2,none`), written in
 * one pass: the trajectories any of them keeps are read back once, in train.jsonl order, their
 * examples built and serialised once, and the lines appended to every dataset that keeps them.
 * Each folder gets exactly the files writeSelectedDataset would write for it alone.
 * `onTrajectory` hears each trajectory read, its examples, and the outputs (indexes) keeping it.
 */
export function writeSelectedDatasets(
  outputs: readonly SelectedDatasetOutput[],
  input: {
    recipe_hash: string;
    iteration: number;
    examples: ExampleOptionsInput;
    onTrajectory?: (trajectory: Trajectory, examples: number, keptBy: readonly number[]) => void;
  },
): DatasetManifest[] {
  const options = ExampleOptionsSchema.parse(input.examples);
  // Every kept (ledger, record) once, with the outputs keeping it.
  const byKey = new Map<string, { entry: TrajectoryRef; file: string; at: LedgerLocation; keptBy: number[] }>();
  outputs.forEach(({ parts }, o) => {
    for (const { trajectoriesFile, pool, selection } of parts) {
      for (const entry of selection.kept) {
        const key = `${trajectoriesFile}\0${trajectoryKey(entry)}`;
        const found = byKey.get(key);
        if (found) {
          if (found.keptBy.at(-1) !== o) found.keptBy.push(o);
        } else byKey.set(key, { entry, file: trajectoriesFile, at: pool.locations.get(trajectoryKey(entry))!, keptBy: [o] });
      }
    }
  });
  const kept = [...byKey.values()].sort((a, b) => compareRefs(a.entry, b.entry));
  const sinks: DatasetSink[] = [];
  try {
    for (const { dir } of outputs) sinks.push(new DatasetSink(dir));
    let i = 0;
    for (const trajectory of readInOrder(kept)) {
      const { keptBy } = kept[i++]!;
      const part = buildExamples([trajectory], options);
      const bytes = linesBytes(part);
      for (const o of keptBy) sinks[o]!.add(trajectory, part, bytes);
      input.onTrajectory?.(trajectory, part.counts.examples, keptBy);
    }
    return outputs.map(({ parts }, o) =>
      sinks[o]!.finish({
        recipe_hash: input.recipe_hash,
        iteration: input.iteration,
        selections: parts.map(({ iteration, pool, selection }) => ({ iteration, selection, infrastructure_records: pool.infrastructure_records })),
        options,
      }),
    );
  } catch (err) {
    for (const sink of sinks) sink.abort();
    throw sinks[0]?.failure(err) ?? err;
  }
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
