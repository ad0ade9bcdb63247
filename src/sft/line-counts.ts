import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { TokenizerInfoSchema, type LineTokens, type TokenizerInfo } from './tokenizer.js';

/**
 * The token counts of a train.jsonl, as the emit made them, kept beside it (`train.counts.json`)
 * so the check after the emit reads them instead of counting every line again. Keyed by the
 * dataset file's sha256 and size and by the tokenizer (name and, for a Hugging Face one, the
 * sha256 of its files): a changed file or another tokenizer is counted afresh, never trusted.
 */

export const LINE_COUNTS_FILE = 'train.counts.json';
const FORMAT = 'rft-line-counts/1';

export const LineCountsSchema = z.strictObject({
  format: z.literal(FORMAT),
  dataset: z.object({ sha256: z.string().regex(/^[0-9a-f]{64}$/), bytes: z.number().int().nonnegative() }),
  tokenizer: TokenizerInfoSchema,
  /** Per line of the file, in order: [total, ...spans] (the spans of the line's messages, as the check counts them). */
  lines: z.array(z.array(z.number().int().nonnegative()).min(1)),
});
export type LineCounts = z.infer<typeof LineCountsSchema>;

/** The sidecar's text for a dataset file written with these counts. */
export function lineCountsText(dataset: { sha256: string; bytes: number }, tokenizer: TokenizerInfo, lines: readonly LineTokens[]): string {
  const record: LineCounts = { format: FORMAT, dataset, tokenizer, lines: lines.map((l) => [l.total, ...l.spans]) };
  return `${JSON.stringify(record)}\n`;
}

/** sha256 and size of a file, read in chunks. */
export function fileDigest(file: string): { sha256: string; bytes: number } {
  const hash = createHash('sha256');
  const fd = openSync(file, 'r');
  const buffer = Buffer.alloc(1 << 22);
  let bytes = 0;
  try {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
      bytes += n;
    }
  } finally {
    closeSync(fd);
  }
  return { sha256: hash.digest('hex'), bytes };
}

export type LineCountsLookup = { counts: Array<LineTokens>; why: null } | { counts: null; why: string };

/**
 * The emit's counts of `datasetFile`, when its sidecar is there and describes exactly this file
 * under this tokenizer; else null and why (the check then counts the lines itself).
 */
export function readLineCounts(datasetFile: string, tokenizer: TokenizerInfo): LineCountsLookup {
  const file = path.join(path.dirname(datasetFile), LINE_COUNTS_FILE);
  if (!existsSync(file)) return { counts: null, why: `no ${LINE_COUNTS_FILE}` };
  let record: LineCounts;
  try {
    record = LineCountsSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  } catch (err) {
    return { counts: null, why: `${file} does not read (${(err as Error).message.split('\n')[0]})` };
  }
  if (record.tokenizer.name !== tokenizer.name || record.tokenizer.sha256 !== tokenizer.sha256) return { counts: null, why: `${LINE_COUNTS_FILE} counts with ${record.tokenizer.name}, not ${tokenizer.name}` };
  const digest = fileDigest(datasetFile);
  if (digest.sha256 !== record.dataset.sha256 || digest.bytes !== record.dataset.bytes) return { counts: null, why: `${LINE_COUNTS_FILE} describes another version of the file` };
  return { counts: record.lines.map(([total, ...spans]) => ({ total: total!, spans })), why: null };
}
