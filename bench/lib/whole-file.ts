import { existsSync, readFileSync } from 'node:fs';
import type { z } from 'zod';
import { parseLedgerLine } from '../../src/store/ledger.js';

/**
 * The ledger reader the loop used before issue 14, kept here only as the benchmarks' reference
 * ("today's code"): the whole file read into one string and every record parsed and held. It
 * fails on files over 2 GiB (readFileSync) or ~512 MB (V8's string limit). Whole-record lines
 * only: it does not follow the compact layout's blob references.
 */
export function readLedgerFileWhole<T>(file: string, schema: z.ZodType<T>): T[] {
  if (!existsSync(file)) return [];
  const buffer = readFileSync(file);
  const body = buffer.subarray(0, buffer.lastIndexOf(0x0a) + 1).toString('utf8');
  const lines = body.length === 0 ? [] : body.slice(0, -1).split('\n');
  return lines.map((text, i) => parseLedgerLine(file, i + 1, text, schema));
}
