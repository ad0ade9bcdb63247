import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TaskSetSchema } from '../../src/recipe/schema.js';
import { TaskFileError } from '../../src/tasks/load.js';
import { readIdsFile, selectTaskSetSync } from '../../src/tasks/select.js';
import { jsonl, swebenchRecord, swegymRecord, tempDir, writeFile } from './helpers.js';

const RECORDS = [
  swegymRecord('getmoto__moto-5752', { repo: 'getmoto/moto' }),
  swegymRecord('Project-MONAI__MONAI-3042'),
  swebenchRecord('django__django-11099'),
  swegymRecord('getmoto__moto-6000', { repo: 'getmoto/moto' }),
  swegymRecord('Project-MONAI__MONAI-4000'),
  swebenchRecord('django__django-12000'),
];

/** A recipe folder with the instance file in data/, as a recipe would refer to it. */
function recipeDir(): string {
  const dir = tempDir();
  mkdirSync(path.join(dir, 'data'));
  writeFile(dir, 'data/tasks.jsonl', jsonl(RECORDS));
  return dir;
}

const taskSet = (fields: Record<string, unknown>) => TaskSetSchema.parse({ path: 'data/tasks.jsonl', ...fields });
const ids = (instances: Array<{ instance_id: string }>) => instances.map((i) => i.instance_id);

function errorOf(fn: () => unknown): TaskFileError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TaskFileError);
    return err as TaskFileError;
  }
  throw new Error('no error');
}

describe('selecting a task set', () => {
  it('without filters, loads the whole file (relative to the recipe folder) in file order', () => {
    expect(ids(selectTaskSetSync(taskSet({}), recipeDir()))).toEqual(RECORDS.map((r) => r.instance_id));
  });

  it('keeps the ids of ids_file, in file order, ignoring comments and blank lines', () => {
    const dir = recipeDir();
    writeFile(dir, 'data/ids.txt', '# held-out set\n\ndjango__django-12000\n  Project-MONAI__MONAI-3042   # the ToNumpy bug\ngetmoto__moto-5752\r\ndjango__django-12000\n');
    const selected = selectTaskSetSync(taskSet({ ids_file: 'data/ids.txt' }), dir);
    expect(ids(selected)).toEqual(['getmoto__moto-5752', 'Project-MONAI__MONAI-3042', 'django__django-12000']);
  });

  it('names every id of ids_file that the instance file lacks, with its line', () => {
    const dir = recipeDir();
    writeFile(dir, 'ids.txt', 'getmoto__moto-5752\nsympy__sympy-20590\n# comment\nproject-monai__monai-3042\n');
    const error = errorOf(() => selectTaskSetSync(taskSet({ ids_file: 'ids.txt' }), dir));
    const idsFile = path.join(dir, 'ids.txt');
    expect(error.file).toBe(idsFile);
    expect(error.problems.map((p) => [p.line, p.instance_id])).toEqual([
      [2, 'sympy__sympy-20590'],
      [4, 'project-monai__monai-3042'],
    ]);
    expect(error.message).toContain(`${idsFile}:2: sympy__sympy-20590: not in ${path.join(dir, 'data/tasks.jsonl')}`);
    expect(error.message).toContain('did you mean Project-MONAI__MONAI-3042?');
  });

  it('keeps only the listed repos, matching names as GitHub does (any case)', () => {
    const selected = selectTaskSetSync(taskSet({ repos: ['getmoto/moto', 'project-monai/monai'] }), recipeDir());
    expect(ids(selected)).toEqual(['getmoto__moto-5752', 'Project-MONAI__MONAI-3042', 'getmoto__moto-6000', 'Project-MONAI__MONAI-4000']);
  });

  it('refuses a repo that has no instance in the file (a typo would silently shrink the set)', () => {
    const error = errorOf(() => selectTaskSetSync(taskSet({ repos: ['getmoto/moto', 'getmoto/motto'] }), recipeDir()));
    expect(error.message).toContain('no instance of getmoto/motto');
    expect(error.message).toContain('Project-MONAI/MONAI, django/django, getmoto/moto');
  });

  it('applies limit last: the first N of what the filters keep, in file order', () => {
    const dir = recipeDir();
    writeFile(dir, 'ids.txt', 'django__django-12000\ngetmoto__moto-6000\ndjango__django-11099\nProject-MONAI__MONAI-4000\n');
    expect(ids(selectTaskSetSync(taskSet({ limit: 2 }), dir))).toEqual(['getmoto__moto-5752', 'Project-MONAI__MONAI-3042']);
    expect(ids(selectTaskSetSync(taskSet({ ids_file: 'ids.txt', repos: ['django/django', 'getmoto/moto'], limit: 2 }), dir))).toEqual([
      'django__django-11099',
      'getmoto__moto-6000',
    ]);
    expect(ids(selectTaskSetSync(taskSet({ limit: 100 }), dir))).toHaveLength(6);
  });

  it('refuses a selection that leaves nothing', () => {
    const dir = recipeDir();
    writeFile(dir, 'ids.txt', 'django__django-11099\n');
    const error = errorOf(() => selectTaskSetSync(taskSet({ ids_file: 'ids.txt', repos: ['getmoto/moto'] }), dir));
    expect(error.message).toContain('no instance is left after the ids_file and repos filters');
  });

  it('passes on the errors of the instance file', () => {
    const dir = tempDir();
    writeFile(dir, 'tasks.jsonl', jsonl([swebenchRecord(), swebenchRecord()]));
    expect(() => selectTaskSetSync({ path: 'tasks.jsonl', ids_file: null, repos: [], limit: null }, dir)).toThrow(/tasks\.jsonl:2: .*duplicate instance_id/);
    expect(() => selectTaskSetSync({ path: 'missing.jsonl', ids_file: null, repos: [], limit: null }, dir)).toThrow('instance file not found');
  });
});

describe('ids files', () => {
  it('refuses a line that is not one instance id, and a missing or empty file', () => {
    const dir = tempDir();
    const csv = writeFile(dir, 'ids.csv', 'django__django-11099,ok\ndjango__django-12000 3\n');
    const error = errorOf(() => readIdsFile(csv));
    expect(error.problems.map((p) => p.line)).toEqual([1, 2]);
    expect(error.message).toContain(`${csv}:1: "django__django-11099,ok" is not an instance id`);
    expect(error.message).toContain(`${csv}:2: expected one instance id per line, got "django__django-12000 3"`);
    expect(() => readIdsFile(path.join(dir, 'none.txt'))).toThrow('ids file not found');
    expect(() => readIdsFile(writeFile(dir, 'empty.txt', '# nothing yet\n\n'))).toThrow('lists no instance ids');
  });
});
