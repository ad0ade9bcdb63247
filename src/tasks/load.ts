import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import path from 'node:path';
import type { z } from 'zod';
import { InstanceSchema, type Instance } from './instance.js';

/** How many problems an error message lists; the error object keeps them all. */
export const MAX_REPORTED_PROBLEMS = 20;

/** What makes a task file, for "not found" messages. */
export const MAKE_TASK_FILE =
  'make it with `rft tasks fetch <dataset> --split <split> --out <file.jsonl>` (e.g. SWE-Gym/SWE-Gym-Lite), or download the dataset with `huggingface-cli download --repo-type dataset <dataset> --local-dir <folder>` and point at the folder or one of its files';

/** One thing wrong with an instance file (or an ids file), located as precisely as the format allows. */
export interface TaskProblem {
  /** 1-based line in the file (for a JSON array: the line where the item starts), when known. */
  line: number | null;
  /** 0-based position in a JSON array file; null for JSONL. */
  index: number | null;
  /** The record's instance_id, when it has a readable one. */
  instance_id: string | null;
  /** Dotted path of the field, e.g. `FAIL_TO_PASS` or `PASS_TO_PASS.3` ('' for the record or file itself). */
  field: string;
  message: string;
}

export class TaskFileError extends Error {
  constructor(
    readonly file: string,
    readonly problems: TaskProblem[],
  ) {
    super(formatProblems(file, problems));
    this.name = 'TaskFileError';
  }
}

function formatProblems(file: string, problems: TaskProblem[]): string {
  const shown = problems.slice(0, MAX_REPORTED_PROBLEMS).map((p) => formatProblem(file, p));
  const more = problems.length - shown.length;
  if (more > 0) shown.push(`(and ${more} more problem${more === 1 ? '' : 's'} in ${file})`);
  return shown.join('\n');
}

export function formatProblem(file: string, p: TaskProblem): string {
  let where = p.line !== null ? `${file}:${p.line}` : file;
  if (p.index !== null) where += ` (item ${p.index})`;
  const parts = [where];
  if (p.instance_id !== null) parts.push(p.instance_id);
  if (p.field) parts.push(p.field);
  return `${parts.join(': ')}: ${p.message}`;
}

/** A problem with no line: the file as a whole. */
export function fileProblem(message: string): TaskProblem {
  return { line: null, index: null, instance_id: null, field: '', message };
}

/**
 * Reads an instance file in the SWE-bench format: a JSON file holding a top-level array of
 * instances, or JSONL (one instance per line, blank lines ignored), either maybe gzipped (.gz).
 * Parquet files and folders of task files are read by readInstances (src/tasks/read.ts), which
 * is asynchronous. FAIL_TO_PASS / PASS_TO_PASS
 * may be JSON-encoded strings (SWE-bench) or lists (SWE-Gym). Every bad record and every
 * duplicate instance_id is collected and reported in one TaskFileError: nothing is loaded
 * unless everything is right.
 */
export function loadInstances(file: string): Instance[] {
  let text: string;
  const gzip = /\.gz$/i.test(file);
  try {
    const bytes = readFileSync(file);
    text = (gzip ? gunzipSync(bytes) : bytes).toString('utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? `instance file not found; ${MAKE_TASK_FILE}`
        : code === 'EISDIR'
          ? 'is a folder, not an instance file (folders are read by readInstances)'
          : gzip && !code
            ? `not a readable gzip file: ${(err as Error).message}`
            : (err as Error).message;
    throw new TaskFileError(file, [fileProblem(reason)]);
  }
  // The inner name decides .json (one array) vs .jsonl (one record per line).
  return parseInstances(text, gzip ? file.replace(/\.gz$/i, '') : file);
}

/** Parses the text of an instance file; `file` is only used in messages and to tell .json from .jsonl. */
export function parseInstances(text: string, file: string): Instance[] {
  const records = splitRecords(text, file);
  const problems: TaskProblem[] = [];
  const instances: Instance[] = [];
  const firstSeen = new Map<string, RawRecord>();
  for (const record of records) {
    const at = { line: record.line, index: record.index };
    if (record.parseError !== null) {
      problems.push({ ...at, instance_id: null, field: '', message: `invalid JSON: ${record.parseError}` });
      continue;
    }
    const checked = validateInstance(record.value);
    for (const p of checked.problems) problems.push({ ...at, instance_id: checked.instance_id, ...p });
    // Duplicates count even among bad records: fixing one must not reveal another error.
    const id = checked.instance_id;
    const first = id !== null ? firstSeen.get(id) : undefined;
    if (id !== null && first !== undefined) {
      problems.push({ ...at, instance_id: id, field: 'instance_id', message: `duplicate instance_id: also at ${describeAt(first)}` });
      continue;
    }
    if (id !== null) firstSeen.set(id, record);
    if (checked.instance !== null) instances.push(checked.instance);
  }
  if (problems.length > 0) throw new TaskFileError(file, problems);
  if (instances.length === 0) throw new TaskFileError(file, [fileProblem('holds no instances')]);
  return instances;
}

function describeAt(record: RawRecord): string {
  if (record.index === null) return `line ${record.line}`;
  return record.line !== null ? `line ${record.line} (item ${record.index})` : `item ${record.index}`;
}

/** The outcome of checking one record against InstanceSchema. */
export interface CheckedInstance {
  instance: Instance | null;
  /** The record's instance_id when it is a non-empty string, even if the record is bad. */
  instance_id: string | null;
  problems: Array<Pick<TaskProblem, 'field' | 'message'>>;
}

/** Checks one parsed record; used for files and for rows fetched from a dataset server. */
export function validateInstance(value: unknown): CheckedInstance {
  const isObject = typeof value === 'object' && value !== null && !Array.isArray(value);
  const rawId = isObject ? (value as Record<string, unknown>).instance_id : undefined;
  const instance_id = typeof rawId === 'string' && rawId !== '' ? rawId : null;
  if (!isObject) {
    const kind = value === null ? 'null' : Array.isArray(value) ? 'a list' : `a ${typeof value}`;
    return { instance: null, instance_id, problems: [{ field: '', message: `an instance is a JSON object, got ${kind}` }] };
  }
  const result = InstanceSchema.safeParse(value);
  if (result.success) return { instance: result.data, instance_id, problems: [] };
  return {
    instance: null,
    instance_id,
    problems: result.error.issues.map((issue) => ({ field: issue.path.map(String).join('.'), message: messageOf(issue) })),
  };
}

function messageOf(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_type' && /received undefined$/.test(issue.message)) {
    return `is required (expected ${issue.expected})`;
  }
  return issue.message.replace(/^Invalid input: /, '');
}

// ---------------------------------------------------------------------------------------------
// Splitting a file into records, each with where it came from

/**
 * The records of a JSON-array or JSONL file, each with where it came from, each parsed on its own
 * so that one broken record is reported without hiding the others.
 */
export function splitRecords(text: string, file: string): RawRecord[] {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte-order mark
  const trimmed = text.trimStart();
  if (trimmed.startsWith('[')) return splitJsonArray(text, file);
  if (path.extname(file).toLowerCase() === '.json' && trimmed !== '') {
    throw new TaskFileError(file, [
      { ...fileProblem('a .json file holds a top-level array of records ([{...}, {...}]); use .jsonl for one record per line'), line: 1 },
    ]);
  }
  return splitJsonLines(text);
}

export interface RawRecord {
  line: number | null;
  index: number | null;
  value: unknown;
  parseError: string | null;
}

function parseJson(text: string): Pick<RawRecord, 'value' | 'parseError'> {
  try {
    return { value: JSON.parse(text), parseError: null };
  } catch (err) {
    const message = (err as Error).message.replace(/\s+/g, ' ');
    return { value: undefined, parseError: message.length > 200 ? `${message.slice(0, 197)}...` : message };
  }
}

function splitJsonLines(text: string): RawRecord[] {
  const records: RawRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    records.push({ line: i + 1, index: null, ...parseJson(line) });
  }
  return records;
}

/**
 * Splits a top-level JSON array into its items, noting the line each starts on, so that each
 * item is parsed (and reported) on its own. A file whose structure is broken (unbalanced
 * brackets, an unterminated string, text after the closing bracket) is one problem for the
 * whole file; a broken item inside a sound structure is a problem for that item.
 */
function splitJsonArray(text: string, file: string): RawRecord[] {
  const records: RawRecord[] = [];
  let line = 1;
  let i = 0;
  const fail = (message: string): never => {
    throw new TaskFileError(file, [{ ...fileProblem(message), line }]);
  };
  const skipSpace = () => {
    while (i < text.length && /\s/.test(text[i]!)) {
      if (text[i] === '\n') line++;
      i++;
    }
  };
  skipSpace();
  i++; // the opening [
  skipSpace();
  if (text[i] === ']') {
    i++;
  } else {
    for (;;) {
      skipSpace();
      const start = i;
      const startLine = line;
      let depth = 0;
      let inString = false;
      // Scan to the comma or bracket that ends this item at depth 0.
      for (; i < text.length; i++) {
        const c = text[i]!;
        if (c === '\n') {
          if (inString) fail('a string runs past the end of its line (an unescaped newline in a string?)');
          line++;
        }
        if (inString) {
          if (c === '\\') i++;
          else if (c === '"') inString = false;
          continue;
        }
        if (c === '"') inString = true;
        else if (c === '{' || c === '[') depth++;
        else if (c === '}' || c === ']') {
          if (depth === 0) break;
          depth--;
        } else if (c === ',' && depth === 0) break;
      }
      if (i >= text.length) fail(inString ? 'unterminated string' : 'the top-level array is not closed with ]');
      const itemText = text.slice(start, i).trimEnd();
      const index = records.length;
      if (itemText === '') fail(`empty item in the array (item ${index}): a stray or trailing comma?`);
      if (text[i] === '}') {
        line = startLine + countNewlines(itemText);
        fail(`unbalanced } in item ${index}`);
      }
      records.push({ line: startLine, index, ...parseJson(itemText) });
      if (text[i] === ']') {
        i++;
        break;
      }
      i++; // the comma
    }
  }
  skipSpace();
  if (i < text.length) fail('text after the closing ] of the top-level array');
  return records;
}

function countNewlines(s: string): number {
  let n = 0;
  for (let k = 0; k < s.length; k++) if (s[k] === '\n') n++;
  return n;
}
