import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path, { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InstanceSchema, type Instance } from '../../src/tasks/instance.js';
import {
  EVAL_EXIT,
  parseEvalOutput,
  ranOutOfTime,
  renderEvalScript,
  shQuote,
} from '../../src/verify/eval-script.js';
import { gradeTests, mergeStatuses } from '../../src/verify/grade.js';
import { fileOfTestId, parseJunitXml } from '../../src/verify/junit.js';
import { parsePytestSummary } from '../../src/verify/pytest-log.js';
import { buildEvalSpec, type EvalSpec } from '../../src/verify/spec.js';

const OPTIONS = {
  junitPath: '/tmp/rft/junit-5f2c.xml',
  startMarker: 'RFT_START_0123456789abcdef',
  endMarker: 'RFT_END_fedcba9876543210',
};

function specWith(overrides: Partial<EvalSpec> = {}): EvalSpec {
  return {
    test_cmd: 'python3 -m pytest -rA -p no:cacheprovider',
    test_files: ["tests/it's here/test x.py", 'tests/test_a.py'],
    test_args: ["tests/it's here/test x.py", 'tests/test_a.py'],
    parser: 'pytest',
    python_env: { mode: 'system', conda_root: '/opt/miniconda3', conda_env: 'testbed' },
    id_rewrite: null,
    timeout_s: 321,
    env: { TZ: 'UTC', PYTHONHASHSEED: '0' },
    protected_paths: {
      files: ["tests/it's here/test x.py", 'tests/test_a.py'],
      dirs: ['tests'],
      names: ['conftest.py', 'pytest.ini', '*.pth'],
    },
    ...overrides,
  };
}

const bash = (script: string, cwd?: string) => spawnSync('bash', ['-c', script], { cwd, encoding: 'utf8' });

describe('shQuote', () => {
  it('round-trips hostile strings through bash', () => {
    for (const value of ["it's", 'a b', '$(touch /tmp/x)', '`id`', '"\\n"', "'; rm -rf / #", '', 'ünï\tcode\nline']) {
      const out = bash(`printf %s ${shQuote(value)}`);
      expect(out.stdout).toBe(value);
    }
  });

  it('refuses NUL bytes', () => {
    expect(() => shQuote('a\0b')).toThrow(/NUL/);
  });
});

describe('renderEvalScript (text)', () => {
  const script = renderEvalScript(specWith(), { instance_id: 'minigym__demo-1' }, OPTIONS);

  it('is valid bash', () => {
    expect(bash(`bash -n <<'RFT_EOF'\n${script}\nRFT_EOF`).status).toBe(0);
  });

  it('quotes paths with spaces and quotes', () => {
    expect(script).toContain(`rft_restore 'tests/it'\\''s here/test x.py'`);
    // the test command is itself one quoted argument to bash -c, so the quoting nests
    expect(script).toContain(`'\\''tests/it'\\''\\'\\'''\\''s here/test x.py'\\''`);
  });

  it('contains the restore steps: names anywhere, test directories, test-patch files', () => {
    expect(script).toContain(`':(glob)**/conftest.py'`);
    expect(script).toContain(`':(glob)**/pytest.ini'`);
    expect(script).toContain(`':(glob)**/*.pth'`);
    expect(script).toContain('git diff --name-only -z --no-renames HEAD -- "${rft_names[@]}"');
    expect(script).toContain('git ls-files -z --others -- "${rft_names[@]}"');
    expect(script).toContain(`git --literal-pathspecs checkout -q HEAD -- 'tests'`);
    expect(script).toContain(`git --literal-pathspecs clean -fdq -- 'tests'`);
    expect(script).toContain(`rft_restore 'tests/test_a.py'`);
  });

  it('applies the test patch from its file, after the restores', () => {
    expect(script).toContain(`git apply -v -- '/tmp/rft/test.patch'`);
    expect(script.indexOf('git apply -v')).toBeGreaterThan(script.indexOf("rft_restore 'tests/test_a.py'"));
    const custom = renderEvalScript(specWith(), { instance_id: 'x' }, { ...OPTIONS, testPatchPath: '/work/p q.patch' });
    expect(custom).toContain(`git apply -v -- '/work/p q.patch'`);
  });

  it('runs the tests under timeout with pinned env, junit and markers', () => {
    expect(script).toContain('timeout -s KILL 321 bash -c ');
    expect(script).toContain(`export TZ='UTC' PYTHONHASHSEED='0'`);
    expect(script).toContain(`--junitxml=/tmp/rft/junit-5f2c.xml`);
    expect(script).toContain(`rm -rf -- '/tmp/rft/junit-5f2c.xml'`);
    expect(script).toContain(`echo '${OPTIONS.startMarker}'`);
    expect(script).toContain(`printf '\\n%s exit=%d elapsed=%d\\n' '${OPTIONS.endMarker}' "$rft_rc"`);
    expect(script.indexOf(OPTIONS.startMarker)).toBeLessThan(script.indexOf('timeout -s KILL'));
    expect(script.indexOf(OPTIONS.endMarker)).toBeGreaterThan(script.indexOf('timeout -s KILL'));
  });

  it('runs Django and sympy through the result hook: PYTHONPATH and the pipe, no --junitxml', () => {
    expect(() => renderEvalScript(specWith({ parser: 'django' }), { instance_id: 'django__django-1' }, OPTIONS)).toThrow(/hookDir is required/);
    const script = renderEvalScript(
      specWith({ parser: 'sympy', test_cmd: 'bin/test -C --verbose', test_args: ['sympy/core/tests/test_x.py'] }),
      { instance_id: 'sympy__sympy-1' },
      { ...OPTIONS, hookDir: '/tmp/rft-x/hook' },
    );
    expect(script).not.toContain('--junitxml');
    const line = script.split('\n').find((l) => l.startsWith('timeout -s KILL')) ?? '';
    // What bash -c receives, unquoted by bash itself.
    const quoted = line.replace(/^timeout -s KILL \d+ bash -c /, '').replace(/ <\/dev\/null 2>&1$/, '');
    const inner = bash(`printf '%s' ${quoted}`).stdout;
    expect(inner).toBe(
      `export PYTHONPATH='/tmp/rft-x/hook'"\${PYTHONPATH:+:$PYTHONPATH}" RFT_RESULTS_PIPE='${OPTIONS.junitPath}'; bin/test -C --verbose 'sympy/core/tests/test_x.py'`,
    );
  });

  describe('the Python environment', () => {
    const condaRoot = () => {
      const root = mkdtempSync(path.join(tmpdir(), 'rft-conda-'));
      mkdirSync(path.join(root, 'bin'));
      // A stand-in for conda: `source activate` defines `conda`, whose activate puts a marker env var.
      writeFileSync(path.join(root, 'bin/activate'), 'conda() { [ "$1" = activate ] && [ "$2" = testbed ] && export RFT_TEST_ENV="$2"; }\n');
      return root;
    };
    const runIn = (mode: 'auto' | 'conda' | 'system', root: string) => {
      const repo = mkdtempSync(path.join(tmpdir(), 'rft-repo-'));
      bash('git init -q && git -c user.name=t -c user.email=t@t commit -q --allow-empty -m base', repo);
      const script = renderEvalScript(
        specWith({ test_cmd: 'echo "env=${RFT_TEST_ENV:-none}"', test_args: [], python_env: { mode, conda_root: root, conda_env: 'testbed' }, protected_paths: { files: [], dirs: [], names: [] } }),
        { instance_id: 'x' },
        { ...OPTIONS, junitPath: path.join(repo, '.junit.xml'), workdir: repo, testPatchPath: path.join(repo, 'none.patch') },
      );
      writeFileSync(path.join(repo, '.eval.sh'), script);
      return spawnSync('bash', [path.join(repo, '.eval.sh')], { encoding: 'utf8' });
    };

    it('auto: activates testbed when <conda_root>/bin/activate exists, and says which env ran', () => {
      const run = runIn('auto', condaRoot());
      expect(run.stdout).toContain('rft: python env conda');
      expect(run.stdout).toContain('env=testbed');
    });

    it('auto without conda, and system: run the command as it is', () => {
      const missing = path.join(tmpdir(), 'rft-no-conda-here');
      expect(runIn('auto', missing).stdout).toMatch(/rft: python env system[\s\S]*env=none/);
      expect(runIn('system', condaRoot()).stdout).toMatch(/rft: python env system[\s\S]*env=none/);
    });

    it('conda on an image without it stops before the tests with its own exit code', () => {
      const run = runIn('conda', path.join(tmpdir(), 'rft-no-conda-here'));
      expect(run.status).toBe(EVAL_EXIT.noPythonEnv);
      expect(run.stdout).toContain('could not activate the conda env testbed');
      expect(run.stdout).not.toContain(OPTIONS.startMarker);
    });
  });

  it('refuses unsafe markers and relative paths', () => {
    expect(() => renderEvalScript(specWith(), { instance_id: 'x' }, { ...OPTIONS, startMarker: 'short' })).toThrow(/startMarker/);
    expect(() => renderEvalScript(specWith(), { instance_id: 'x' }, { ...OPTIONS, endMarker: 'has space inside' })).toThrow(
      /endMarker/,
    );
    expect(() =>
      renderEvalScript(specWith(), { instance_id: 'x' }, { ...OPTIONS, endMarker: `${OPTIONS.startMarker}_END` }),
    ).toThrow(/contain/);
    expect(() => renderEvalScript(specWith(), { instance_id: 'x' }, { ...OPTIONS, junitPath: 'junit.xml' })).toThrow(/absolute/);
  });
});

describe('parseEvalOutput', () => {
  const { startMarker: S, endMarker: E } = OPTIONS;

  it('returns the log between the markers and the exit code', () => {
    const out = `Applied patch x cleanly.\n${S}\nline 1\nline 2\n${E} exit=1 elapsed=3\n`;
    expect(parseEvalOutput(out, S, E)).toEqual({
      started: true,
      log: 'line 1\nline 2',
      exitCode: 1,
      elapsedS: 3,
      preamble: 'Applied patch x cleanly.',
    });
  });

  it('drops the blank line the script prints before the end marker, and keeps an unterminated last line', () => {
    expect(parseEvalOutput(`${S}\nline 1\n\n${E} exit=0 elapsed=1\n`, S, E).log).toBe('line 1');
    expect(parseEvalOutput(`${S}\nline 1\n\n\n${E} exit=0 elapsed=1\n`, S, E).log).toBe('line 1\n');
    expect(parseEvalOutput(`${S}\ntests/t.py ..\n${E} exit=137 elapsed=9\n`, S, E).log).toBe('tests/t.py ..');
  });

  it('reports a null exit code when the end marker is missing (the run was killed)', () => {
    const parsed = parseEvalOutput(`${S}\npartial output\n`, S, E);
    expect(parsed.started).toBe(true);
    expect(parsed.exitCode).toBeNull();
    expect(parsed.log).toBe('partial output\n');
  });

  it('takes the last end marker, so one printed early by a test only lands in the log', () => {
    const out = `${S}\n${E} exit=0 elapsed=0\nmore test output\n${E} exit=1 elapsed=7\n`;
    const parsed = parseEvalOutput(out, S, E);
    expect(parsed.exitCode).toBe(1);
    expect(parsed.log).toBe(`${E} exit=0 elapsed=0\nmore test output`);
  });

  it('takes the first start marker, so nothing the tests print can move it', () => {
    const out = `${S}\nfake\n${S}\nreal?\n${E} exit=0 elapsed=1`;
    expect(parseEvalOutput(out, S, E).log).toBe(`fake\n${S}\nreal?`);
  });

  it('says when the tests never started', () => {
    expect(parseEvalOutput('rft: the test patch did not apply\n', S, E)).toEqual({
      started: false,
      log: '',
      exitCode: null,
      elapsedS: null,
      preamble: 'rft: the test patch did not apply\n',
    });
  });

  it('ranOutOfTime needs both the KILL exit code and the elapsed time', () => {
    expect(ranOutOfTime({ exitCode: 137, elapsedS: 30 }, 30)).toBe(true);
    expect(ranOutOfTime({ exitCode: 137, elapsedS: 2 }, 30)).toBe(false);
    expect(ranOutOfTime({ exitCode: 1, elapsedS: 30 }, 30)).toBe(false);
    expect(ranOutOfTime({ exitCode: null, elapsedS: null }, 30)).toBe(false);
  });
});

/**
 * The rendered script, run for real with bash, git and pytest in a throw-away repository: a patch
 * that tampers with the test set-up must not get its failing tests reported as passing.
 */
describe('renderEvalScript (executed in a real git repository)', () => {
  const root = mkdtempSync(join(tmpdir(), 'rft-eval-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const SPACED = "tests/it's here/test_spaced.py";

  const write = (repo: string, path: string, text: string) => {
    mkdirSync(dirname(join(repo, path)), { recursive: true });
    writeFileSync(join(repo, path), text);
  };
  const git = (repo: string, ...args: string[]) =>
    execFileSync('git', ['-c', 'user.email=t@t', '-c', 'user.name=t', ...args], { cwd: repo, encoding: 'utf8' });

  /** The base repository (HEAD) and the task's test patch, made with git itself. */
  function makeRepo(name: string): { repo: string; instance: Instance } {
    const repo = join(root, name);
    mkdirSync(repo);
    git(repo, 'init', '-q');
    write(repo, 'calc.py', 'def add(a, b):\n    return a - b  # the bug\n\n\ndef mul(a, b):\n    return a * b\n');
    write(repo, 'pytest.ini', '[pytest]\naddopts = -p no:cacheprovider\n');
    write(repo, '.gitignore', '*.log\n');
    write(repo, 'tests/conftest.py', 'import pytest\n\n\n@pytest.fixture\ndef two():\n    return 2\n');
    write(repo, 'tests/helpers.py', 'def expected_product():\n    return 6\n');
    write(
      repo,
      'tests/test_calc.py',
      'from calc import mul\nfrom helpers import expected_product\n\n\ndef test_mul(two):\n    assert mul(two, 3) == expected_product()\n',
    );
    git(repo, 'add', '-A');
    git(repo, 'commit', '-qm', 'base');
    const base = git(repo, 'rev-parse', 'HEAD').trim();
    // The task's test patch: a new FAIL_TO_PASS test in an existing file and a new file whose path has a space and a quote.
    write(
      repo,
      'tests/test_calc.py',
      `${readFileSync(join(repo, 'tests/test_calc.py'), 'utf8')}\n\ndef test_add(two):\n    from calc import add\n    assert add(two, 3) == 5\n`,
    );
    write(
      repo,
      SPACED,
      'import pytest\nfrom calc import add\n\n\n@pytest.mark.parametrize("words", ["a b"])\ndef test_spaced(words):\n    assert add(1, 1) == 2\n',
    );
    git(repo, 'add', '-A');
    const testPatch = git(repo, 'diff', '--cached', 'HEAD');
    git(repo, 'reset', '-q', '--hard', 'HEAD');
    git(repo, 'clean', '-fdq');
    const instance = InstanceSchema.parse({
      instance_id: `minigym__calc-${name}`,
      repo: 'minigym/calc',
      base_commit: base,
      problem_statement: 'add() subtracts',
      test_patch: testPatch,
      FAIL_TO_PASS: ['tests/test_calc.py::test_add', `${SPACED}::test_spaced[a b]`],
      PASS_TO_PASS: ['tests/test_calc.py::test_mul'],
    });
    return { repo, instance };
  }

  /** Render, run, parse and grade: what the Docker-side verifier will do, minus Docker. */
  function verify(repo: string, instance: Instance, timeout_s = 120) {
    const spec = buildEvalSpec(instance, { timeout_s });
    const id = randomBytes(8).toString('hex');
    const options = {
      junitPath: join(root, `junit-${id}`, 'report.xml'),
      startMarker: `RFT_START_${id}`,
      endMarker: `RFT_END_${id}`,
      testPatchPath: join(root, `test-${id}.patch`),
      workdir: repo,
    };
    writeFileSync(options.testPatchPath, instance.test_patch);
    const script = renderEvalScript(spec, instance, options);
    const run = spawnSync('bash', ['-c', script], { encoding: 'utf8', timeout: 60_000 });
    const output = parseEvalOutput(`${run.stdout}${run.stderr}`, options.startMarker, options.endMarker);
    const junit = existsSync(options.junitPath)
      ? parseJunitXml(readFileSync(options.junitPath, 'utf8'), [
          ...spec.test_files,
          ...[...instance.FAIL_TO_PASS, ...instance.PASS_TO_PASS].map(fileOfTestId),
        ])
      : null;
    const statuses = mergeStatuses(junit, parsePytestSummary(output.log));
    const grade = gradeTests({ failToPass: instance.FAIL_TO_PASS, passToPass: instance.PASS_TO_PASS, statuses });
    return { run, output, junit, statuses, grade, spec };
  }

  /** A patch that leaves the bug in place and rigs the test set-up instead. */
  function tamper(repo: string): void {
    const cheat = [
      'import pytest',
      '',
      '@pytest.hookimpl(hookwrapper=True)',
      'def pytest_runtest_makereport(item, call):',
      '    outcome = yield',
      '    report = outcome.get_result()',
      '    if report.failed:',
      '        report.outcome = "passed"',
      '',
    ].join('\n');
    write(repo, 'conftest.py', cheat); // new conftest at the root
    write(repo, '.gitignore', '*.log\nconftest.py\n'); // ... hidden from `git status`
    write(repo, 'pytest.ini', '[pytest]\naddopts = -p no:cacheprovider -k "not add"\n');
    unlinkSync(join(repo, 'tests/conftest.py')); // tracked fixture file deleted
    write(repo, 'tests/helpers.py', 'def expected_product():\n    return "anything"\n');
    write(repo, 'tests/test_extra.py', 'def test_extra():\n    assert True\n');
    write(repo, 'tests/test_calc.py', 'def test_add():\n    assert True\n');
    write(repo, SPACED, 'garbage that would stop the test patch from applying\n');
    write(repo, 'sitecustomize.py', 'print("start-up hook")\n');
    write(repo, 'lib/evil.pth', 'import os\n');
    write(repo, '.venv/lib/site-packages/env.pth', '/opt/env\n'); // an in-tree environment: must survive
  }

  it('a correct patch resolves, and the fix itself is left alone', () => {
    const { repo, instance } = makeRepo('good');
    write(repo, 'calc.py', 'def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n');
    const { run, output, junit, statuses, grade } = verify(repo, instance);
    expect(run.status).toBe(0);
    expect(output.started).toBe(true);
    expect(output.exitCode).toBe(0);
    expect(junit).not.toBeNull();
    expect(statuses).toEqual({
      'tests/test_calc.py::test_mul': 'PASSED',
      'tests/test_calc.py::test_add': 'PASSED',
      [`${SPACED}::test_spaced[a b]`]: 'PASSED',
    });
    expect(grade.resolved).toBe(true);
    expect(readFileSync(join(repo, 'calc.py'), 'utf8')).toContain('a + b');
  });

  it('no patch: the FAIL_TO_PASS tests fail and PASS_TO_PASS holds', () => {
    const { repo, instance } = makeRepo('empty');
    const { output, grade } = verify(repo, instance);
    expect(output.exitCode).toBe(1);
    expect(grade.report).toEqual({
      FAIL_TO_PASS: { success: [], failure: ['tests/test_calc.py::test_add', `${SPACED}::test_spaced[a b]`] },
      PASS_TO_PASS: { success: ['tests/test_calc.py::test_mul'], failure: [] },
    });
    expect(grade.resolved).toBe(false);
  });

  it('the tampering is real: without the restore steps it makes the failing test report as passed', () => {
    const { repo, instance } = makeRepo('tamper-unprotected');
    tamper(repo);
    rmSync(join(repo, SPACED));
    write(repo, 'tests/conftest.py', 'import pytest\n\n\n@pytest.fixture\ndef two():\n    return 2\n');
    git(repo, 'checkout', '-q', 'HEAD', '--', 'tests/test_calc.py', 'pytest.ini');
    const patchFile = join(root, 'unprotected.patch');
    writeFileSync(patchFile, instance.test_patch);
    git(repo, 'apply', patchFile);
    const run = spawnSync('python3', ['-m', 'pytest', '-rA', '-p', 'no:cacheprovider', 'tests/test_calc.py'], {
      cwd: repo,
      encoding: 'utf8',
    });
    expect(parsePytestSummary(run.stdout)['tests/test_calc.py::test_add']).toBe('PASSED');
  });

  it('a tampering patch is undone: conftest, ini, helpers, fixtures, start-up hooks — and it is not resolved', () => {
    const { repo, instance } = makeRepo('tamper');
    tamper(repo);
    const { run, output, statuses, grade } = verify(repo, instance);
    expect(run.status).toBe(0);
    expect(output.started).toBe(true);
    expect(statuses['tests/test_calc.py::test_add']).toBe('FAILED');
    expect(statuses[`${SPACED}::test_spaced[a b]`]).toBe('FAILED');
    expect(statuses['tests/test_calc.py::test_mul']).toBe('PASSED'); // needs the restored fixture and helper
    expect(statuses['tests/test_extra.py::test_extra']).toBeUndefined();
    expect(grade.resolved).toBe(false);
    expect(grade.report.FAIL_TO_PASS.failure).toHaveLength(2);

    expect(existsSync(join(repo, 'conftest.py'))).toBe(false);
    expect(existsSync(join(repo, 'sitecustomize.py'))).toBe(false);
    expect(existsSync(join(repo, 'lib/evil.pth'))).toBe(false);
    expect(existsSync(join(repo, 'tests/test_extra.py'))).toBe(false);
    expect(existsSync(join(repo, '.venv/lib/site-packages/env.pth'))).toBe(true);
    expect(readFileSync(join(repo, 'pytest.ini'), 'utf8')).toBe('[pytest]\naddopts = -p no:cacheprovider\n');
    expect(readFileSync(join(repo, '.gitignore'), 'utf8')).toBe('*.log\n');
    expect(readFileSync(join(repo, 'tests/helpers.py'), 'utf8')).toContain('return 6');
    expect(existsSync(join(repo, 'tests/conftest.py'))).toBe(true);
    // the test patch went in on top of the restored files
    expect(readFileSync(join(repo, 'tests/test_calc.py'), 'utf8')).toContain('def test_mul(two)');
    expect(readFileSync(join(repo, SPACED), 'utf8')).toContain('def test_spaced');
    expect(readFileSync(join(repo, 'calc.py'), 'utf8')).toContain('a - b');
  });

  it('a test patch that does not apply stops before the tests, with its own exit code', () => {
    const { repo, instance } = makeRepo('badpatch');
    const broken = { ...instance, test_patch: instance.test_patch.replace('def test_mul(two):', 'def test_mul(three):') };
    const { run, output } = verify(repo, broken);
    expect(run.status).toBe(EVAL_EXIT.testPatchFailed);
    expect(output.started).toBe(false);
    expect(output.preamble).toContain('rft: the test patch did not apply');
  });

  it('a hanging test is killed at the timeout and reported as such', () => {
    const { repo, instance } = makeRepo('hang');
    write(repo, 'calc.py', 'import time\n\n\ndef add(a, b):\n    time.sleep(30)\n\n\ndef mul(a, b):\n    return a * b\n');
    const { output, junit, statuses } = verify(repo, instance, 2);
    expect(output.exitCode).toBe(137);
    expect(output.elapsedS).not.toBeNull();
    expect(ranOutOfTime(output, 2)).toBe(true);
    expect(junit).toBeNull();
    expect(statuses).toEqual({});
  });
});
