import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { TaskSet } from '../recipe/schema.js';
import { INSTANCE_ID_PATTERN, type Instance } from './instance.js';
import { fileProblem, loadInstances, TaskFileError, type TaskProblem } from './load.js';
import { readInstances, taskFileFormat } from './read.js';

/** One id read from an ids file, with its line. */
export interface IdEntry {
  id: string;
  line: number;
}

/**
 * Reads an ids file: one instance id per line; blank lines and `#` comments (whole-line or
 * after the id) are ignored. A line that is not one instance id is an error (a CSV or a
 * pasted table would otherwise be misread). Repeated ids are kept once.
 */
export function readIdsFile(file: string): IdEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'ids file not found; it lists one instance id per line: write it by hand, or from an instance file with `jq -r .instance_id tasks.jsonl > ids.txt`' : (err as Error).message;
    throw new TaskFileError(file, [fileProblem(reason)]);
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const entries: IdEntry[] = [];
  const seen = new Set<string>();
  const problems: TaskProblem[] = [];
  text.split('\n').forEach((raw, i) => {
    const hash = raw.indexOf('#');
    const content = (hash >= 0 ? raw.slice(0, hash) : raw).trim();
    if (content === '') return;
    if (!INSTANCE_ID_PATTERN.test(content)) {
      const message = /\s/.test(content)
        ? `expected one instance id per line, got "${content.slice(0, 80)}"`
        : `"${content.slice(0, 80)}" is not an instance id (letters, digits, ".", "_" or "-")`;
      problems.push({ line: i + 1, index: null, instance_id: null, field: '', message });
      return;
    }
    if (seen.has(content)) return;
    seen.add(content);
    entries.push({ id: content, line: i + 1 });
  });
  if (problems.length > 0) throw new TaskFileError(file, problems);
  if (entries.length === 0) throw new TaskFileError(file, [fileProblem('lists no instance ids')]);
  return entries;
}

/**
 * The instances of a task set, in the order of its instance file: the file at `path` (relative
 * to `baseDir`, the recipe's folder), then only the ids in `ids_file`, then only the `repos`
 * listed, then the first `limit`. An id in the ids file that the instance file lacks, a repo
 * that has no instance in the file, and an empty result are errors, never silently dropped.
 */
export async function selectTaskSet(taskSet: TaskSetFilter, baseDir: string): Promise<Instance[]> {
  const instanceFile = path.resolve(baseDir, taskSet.path);
  return filterTaskSet(await readInstances(instanceFile), taskSet, baseDir);
}

type TaskSetFilter = Pick<TaskSet, 'path' | 'ids_file' | 'repos' | 'limit'>;

/**
 * selectTaskSet for synchronous callers: JSON / JSONL task files (gzipped or not) only; a
 * Parquet file or a folder is refused with the way round it.
 */
export function selectTaskSetSync(taskSet: TaskSetFilter, baseDir: string): Instance[] {
  const instanceFile = path.resolve(baseDir, taskSet.path);
  if (taskFileFormat(instanceFile) === 'parquet' || (existsSync(instanceFile) && statSync(instanceFile).isDirectory())) {
    throw new TaskFileError(instanceFile, [
      fileProblem('this command reads JSON/JSONL task files only; convert it once with `rft tasks convert <path> --out tasks.jsonl` and point the recipe at that file'),
    ]);
  }
  return filterTaskSet(loadInstances(instanceFile), taskSet, baseDir);
}

function filterTaskSet(all: Instance[], taskSet: TaskSetFilter, baseDir: string): Instance[] {
  const instanceFile = path.resolve(baseDir, taskSet.path);
  let selected = all;

  if (taskSet.ids_file !== null) {
    const idsFile = path.resolve(baseDir, taskSet.ids_file);
    const entries = readIdsFile(idsFile);
    const present = new Set(all.map((instance) => instance.instance_id));
    const missing = entries.filter((entry) => !present.has(entry.id));
    if (missing.length > 0) {
      const byLowerCase = new Map(all.map((instance) => [instance.instance_id.toLowerCase(), instance.instance_id]));
      throw new TaskFileError(
        idsFile,
        missing.map((entry) => {
          const near = byLowerCase.get(entry.id.toLowerCase());
          const hint = near !== undefined ? ` (ids are case-sensitive: did you mean ${near}?)` : '';
          return { line: entry.line, index: null, instance_id: entry.id, field: '', message: `not in ${instanceFile}${hint}` };
        }),
      );
    }
    const wanted = new Set(entries.map((entry) => entry.id));
    selected = selected.filter((instance) => wanted.has(instance.instance_id));
  }

  if (taskSet.repos.length > 0) {
    // GitHub names are case-insensitive: Project-MONAI/MONAI and project-monai/monai are one repository.
    const inFile = new Set(all.map((instance) => instance.repo.toLowerCase()));
    const unknown = taskSet.repos.filter((repo) => !inFile.has(repo.toLowerCase()));
    if (unknown.length > 0) {
      throw new TaskFileError(instanceFile, [
        fileProblem(`no instance of ${unknown.join(', ')} (repos filter; the file has ${[...new Set(all.map((i) => i.repo))].sort().join(', ')})`),
      ]);
    }
    const wanted = new Set(taskSet.repos.map((repo) => repo.toLowerCase()));
    selected = selected.filter((instance) => wanted.has(instance.repo.toLowerCase()));
  }

  if (selected.length === 0) {
    throw new TaskFileError(instanceFile, [fileProblem('no instance is left after the ids_file and repos filters')]);
  }
  if (taskSet.limit !== null) selected = selected.slice(0, taskSet.limit);
  return selected;
}
