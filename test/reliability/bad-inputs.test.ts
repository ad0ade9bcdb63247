import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrajectorySchema, type Trajectory } from '../../src/agent/trajectory.js';
import { runLayout } from '../../src/loop/layout.js';
import { readRecords } from '../../src/store/ledger.js';
import { readTrajectories } from '../../src/store/trajectories.js';
import { processStartTicks } from '../../src/store/lock.js';
import { rft } from '../cli/helpers.js';
import { MINIGYM_TASKS } from '../helpers/minigym.js';
import { simTrainerFinetune } from '../helpers/sim-trainer.js';

/**
 * Bad inputs of every kind: each is a clear error naming the place (file:line and field), exit
 * code 2, no stack trace, and nothing already recorded is lost — checked against a real run whose
 * every file is digested before and after. Each case is counted as it is tried.
 */

const NAME = 'bad-inputs';
const TASK_ID = 'minigym__unitkit-101';

let work: string;
let runs: string;
let runDir: string;
let recipeFile: string;
let recipeText: string;
let tasksFile: string;
let tasksText: string;
let original: Map<string, string>;

/** Every case tried, with what it showed. */
const tried: { name: string; exit: number | null; message: string }[] = [];

/** A reader's cache beside a ledger (src/store/trajectory-index.ts), built by the first `rft show`: not run state. */
const READER_CACHE = /(^|\/)trajectories\.index\.jsonl$/;

function digest(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort()) {
    if (READER_CACHE.test(name)) continue;
    const file = path.join(dir, name);
    if (statSync(file).isFile()) out.set(name, createHash('sha256').update(readFileSync(file)).digest('hex'));
  }
  return out;
}

function rftHere(args: string[]) {
  return rft(args, { cwd: work, timeout: 300_000 });
}

/** A refusal: exit 2, the place named, no stack, and the run exactly as it was. */
function expectRefused(name: string, result: ReturnType<typeof rft>, place: RegExp, options: { runUnchanged?: boolean } = {}): void {
  tried.push({ name, exit: result.status, message: result.stderr.trim() });
  expect({ name, exit: result.status }, result.stderr).toEqual({ name, exit: 2 });
  expect(result.stderr).toMatch(place);
  expect(result.stderr).toMatch(/^rft: /m);
  expect(result.stderr).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/);
  if (options.runUnchanged ?? true) expect(digest(runDir)).toEqual(original);
}

function trajectories(): Trajectory[] {
  return [...readTrajectories(runLayout.trajectories(runDir, 0))];
}

function essence(t: Trajectory): unknown {
  return { id: `${t.instance_id}#${t.sample_index}`, outcome: t.outcome, patch: t.patch, completions: t.calls.map((c) => c.completion) };
}

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'rft-bad-inputs-'));
  runs = path.join(work, 'runs');
  runDir = path.join(runs, NAME);
  tasksFile = path.join(work, 'tasks.jsonl');
  copyFileSync(MINIGYM_TASKS, tasksFile);
  tasksText = readFileSync(tasksFile, 'utf8');
  writeFileSync(path.join(work, 'ids.txt'), `${TASK_ID}\n`);
  recipeText = `name: ${NAME}
seed: 4
iterations: 1
tasks:
  train: {path: tasks.jsonl, ids_file: ids.txt}
sandbox: {memory: 512m, pids: 256, test_timeout_s: 60, concurrency: 2}
policy: {kind: simulated, model: sim-base, concurrency: 4}
sampling:
  samples_per_task: 3
  temperature: 1.0
select: {cap: 2}
${simTrainerFinetune()}`;
  recipeFile = path.join(work, 'recipe.yaml');
  writeFileSync(recipeFile, recipeText);
  const first = rftHere(['run', recipeFile, '--runs-dir', runs]);
  expect(first.stderr).not.toMatch(/rft: /);
  expect(first.status).toBe(0);
  expect(trajectories()).toHaveLength(3);
  original = digest(runDir);
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** Writes a variant of the recipe next to the real one (relative paths resolve the same). */
function variant(name: string, text: string): string {
  const file = path.join(work, name);
  writeFileSync(file, text);
  return file;
}

const lineOf = (text: string, needle: string) => text.split('\n').findIndex((l) => l.includes(needle)) + 1;

describe('malformed recipes: file:line and field, exit 2, the run untouched', () => {
  it('YAML syntax', () => {
    const text = recipeText.replace('select: {cap: 2}', 'select: {cap: 2');
    const result = rftHere(['run', variant('syntax.yaml', text), '--runs-dir', runs]);
    expectRefused('recipe: YAML syntax', result, /syntax\.yaml:\d+: YAML syntax: /);
  });

  it('a value of the wrong type', () => {
    const text = recipeText.replace('seed: 4', 'seed: four');
    const result = rftHere(['run', variant('type.yaml', text), '--runs-dir', runs]);
    expectRefused('recipe: wrong type', result, new RegExp(`type\\.yaml:${lineOf(text, 'seed: four')}: seed: expected number`));
  });

  it('an unknown key (a typo)', () => {
    const text = recipeText.replace('  temperature: 1.0', '  temprature: 1.0');
    const result = rftHere(['run', variant('typo.yaml', text), '--runs-dir', runs]);
    expectRefused('recipe: unknown key', result, new RegExp(`typo\\.yaml:${lineOf(text, 'temprature')}: sampling\\.temprature: unknown key`));
  });

  it('a required field missing', () => {
    const text = recipeText.replace('  base_model: sim-base\n', '');
    const result = rftHere(['run', variant('missing.yaml', text), '--runs-dir', runs]);
    expectRefused('recipe: missing field', result, /missing\.yaml:\d+: finetune\.base_model: is required/);
  });

  it('--set without a value', () => {
    const result = rftHere(['run', recipeFile, '--runs-dir', runs, '--set', 'select.cap']);
    expectRefused('--set: no =', result, /recipe\.yaml \(--set select\.cap\): --set takes key\.path=value/);
  });

  it('--set of the wrong type', () => {
    const result = rftHere(['run', recipeFile, '--runs-dir', runs, '--set', 'select.cap=lots']);
    expectRefused('--set: wrong type', result, /recipe\.yaml \(--set select\.cap=lots\): select\.cap: must be a whole number/);
  });

  it('--set of an unknown key', () => {
    const result = rftHere(['run', recipeFile, '--runs-dir', runs, '--set', 'sampling.temprature=0.5']);
    expectRefused('--set: unknown key', result, /\(--set sampling\.temprature=0\.5\): sampling\.temprature: unknown key/);
  });
});

describe('malformed task files: file:line, instance and field, exit 2, the run untouched', () => {
  const lines = () => tasksText.trimEnd().split('\n');
  const withTasks = (text: string, run: () => void) => {
    writeFileSync(tasksFile, text);
    try {
      run();
    } finally {
      writeFileSync(tasksFile, tasksText);
    }
  };

  it('a line that is not JSON', () => {
    const all = lines();
    all.splice(1, 0, '{"instance_id": "broken",');
    withTasks(`${all.join('\n')}\n`, () => expectRefused('tasks: bad JSON line', rftHere(['resume', runDir]), /tasks\.jsonl:2: invalid JSON/));
  });

  it('a record missing a field', () => {
    const all = lines();
    const record = JSON.parse(all[2]!) as Record<string, unknown>;
    delete record.test_patch;
    all[2] = JSON.stringify(record);
    withTasks(`${all.join('\n')}\n`, () =>
      expectRefused('tasks: missing field', rftHere(['resume', runDir]), new RegExp(`tasks\\.jsonl:3: ${String(record.instance_id)}: test_patch: is required`)),
    );
  });

  it('a FAIL_TO_PASS string that is not a JSON list', () => {
    const all = lines();
    const record = JSON.parse(all[3]!) as Record<string, unknown>;
    record.FAIL_TO_PASS = '["tests/test_a.py::test_one", ';
    all[3] = JSON.stringify(record);
    withTasks(`${all.join('\n')}\n`, () =>
      expectRefused('tasks: bad FAIL_TO_PASS', rftHere(['resume', runDir]), new RegExp(`tasks\\.jsonl:4: ${String(record.instance_id)}: FAIL_TO_PASS: is a string that is not valid JSON`)),
    );
  });

  it('a duplicate instance id', () => {
    const all = lines();
    const first = JSON.parse(all[0]!) as { instance_id: string };
    all.push(all[0]!);
    withTasks(`${all.join('\n')}\n`, () =>
      expectRefused('tasks: duplicate id', rftHere(['resume', runDir]), new RegExp(`tasks\\.jsonl:${all.length}: ${first.instance_id}: instance_id: duplicate instance_id: also at line 1`)),
    );
  });

  it('an ids file with a line that is not one id', () => {
    const ids = path.join(work, 'ids.txt');
    writeFileSync(ids, `${TASK_ID}, minigym__iniform-201\n`);
    try {
      expectRefused('tasks: bad ids file line', rftHere(['resume', runDir]), /ids\.txt:1: expected one instance id per line/);
    } finally {
      writeFileSync(ids, `${TASK_ID}\n`);
    }
  });
});

describe('malformed prediction files (rft verify): file:line and field, exit 2, no report written', () => {
  const good = JSON.stringify({ instance_id: TASK_ID, model_name_or_path: 'm', model_patch: '' });
  const verify = (name: string, text: string) => {
    const file = path.join(work, name);
    writeFileSync(file, text);
    const out = path.join(work, `${name}.report.json`);
    const result = rftHere(['verify', '--tasks', MINIGYM_TASKS, '--predictions', file, '--out', out]);
    expect(existsSync(out)).toBe(false);
    return result;
  };

  it('a line that is not JSON', () => {
    expectRefused('predictions: bad JSON line', verify('p1.jsonl', `${good}\n{"instance_id": \n`), /p1\.jsonl:2: invalid JSON/);
  });

  it('a prediction missing a field', () => {
    expectRefused('predictions: missing field', verify('p2.jsonl', `${JSON.stringify({ instance_id: TASK_ID, model_patch: '' })}\n`), /p2\.jsonl:1: model_name_or_path: /);
  });

  it('a duplicate prediction', () => {
    expectRefused('predictions: duplicate', verify('p3.jsonl', `${good}\n\n${good}\n`), /p3\.jsonl:3: minigym__unitkit-101: instance_id: duplicate prediction \(also at line 1\)/);
  });
});

describe('bad command-line arguments of every command: what to give, exit 2, no stack, the run untouched', () => {
  const nope = () => path.join(work, 'nope');
  const preds = () => {
    const file = path.join(work, 'args-preds.jsonl');
    writeFileSync(file, `${JSON.stringify({ instance_id: TASK_ID, model_name_or_path: 'm', model_patch: '' })}\n`);
    return file;
  };
  // [case name, arguments, what the message must say]: a missing file, a bad number or count, a bad
  // tokenizer, an unknown instance, a malformed value, for each command that takes one.
  const cases: [string, () => string[], RegExp][] = [
    ['args: select, bad tokenizer path', () => ['select', runDir, '--iteration', '0', '--cap', '1', '--tokenizer', '/nope/Qwen'], /tokenizer \/nope\/Qwen: not an encoding .*; give an encoding name or the folder of a Hugging Face tokenizer/],
    ['args: select, --iteration not a number', () => ['select', runDir, '--iteration', 'x', '--cap', '1'], /--iteration: "x" is not a number; give a number/],
    ['args: select, --cap not a cap', () => ['select', runDir, '--iteration', '0', '--cap', 'lots'], /--cap: "lots" is not a cap; give whole numbers/],
    ['args: select, missing run dir', () => ['select', nope(), '--iteration', '0', '--cap', '1'], /nope is not a run directory/],
    ['args: show, --eval not a number', () => ['show', runDir, '--eval', 'x'], /--eval: "x" is not a number/],
    ['args: show, unknown --instance-ids', () => ['show', runDir, '--instance-ids', `${TASK_ID},nope__x-1`], /--instance-ids: iter-0 has no trajectory of "nope__x-1"/],
    ['args: show, unknown --instance', () => ['show', runDir, '--instance', 'nope__x-1'], /no trajectory of instance "nope__x-1"; `rft show .*` lists the instances/],
    ['args: status, missing run dir', () => ['status', nope()], /nope is not a run directory .*rft run <recipe.yaml>/],
    ['args: report, missing run dir', () => ['report', nope()], /nope is not a run directory/],
    ['args: fork, --from-iteration not a number', () => ['fork', runDir, '--name', 'f', '--from-iteration', 'x'], /--from-iteration: "x" is not a number/],
    ['args: sweep, --grid without values', () => ['sweep', recipeFile, '--grid', 'select.cap', '--runs-dir', runs], /--grid takes key=v1,v2/],
    ['args: verify, missing tasks file', () => ['verify', '--tasks', nope(), '--predictions', preds()], /nope: instance file not found; make it with `rft tasks fetch/],
    ['args: verify, unknown --instance-ids', () => ['verify', '--tasks', tasksFile, '--predictions', preds(), '--instance-ids', 'nope__x-1'], /--instance-ids: instance not in .*tasks\.jsonl: nope__x-1; give ids of its instances/],
    ['args: verify, --concurrency 0', () => ['verify', '--tasks', tasksFile, '--predictions', preds(), '--concurrency', '0'], /--concurrency: 0 is not a whole number of at least 1/],
    ['args: tasks validate, unknown --instance-ids', () => ['tasks', 'validate', tasksFile, '--instance-ids', 'a,b'], /--instance-ids: 2 instances not in .*: a, b/],
    ['args: tasks validate, --timeout not a number', () => ['tasks', 'validate', tasksFile, '--timeout', 'soon'], /--timeout: "soon" is not a number/],
    ['args: tasks build-images, missing file', () => ['tasks', 'build-images', nope()], /nope: instance file not found/],
    ['args: agent run, unknown instance', () => ['agent', 'run', '--tasks', tasksFile, '--instance', 'nope__x-1'], /--instance: instance not in .*: nope__x-1/],
    ['args: sft check, missing file', () => ['sft', 'check', nope()], /nope: no such file; give an SFT chat JSONL/],
    ['args: recipe check, missing file', () => ['recipe', 'check', nope()], /nope: file not found; start from a bundled one/],
  ];
  it.each(cases.map(([name, args, said]) => ({ name, args, said })))('$name', ({ name, args, said }) => {
    expectRefused(name, rftHere(args()), said);
  });

  it('none and null are alike in --set of rft fork (a refusal before)', () => {
    const result = rftHere(['fork', runDir, '--name', 'fork-none', '--set', 'select.cap=none']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(readFileSync(path.join(runs, 'fork-none', 'recipe.yaml'), 'utf8')).toMatch(/cap: null/);
    rmSync(path.join(runs, 'fork-none'), { recursive: true });
    expect(digest(runDir)).toEqual(original);
  });
});

describe('damaged ledgers and wrong run directories', () => {
  const ledger = () => runLayout.trajectories(runDir, 0);

  it('a torn last line (a write cut short): resume drops it with a warning and continues to the same result', () => {
    const before = trajectories();
    const datasets = digest(runLayout.datasetDir(runDir, 0, 2));
    const text = readFileSync(ledger(), 'utf8');
    const lastStart = text.lastIndexOf('\n', text.length - 2) + 1;
    truncateSync(ledger(), lastStart + Math.floor((text.length - lastStart) / 2));
    const result = rftHere(['resume', runDir]);
    tried.push({ name: 'ledger: torn last line', exit: result.status, message: result.stderr.trim() });
    expect(result.status).toBe(0);
    expect(result.stderr).toMatch(/warning: .*iter-0\/trajectories\.jsonl: dropped a torn last line \(\d+ bytes\)/);
    expect(result.stdout).toMatch(/run complete/);
    const after = trajectories();
    expect(after.map(essence)).toEqual(before.map(essence));
    expect(digest(runLayout.datasetDir(runDir, 0, 2))).toEqual(datasets);
    original = digest(runDir);
  });

  it('a corrupt line in the middle: resume refuses with file:line, the ledger byte for byte as it was', () => {
    const text = readFileSync(ledger(), 'utf8');
    const lines = text.split('\n');
    lines[1] = lines[1]!.slice(0, 40);
    const damaged = lines.join('\n');
    writeFileSync(ledger(), damaged);
    const whole = digest(runDir);
    try {
      const result = rftHere(['resume', runDir]);
      expectRefused('ledger: corrupt middle line (resume)', result, /iter-0\/trajectories\.jsonl:2: not valid JSON/, { runUnchanged: false });
      expect(result.stderr).toMatch(/nothing was changed/);
      expect(readFileSync(ledger(), 'utf8')).toBe(damaged);
      // Every ledger, dataset and record as it was; only state.json may note the phase it tried.
      const after = digest(runDir);
      const changed = [...new Set([...whole.keys(), ...after.keys()])].filter((f) => whole.get(f) !== after.get(f));
      expect(changed.filter((f) => f !== 'state.json')).toEqual([]);

      const status = rftHere(['status', runDir]);
      expectRefused('ledger: corrupt middle line (status)', status, /iter-0\/trajectories\.jsonl:2: not valid JSON/, { runUnchanged: false });
      expect(readFileSync(ledger(), 'utf8')).toBe(damaged);
    } finally {
      writeFileSync(ledger(), text);
    }
  });

  it('a line that is JSON but not a record: refused naming the line and the field', () => {
    const file = runLayout.verdicts(runDir, 0);
    const text = readFileSync(file, 'utf8');
    const lines = text.split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(2);
    const record = JSON.parse(lines[0]!) as Record<string, unknown>;
    delete record.outcome;
    lines[0] = JSON.stringify(record);
    const damaged = lines.join('\n');
    writeFileSync(file, damaged);
    try {
      expectRefused('ledger: invalid record', rftHere(['resume', runDir]), /iter-0\/verdicts\.jsonl:1: field outcome: /, { runUnchanged: false });
      expect(readFileSync(file, 'utf8')).toBe(damaged);
    } finally {
      writeFileSync(file, text);
    }
  });

  it('the run of another recipe: refused naming the changed fields, not a byte of the run changed', () => {
    original = digest(runDir);
    const text = recipeText.replace('  temperature: 1.0', '  temperature: 0.5').replace('select: {cap: 2}', 'select: {cap: 1}');
    const result = rftHere(['run', variant('changed.yaml', text), '--runs-dir', runs]);
    expectRefused('run dir: another recipe', result, /was created from a different recipe \(changed: sampling\.temperature, select\.cap\)/);
  });

  it('a folder that is not a run directory: resume and status refuse, nothing is created in it', () => {
    const empty = path.join(work, 'not-a-run');
    mkdirSync(empty);
    expectRefused('run dir: not one (resume)', rftHere(['resume', empty]), /not-a-run is not a run directory \(no run\.json\)/);
    expectRefused('run dir: not one (status)', rftHere(['status', empty]), /not-a-run is not a run directory \(no run\.json\)/);
    expect(readdirSync(empty)).toEqual([]);
  });

  it('a run another live process holds: refused naming the holder, the run untouched', () => {
    const lock = path.join(runDir, 'lock');
    // This test's own process holds it: alive, on this host, its start time recorded.
    writeFileSync(lock, `${JSON.stringify({ pid: process.pid, host: hostname(), start_ticks: processStartTicks(process.pid), acquired_at: new Date().toISOString() })}\n`);
    original = digest(runDir);
    try {
      expectRefused('run dir: locked (resume)', rftHere(['resume', runDir]), new RegExp(`another rft process \\(pid ${process.pid} on .*\\) is driving this run`));
      expectRefused('run dir: locked (run)', rftHere(['run', recipeFile, '--runs-dir', runs]), new RegExp(`another rft process \\(pid ${process.pid} `));
    } finally {
      rmSync(lock);
    }
    original = digest(runDir);
  });

  it('after all of it, the run resumes cleanly to the same data', () => {
    const datasets = digest(runLayout.datasetDir(runDir, 0, 2));
    const result = rftHere(['resume', runDir]);
    expect(result.stderr).not.toMatch(/rft: |warning: /);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/run complete/);
    expect(digest(runLayout.datasetDir(runDir, 0, 2))).toEqual(datasets);
    expect(trajectories()).toHaveLength(3);
  });
});

describe('the count', () => {
  it('at least 15 distinct bad inputs were tried, every one with the outcome asked of it', () => {
    const names = tried.map((t) => t.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names.length).toBeGreaterThanOrEqual(15);
    // Every refusal exited 2; the torn line (the one case that is not an error) completed.
    for (const t of tried) expect({ name: t.name, exit: t.exit }).toEqual({ name: t.name, exit: t.name === 'ledger: torn last line' ? 0 : 2 });
    console.log(`bad inputs tried: ${names.length}\n${tried.map((t) => `  ${t.name}: exit ${t.exit}: ${t.message.split('\n').find((l) => l.startsWith('rft: ') || l.startsWith('warning: ')) ?? ''}`).join('\n')}`);
  });
});
