import { describe, expect, it } from 'vitest';
import { InstanceSchema, type Instance } from '../../src/tasks/instance.js';
import {
  buildEvalSpec,
  EvalSpecSchema,
  REPO_TEST_COMMANDS,
  resolveTestCommand,
  specHash,
  testArgsFor,
  testDirsFor,
  type EvalSpec,
} from '../../src/verify/spec.js';

const TEST_PATCH = [
  'diff --git a/tests/test_s3/test_s3.py b/tests/test_s3/test_s3.py',
  '--- a/tests/test_s3/test_s3.py',
  '+++ b/tests/test_s3/test_s3.py',
  '@@ -1 +1,2 @@',
  ' import moto',
  '+def test_new(): pass',
  'diff --git a/tests/test_s3/data.json b/tests/test_s3/data.json',
  'new file mode 100644',
  '--- /dev/null',
  '+++ b/tests/test_s3/data.json',
  '@@ -0,0 +1 @@',
  '+{}',
  'diff --git a/tests/test_s3/test_old.py b/tests/test_s3/test_old.py',
  'deleted file mode 100644',
  '--- a/tests/test_s3/test_old.py',
  '+++ /dev/null',
  '@@ -1 +0,0 @@',
  '-x = 1',
  '',
].join('\n');

function instance(overrides: Partial<Record<string, unknown>> = {}): Instance {
  return InstanceSchema.parse({
    instance_id: 'getmoto__moto-1',
    repo: 'getmoto/moto',
    base_commit: 'abc1234',
    problem_statement: 'p',
    test_patch: TEST_PATCH,
    FAIL_TO_PASS: ['tests/test_s3/test_s3.py::test_new'],
    PASS_TO_PASS: '["tests/test_s3/test_s3.py::test_old"]',
    version: '4.1',
    ...overrides,
  });
}

describe('resolveTestCommand', () => {
  it("prefers the instance's own command", () => {
    expect(resolveTestCommand(instance({ test_cmd: 'pytest -x -rA' }))).toEqual({
      test_cmd: 'pytest -x -rA',
      parser: 'pytest',
      source: 'instance',
    });
  });

  it('falls back to the repository table', () => {
    expect(resolveTestCommand(instance())).toEqual({ test_cmd: 'pytest -n0 -rA', parser: 'pytest', source: 'repo' });
  });

  it('uses version-specific table entries', () => {
    expect(resolveTestCommand({ repo: 'django/django', version: '1.9', test_cmd: null }).test_cmd).toBe(
      './tests/runtests.py --verbosity 2',
    );
    expect(resolveTestCommand({ repo: 'django/django', version: '3.0', test_cmd: null }).test_cmd).toBe(
      './tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1',
    );
    expect(resolveTestCommand({ repo: 'astropy/astropy', version: '1.3', test_cmd: null }).test_cmd).toContain('--tb=no');
    expect(resolveTestCommand({ repo: 'astropy/astropy', version: '5.1', test_cmd: null }).test_cmd).toBe('pytest -rA');
  });

  it('defaults to pytest -rA for unknown repositories', () => {
    expect(resolveTestCommand({ repo: 'someone/else', version: null, test_cmd: null })).toEqual({
      test_cmd: 'pytest -rA',
      parser: 'pytest',
      source: 'default',
    });
  });

  it('knows the bundled minigym repositories', () => {
    expect(resolveTestCommand({ repo: 'minigym/iniform', version: null, test_cmd: null }).test_cmd).toBe(
      'python3 -m pytest -rA -p no:cacheprovider',
    );
  });

  it('matches repository names case-insensitively', () => {
    expect(resolveTestCommand({ repo: 'project-monai/monai', version: null, test_cmd: null }).source).toBe('repo');
  });

  it('marks the parser per repository, keeping it for an instance command of a known repository', () => {
    expect(resolveTestCommand({ repo: 'django/django', version: '4.0', test_cmd: null }).parser).toBe('django');
    expect(resolveTestCommand({ repo: 'sympy/sympy', version: '1.12', test_cmd: null }).parser).toBe('sympy');
    expect(resolveTestCommand({ repo: 'sympy/sympy', version: '1.12', test_cmd: 'bin/test x' }).parser).toBe('sympy');
  });

  it('covers the 11 SWE-Gym and the 12 SWE-bench Lite repositories', () => {
    const expected = [
      'getmoto/moto', 'Project-MONAI/MONAI', 'pandas-dev/pandas', 'python/mypy', 'dask/dask', 'iterative/dvc',
      'conan-io/conan', 'pydantic/pydantic', 'modin-project/modin', 'facebookresearch/hydra', 'bokeh/bokeh',
      'astropy/astropy', 'django/django', 'matplotlib/matplotlib', 'mwaskom/seaborn', 'pallets/flask', 'psf/requests',
      'pydata/xarray', 'pylint-dev/pylint', 'pytest-dev/pytest', 'sphinx-doc/sphinx', 'sympy/sympy',
      'scikit-learn/scikit-learn', 'pydicom/pydicom',
    ];
    expect(Object.keys(REPO_TEST_COMMANDS).sort()).toEqual(expected.sort());
  });
});

describe('test arguments and protected paths', () => {
  it('passes the surviving test files, without non-test extensions', () => {
    expect(testArgsFor('pytest -rA', instance())).toEqual(['tests/test_s3/test_s3.py']);
  });

  it('passes Django module labels and sympy test files', () => {
    const files = 'diff --git a/tests/utils_tests/test_text.py b/tests/utils_tests/test_text.py\n--- a/tests/utils_tests/test_text.py\n+++ b/tests/utils_tests/test_text.py\n@@ -1 +1,2 @@\n x\n+y\n';
    expect(testArgsFor('./tests/runtests.py', { test_patch: files, FAIL_TO_PASS: [], PASS_TO_PASS: [] }, 'django')).toEqual(['utils_tests.test_text']);
    const sympy = files.replaceAll('tests/utils_tests/test_text.py', 'sympy/core/tests/test_x.py');
    expect(testArgsFor('bin/test -C --verbose', { test_patch: sympy, FAIL_TO_PASS: [], PASS_TO_PASS: [] }, 'sympy')).toEqual(['sympy/core/tests/test_x.py']);
  });

  it('records the Python environment setting and the id rewrite in the spec (so in its hash)', () => {
    expect(buildEvalSpec(instance()).python_env.mode).toBe('auto');
    expect(buildEvalSpec(instance(), { pythonEnv: 'system' }).python_env.mode).toBe('system');
    expect(specHash(buildEvalSpec(instance(), { pythonEnv: 'conda' }))).not.toBe(specHash(buildEvalSpec(instance())));
    expect(buildEvalSpec(instance({ repo: 'psf/requests' })).id_rewrite).toBe('path_basename');
    expect(buildEvalSpec(instance({ repo: 'matplotlib/matplotlib' })).id_rewrite).toBe('mousebutton');
  });

  it('builds a -k expression for commands ending in -k (mypy)', () => {
    const mypy = instance({
      FAIL_TO_PASS: ['mypy/test/testcheck.py::TypeCheckSuite::check-x.test::testB'],
      PASS_TO_PASS: ['mypy/test/testcheck.py::TypeCheckSuite::check-x.test::testA'],
    });
    expect(testArgsFor('pytest -n0 -rA -k', mypy)).toEqual(['testA or testB']);
    const fromPatch = { test_patch: '+[case testOne]\n+x\n+[case testTwo]\n [case testOld]\n', FAIL_TO_PASS: [], PASS_TO_PASS: [] };
    expect(testArgsFor('pytest -rA -k', fromPatch)).toEqual(['testOne or testTwo']);
  });

  it('finds the outermost test directory, and none for a test file outside one', () => {
    expect(testDirsFor(['tests/test_s3/test_s3.py', 'tests/test_s3/data.json'])).toEqual(['tests']);
    expect(testDirsFor(['pandas/tests/frame/test_api.py', 'pandas/tests/io/test_x.py'])).toEqual(['pandas/tests']);
    expect(testDirsFor(['mypy/test/testcheck.py', 'test-data/unit/check-x.test'])).toEqual(['mypy/test', 'test-data']);
    expect(testDirsFor(['test_requests.py', 'src/pkg/foo_test.py'])).toEqual([]);
  });

  it('builds the full spec', () => {
    const spec = buildEvalSpec(instance(), { timeout_s: 600 });
    expect(spec).toEqual(
      EvalSpecSchema.parse({
        test_cmd: 'pytest -n0 -rA',
        test_files: ['tests/test_s3/test_s3.py', 'tests/test_s3/data.json', 'tests/test_s3/test_old.py'],
        test_args: ['tests/test_s3/test_s3.py'],
        parser: 'pytest',
        python_env: { mode: 'auto', conda_root: '/opt/miniconda3', conda_env: 'testbed' },
        id_rewrite: null,
        timeout_s: 600,
        env: { TZ: 'UTC', PYTHONHASHSEED: '0' },
        protected_paths: {
          files: ['tests/test_s3/test_s3.py', 'tests/test_s3/data.json', 'tests/test_s3/test_old.py'],
          dirs: ['tests'],
          names: spec.protected_paths.names,
        },
      }),
    );
    expect(spec.protected_paths.names).toEqual(
      expect.arrayContaining(['conftest.py', 'pytest.ini', 'tox.ini', 'setup.cfg', 'pyproject.toml', 'sitecustomize.py', 'usercustomize.py', '*.pth']),
    );
  });

  it('refuses test patches that reach outside the repository', () => {
    const evil = '--- a/../etc/passwd\n+++ b/../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n';
    expect(() => buildEvalSpec(instance({ test_patch: evil }))).toThrow(/inside the repository/);
    const git = '--- a/.git/hooks/pre-commit\n+++ b/.git/hooks/pre-commit\n@@ -1 +1 @@\n-a\n+b\n';
    expect(() => buildEvalSpec(instance({ test_patch: git }))).toThrow(/outside \.git/);
  });
});

describe('specHash', () => {
  const spec = buildEvalSpec(instance());

  it('does not depend on key order', () => {
    const reordered = Object.fromEntries(Object.entries(spec).reverse()) as EvalSpec;
    reordered.env = { PYTHONHASHSEED: '0', TZ: 'UTC' };
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(spec));
    expect(specHash(reordered)).toBe(specHash(spec));
  });

  it('is stable across calls and changes with anything that decides the verdict', () => {
    expect(specHash(spec)).toBe(specHash(buildEvalSpec(instance())));
    expect(specHash(spec)).toMatch(/^[0-9a-f]{64}$/);
    expect(specHash({ ...spec, timeout_s: spec.timeout_s + 1 })).not.toBe(specHash(spec));
    expect(specHash({ ...spec, test_cmd: 'pytest -rA' })).not.toBe(specHash(spec));
    expect(specHash({ ...spec, protected_paths: { ...spec.protected_paths, names: ['conftest.py'] } })).not.toBe(specHash(spec));
  });
});
