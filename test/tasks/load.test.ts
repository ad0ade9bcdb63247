import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadInstances, parseInstances, TaskFileError, type TaskProblem } from '../../src/tasks/load.js';
import { jsonl, swebenchRecord, swegymRecord, tempDir, writeFile } from './helpers.js';

function problemsOf(text: string, file = 'tasks.jsonl'): { problems: TaskProblem[]; message: string } {
  try {
    parseInstances(text, file);
  } catch (err) {
    expect(err).toBeInstanceOf(TaskFileError);
    return { problems: (err as TaskFileError).problems, message: (err as Error).message };
  }
  throw new Error('the instance file was accepted');
}

describe('loading instance files', () => {
  it('reads JSONL with both encodings of FAIL_TO_PASS / PASS_TO_PASS, ignoring blank lines', () => {
    const dir = tempDir();
    const text = `\n${JSON.stringify(swebenchRecord())}\n\n   \n${JSON.stringify(swegymRecord())}\r\n\n`;
    const instances = loadInstances(writeFile(dir, 'tasks.jsonl', text));
    expect(instances.map((i) => i.instance_id)).toEqual(['django__django-11099', 'Project-MONAI__MONAI-3042']);
    const [bench, gym] = instances;
    expect(bench!.FAIL_TO_PASS).toEqual(['test_ascii_validator (auth_tests.test_validators.UsernameValidatorsTests)']);
    expect(bench!.PASS_TO_PASS).toHaveLength(2);
    expect(bench!.environment_setup_commit).toBe('419a78300f7cd27611196e1e464d50fd0385ff27');
    expect(gym!.FAIL_TO_PASS).toEqual(['tests/test_to_numpy.py::TestToNumpy::test_single_value']);
    expect(gym!.PASS_TO_PASS).toEqual(['tests/test_to_numpy.py::TestToNumpy::test_list_tuple', 'tests/test_to_numpy.py::TestToNumpy::test_numpy_input']);
  });

  it('fills in the optional fields SWE-Gym leaves out and drops fields it does not know', () => {
    const record = swegymRecord('getmoto__moto-5752', { repo: 'getmoto/moto', difficulty: '<15 min fix' });
    delete record.version;
    delete record.created_at;
    const [instance] = parseInstances(jsonl([record]), 'gym.jsonl');
    expect(instance).toMatchObject({ instance_id: 'getmoto__moto-5752', hints_text: '', environment_setup_commit: null, version: null, created_at: null, test_cmd: null });
    expect(instance).not.toHaveProperty('difficulty');
  });

  it('reads a JSON array file to the same instances as the JSONL file', () => {
    const dir = tempDir();
    const records = [swebenchRecord(), swegymRecord(), swegymRecord('getmoto__moto-5752', { repo: 'getmoto/moto' })];
    const fromJson = loadInstances(writeFile(dir, 'tasks.json', JSON.stringify(records, null, 2)));
    const fromJsonl = loadInstances(writeFile(dir, 'tasks.jsonl', jsonl(records)));
    expect(fromJson).toHaveLength(3);
    expect(fromJson).toEqual(fromJsonl);
  });

  it('keeps upper case in ids and reads numeric versions as strings', () => {
    const [instance] = parseInstances(jsonl([swegymRecord('Project-MONAI__MONAI-3042', { version: 0.7 })]), 't.jsonl');
    expect(instance!.instance_id).toBe('Project-MONAI__MONAI-3042');
    expect(instance!.version).toBe('0.7');
  });

  it('says so when the file does not exist', () => {
    const file = path.join(tempDir(), 'nope.jsonl');
    expect(() => loadInstances(file)).toThrow(TaskFileError);
    expect(() => loadInstances(file)).toThrow(`${file}: instance file not found`);
  });

  it('refuses a file with no instances', () => {
    expect(problemsOf('\n\n').message).toBe('tasks.jsonl: holds no instances');
    expect(problemsOf('[]', 'tasks.json').message).toBe('tasks.json: holds no instances');
  });
});

describe('bad records are reported with file, line, instance and field', () => {
  it('collects every bad JSONL line in one error', () => {
    const missing = swebenchRecord('astropy__astropy-12907', { repo: 'astropy/astropy' });
    delete missing.base_commit;
    const lines = [
      JSON.stringify(swebenchRecord()), // 1
      '{"instance_id": "sympy__sympy-20590", "repo": ', // 2: invalid JSON
      JSON.stringify(missing), // 3: missing field
      JSON.stringify(swegymRecord('getmoto__moto-5752', { repo: 'getmoto/moto', problem_statement: 42 })), // 4: wrong type
      '', // 5: blank
      JSON.stringify(swebenchRecord('pydantic__pydantic-5506', { repo: 'pydantic/pydantic', FAIL_TO_PASS: "['test_a', 'test_b']" })), // 6: Python repr, not JSON
      '[1, 2]', // 7: not an object
    ];
    const { problems, message } = problemsOf(lines.join('\n'));
    expect(problems).toEqual([
      { line: 2, index: null, instance_id: null, field: '', message: expect.stringMatching(/^invalid JSON: /) },
      { line: 3, index: null, instance_id: 'astropy__astropy-12907', field: 'base_commit', message: 'is required (expected string)' },
      { line: 4, index: null, instance_id: 'getmoto__moto-5752', field: 'problem_statement', message: 'expected string, received number' },
      { line: 6, index: null, instance_id: 'pydantic__pydantic-5506', field: 'FAIL_TO_PASS', message: expect.stringContaining('is a string that is not valid JSON') },
      { line: 7, index: null, instance_id: null, field: '', message: 'an instance is a JSON object, got a list' },
    ]);
    expect(message.split('\n')).toHaveLength(5);
    expect(message).toContain('tasks.jsonl:3: astropy__astropy-12907: base_commit: is required (expected string)');
    expect(message).toContain('tasks.jsonl:6: pydantic__pydantic-5506: FAIL_TO_PASS: is a string that is not valid JSON');
  });

  it('names the element of a test list that is wrong, and rejects an empty FAIL_TO_PASS', () => {
    const { problems } = problemsOf(
      jsonl([
        swegymRecord('a__b-1', { PASS_TO_PASS: ['tests/t.py::ok', 7] }),
        swebenchRecord('a__b-2', { FAIL_TO_PASS: '[]' }),
        swebenchRecord('a__b-3', { PASS_TO_PASS: '{"tests": []}' }),
      ]),
    );
    expect(problems.map((p) => [p.line, p.field, p.message])).toEqual([
      [1, 'PASS_TO_PASS.1', 'expected string, received number'],
      [2, 'FAIL_TO_PASS', expect.stringContaining('at least one test')],
      [3, 'PASS_TO_PASS', 'is a JSON-encoded object, expected a JSON-encoded list of test ids'],
    ]);
  });

  it('rejects ids and repos that would break image names and paths', () => {
    const { problems } = problemsOf(jsonl([swebenchRecord('django/django-1'), swebenchRecord('django__django-2', { repo: 'django' })]));
    expect(problems.map((p) => [p.line, p.field])).toEqual([
      [1, 'instance_id'],
      [2, 'repo'],
    ]);
  });

  it('finds a duplicate instance_id even when the first record is bad', () => {
    const { problems } = problemsOf(jsonl([swebenchRecord('a__b-1', { test_patch: 5 }), swegymRecord(), swebenchRecord('a__b-1')]));
    expect(problems.map((p) => [p.line, p.field, p.message])).toEqual([
      [1, 'test_patch', 'expected string, received number'],
      [3, 'instance_id', 'duplicate instance_id: also at line 1'],
    ]);
  });

  it('names both lines of a duplicate instance_id', () => {
    const { problems, message } = problemsOf(jsonl([swebenchRecord(), swegymRecord(), swebenchRecord()]));
    expect(problems).toEqual([
      { line: 3, index: null, instance_id: 'django__django-11099', field: 'instance_id', message: 'duplicate instance_id: also at line 1' },
    ]);
    expect(message).toBe('tasks.jsonl:3: django__django-11099: instance_id: duplicate instance_id: also at line 1');
  });

  it('gives the item index and its line in a JSON array file', () => {
    const bad = swegymRecord('getmoto__moto-5752', { repo: 'getmoto/moto', FAIL_TO_PASS: 'tests/test_s3.py::test_x' });
    const text = JSON.stringify([swebenchRecord(), swegymRecord(), bad, swebenchRecord()], null, 2);
    const { problems, message } = problemsOf(text, 'tasks.json');
    const lineOfItem2 = text.split('\n').findIndex((l) => l.includes('getmoto__moto-5752')) ; // the line after the item's "{"
    expect(problems).toEqual([
      { line: lineOfItem2, index: 2, instance_id: 'getmoto__moto-5752', field: 'FAIL_TO_PASS', message: expect.stringContaining('not valid JSON') },
      { line: expect.any(Number), index: 3, instance_id: 'django__django-11099', field: 'instance_id', message: expect.stringMatching(/^duplicate instance_id: also at line 2 \(item 0\)$/) },
    ]);
    expect(message).toContain(`tasks.json:${lineOfItem2} (item 2): getmoto__moto-5752: FAIL_TO_PASS: is a string that is not valid JSON`);
  });

  it('reports a broken item of a JSON array without giving up on the others', () => {
    const text = `[\n${JSON.stringify(swebenchRecord())},\n{"instance_id": "x__y-1", "repo": tru},\n${JSON.stringify(swegymRecord())}\n]\n`;
    const { problems } = problemsOf(text, 'tasks.json');
    expect(problems).toEqual([{ line: 3, index: 1, instance_id: null, field: '', message: expect.stringMatching(/^invalid JSON: /) }]);
  });

  it('reports a JSON array whose structure is broken', () => {
    const text = `[\n${JSON.stringify(swebenchRecord())},\n${JSON.stringify(swegymRecord())}\n`;
    expect(problemsOf(text, 'tasks.json').message).toMatch(/^tasks\.json:4: the top-level array is not closed with \]$/);
    expect(problemsOf(`[${JSON.stringify(swebenchRecord())},]`, 'tasks.json').message).toContain('empty item in the array (item 1)');
    expect(problemsOf(`[${JSON.stringify(swebenchRecord())}]\n{}`, 'tasks.json').message).toContain('text after the closing ]');
  });

  it('refuses a .json file that is not an array', () => {
    expect(problemsOf(jsonl([swebenchRecord()]), 'tasks.json').message).toContain('tasks.json:1: a .json file holds a top-level array');
  });

  it('lists at most 20 problems in the message but keeps them all', () => {
    const records = Array.from({ length: 25 }, (_, i) => swebenchRecord(`django__django-${i}`, { test_patch: null }));
    const { problems, message } = problemsOf(jsonl(records));
    expect(problems).toHaveLength(25);
    const lines = message.split('\n');
    expect(lines).toHaveLength(21);
    expect(lines[19]).toBe('tasks.jsonl:20: django__django-19: test_patch: expected string, received null');
    expect(lines[20]).toBe('(and 5 more problems in tasks.jsonl)');
  });
});
