import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ALL_BACKENDS, type SftBackend, type TrainOn } from './backends.js';
import { checkFile, formatCheckReport, type CheckReport } from './check.js';
import type { ExampleOptions } from './examples.js';
import type { DatasetManifest } from './manifest.js';
import { exampleTokenizer, isTiktokenEncoding, type ExampleTokenizer } from './tokenizer.js';
import { readLineCounts } from './line-counts.js';
import { MANIFEST_FILE } from './write.js';

export class DatasetCheckError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatasetCheckError';
  }
}

/**
 * The loop's check after emit: the dataset read by the recipe's backend under its policy must
 * have no problem (no skipped, truncated or malformed line, loss exactly on train_on); else
 * throws with the report, before any trainer sees the file.
 */
export function assertDatasetReadable(file: string, options: ExampleOptions): void {
  const tokenizer = exampleTokenizer(options.tokenizer);
  // The emit's counts of this very file (checked by its sha256), so no line is counted twice.
  const { counts } = readLineCounts(file, tokenizer.info);
  const report = checkFile(file, { tokenizer, backends: [options.backend], max_length: options.max_tokens, train_on: options.train_on, counts });
  if (report.errors.length > 0) throw new DatasetCheckError(`the SFT data does not read as ${options.backend} must train on it:\n${formatCheckReport(report, file)}`);
}

export interface SftCheckRequest {
  file: string;
  /** An encoding name or a tokenizer folder; null: the manifest's. */
  tokenizer: string | null;
  backends: readonly SftBackend[];
  train_on: TrainOn | null;
  max_length: number | null;
}

/**
 * `rft sft check`: the settings a file was written with come from the manifest.json beside it
 * (train_on, max_tokens, tokenizer, backend) unless given; without a manifest, train_on
 * assistant and max length 10240.
 */
export function checkDatasetFile(request: SftCheckRequest): CheckReport {
  if (!existsSync(request.file)) throw new DatasetCheckError(`${request.file}: no such file; give an SFT chat JSONL, e.g. a run's iter-0/datasets/cap-2/train.jsonl`);
  const manifestFile = path.join(path.dirname(request.file), MANIFEST_FILE);
  let manifest: Partial<DatasetManifest> = {};
  if (existsSync(manifestFile)) {
    try {
      manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as Partial<DatasetManifest>;
    } catch (err) {
      throw new DatasetCheckError(`${manifestFile}: ${(err as Error).message}`);
    }
  }
  const tokenizer = request.tokenizer ?? manifest.tokenizer ?? null;
  if (tokenizer === null) throw new DatasetCheckError(`--tokenizer is required (no manifest.json beside ${request.file} names one)`);
  const backends = request.backends.length > 0 ? request.backends : manifest.backend ? [manifest.backend] : ALL_BACKENDS;
  let counter: ExampleTokenizer;
  try {
    counter = exampleTokenizer(isTiktokenEncoding(tokenizer) ? tokenizer : path.resolve(tokenizer));
  } catch (err) {
    throw new DatasetCheckError((err as Error).message);
  }
  return checkFile(request.file, {
    tokenizer: counter,
    counts: readLineCounts(request.file, counter.info).counts,
    backends,
    max_length: request.max_length ?? manifest.max_tokens ?? 10240,
    train_on: request.train_on ?? manifest.train_on ?? 'assistant',
    invalid_left_out: manifest.example_counts?.invalid_replies_left_out ?? null,
  });
}
