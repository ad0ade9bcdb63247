import { checkFile, formatCheckReport } from './check.js';
import type { ExampleOptions } from './examples.js';
import { exampleTokenizer } from './tokenizer.js';

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
  const report = checkFile(file, { tokenizer: exampleTokenizer(options.tokenizer), backends: [options.backend], max_length: options.max_tokens, train_on: options.train_on });
  if (report.errors.length > 0) throw new DatasetCheckError(`the SFT data does not read as ${options.backend} must train on it:\n${formatCheckReport(report, file)}`);
}
