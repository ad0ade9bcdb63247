import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { parquetReadObjects } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import type { Instance } from './instance.js';
import { fileProblem, MAKE_TASK_FILE, parseInstances, TaskFileError, validateInstance, type TaskProblem } from './load.js';

export { MAKE_TASK_FILE };

/**
 * Task files as the Hugging Face hub ships them: Parquet (what `huggingface-cli download` leaves
 * on disk; any codec the hub uses, through hyparquet and hyparquet-compressors), JSON arrays,
 * JSONL, gzipped JSON/JSONL, and a folder holding such files (a downloaded dataset snapshot).
 * Every record is checked as loadInstances checks it; nothing loads unless everything is right.
 */

const TEXT_EXTENSIONS = ['.jsonl', '.json', '.jsonl.gz', '.json.gz', '.ndjson'];
const PARQUET = '.parquet';

/** The format of a task file, from its name; null when it is not one. */
export function taskFileFormat(file: string): 'parquet' | 'text' | 'gzip' | null {
  const lower = file.toLowerCase();
  if (lower.endsWith(PARQUET)) return 'parquet';
  if (lower.endsWith('.gz')) return TEXT_EXTENSIONS.some((ext) => lower.endsWith(ext)) ? 'gzip' : null;
  return TEXT_EXTENSIONS.some((ext) => lower.endsWith(ext)) ? 'text' : null;
}

/** Hub shard names: `<split>-00000-of-00003.parquet`, `<split>.jsonl`, …; the split, when the name says one. */
export function splitOfFile(file: string): string | null {
  const base = path.basename(file).replace(/\.(parquet|jsonl|json|ndjson)(\.gz)?$/i, '');
  const m = /^([A-Za-z0-9_.]+?)(-\d{5}-of-\d{5})?$/.exec(base);
  return m && m[2] ? m[1]! : null;
}

/** The task files of a folder, recursively, sorted; hidden folders (.cache, .git) left out. */
export function taskFilesIn(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && taskFileFormat(entry.name) !== null) out.push(full);
    }
  };
  walk(dir);
  return out;
}

/** Parquet values as JSON would carry them: int64 as numbers, timestamps as ISO strings. */
function plain(value: unknown): unknown {
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object' && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, plain(v)]));
  }
  return value;
}

/** The instances of one Parquet file, each row checked; problems name the row (0-based, as `item`). */
export async function readParquetInstances(file: string): Promise<Instance[]> {
  const buffer = readFileSync(file);
  const arrayBuffer = buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength);
  let rows: Record<string, unknown>[];
  try {
    rows = (await parquetReadObjects({ file: arrayBuffer, compressors, rowFormat: 'object' })) as Record<string, unknown>[];
  } catch (err) {
    throw new TaskFileError(file, [fileProblem(`not a readable Parquet file: ${(err as Error).message}`)]);
  }
  const problems: TaskProblem[] = [];
  const instances: Instance[] = [];
  const seen = new Map<string, number>();
  rows.forEach((row, index) => {
    const checked = validateInstance(plain(row));
    for (const p of checked.problems) problems.push({ line: null, index, instance_id: checked.instance_id, ...p });
    const id = checked.instance_id;
    if (id !== null) {
      const first = seen.get(id);
      if (first !== undefined) {
        problems.push({ line: null, index, instance_id: id, field: 'instance_id', message: `duplicate instance_id: also at item ${first}` });
        return;
      }
      seen.set(id, index);
    }
    if (checked.instance !== null) instances.push(checked.instance);
  });
  if (problems.length > 0) throw new TaskFileError(file, problems);
  if (instances.length === 0) throw new TaskFileError(file, [fileProblem('holds no instances')]);
  return instances;
}

function readTextInstances(file: string, gzip: boolean): Instance[] {
  let text: string;
  try {
    const bytes = readFileSync(file);
    text = (gzip ? gunzipSync(bytes) : bytes).toString('utf8');
  } catch (err) {
    throw new TaskFileError(file, [fileProblem(gzip ? `not a readable gzip file: ${(err as Error).message}` : (err as Error).message)]);
  }
  // The inner name decides .json (one array) vs .jsonl (one record per line).
  return parseInstances(text, gzip ? file.replace(/\.gz$/i, '') : file);
}

/** One task file of any supported format. */
async function readOneFile(file: string): Promise<Instance[]> {
  const format = taskFileFormat(file);
  if (format === 'parquet') return readParquetInstances(file);
  // Any other name is read as JSON/JSONL text, as loadInstances always did.
  return readTextInstances(file, format === 'gzip');
}

/**
 * The instances at `p`: a task file of any supported format, or a folder of them (all its
 * task files, recursively, in name order). A folder holding several hub splits (train and test
 * shards side by side) is refused — mixing splits is never meant — naming the splits found.
 */
export async function readInstances(p: string): Promise<Instance[]> {
  let isDir: boolean;
  try {
    isDir = statSync(p).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TaskFileError(p, [fileProblem(code === 'ENOENT' ? `instance file not found; ${MAKE_TASK_FILE}` : (err as Error).message)]);
  }
  if (!isDir) return readOneFile(p);
  const files = taskFilesIn(p);
  if (files.length === 0) {
    throw new TaskFileError(p, [fileProblem(`the folder holds no task files (.parquet, .jsonl, .json, .jsonl.gz, .json.gz); ${MAKE_TASK_FILE}`)]);
  }
  const splits = [...new Set(files.map(splitOfFile).filter((s): s is string => s !== null))].sort();
  if (splits.length > 1) {
    const examples = splits.map((s) => path.relative(p, files.find((f) => splitOfFile(f) === s)!)).join(', ');
    throw new TaskFileError(p, [fileProblem(`the folder holds several splits (${splits.join(', ')}): point at one split's file or folder instead, e.g. ${examples}`)]);
  }
  const all: Instance[] = [];
  const from = new Map<string, string>();
  const problems: TaskProblem[] = [];
  for (const file of files) {
    for (const instance of await readOneFile(file)) {
      const first = from.get(instance.instance_id);
      if (first !== undefined) {
        problems.push({ line: null, index: null, instance_id: instance.instance_id, field: 'instance_id', message: `duplicate instance_id: in ${path.relative(p, first)} and ${path.relative(p, file)}` });
        continue;
      }
      from.set(instance.instance_id, file);
      all.push(instance);
    }
  }
  if (problems.length > 0) throw new TaskFileError(p, problems);
  return all;
}
