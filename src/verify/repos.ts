/**
 * Per-repository facts of SWE-bench's and SWE-Gym's harnesses, as data, split by the family of
 * test runner a repository uses (which decides how its results are read: see runners.ts).
 *
 * SWE-bench (swebench/harness/constants/python.py): TEST_PYTEST is `pytest -rA` (the file defines
 * it twice; the later one wins); seaborn `pytest --no-header -rA`; sphinx `tox --current-env -epy39
 * -v --`; sympy `bin/test -C --verbose` with PYTHONWARNINGS ignoring User/SyntaxWarning; django
 * `./tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1`, and for version 1.9
 * `./tests/runtests.py --verbosity 2`; astropy 0.1–1.3 `pytest -rA -vv -o
 * console_output_style=classic --tb=no`.
 *
 * SWE-Gym's harness fork: moto, conan, modin `pytest -n0 -rA`; dask `pytest -n0 -rA --color=no`;
 * MONAI and dvc `pytest -rA`; bokeh `pytest -rA -n0`; pandas and hydra `pytest -rA --tb=long`;
 * pydantic `pytest -rA --tb=short -vv -o console_output_style=classic --no-header`; mypy
 * `pytest -n0 -rA -k` (a -k expression of test-case names follows instead of files, see
 * testArgsFor in spec.ts). conan's eval commands put the repository on PYTHONPATH; that is folded
 * into the command here.
 *
 * Sphinx: SWE-bench's image build edits tox.ini to add -rA to its pytest command; the eval script
 * restores tox.ini to HEAD, so -rA is passed through tox's posargs instead.
 */

/** How the reference log parser rewrote the ids it read, so the datasets' ids look that way too. */
export type IdRewrite =
  /** requests, pylint, pydicom (`parse_log_pytest_options`): a parameter that is an absolute path keeps only its last component, `[/a/b/c.txt]` → `[/c.txt]`. */
  | 'path_basename'
  /** matplotlib (`parse_log_matplotlib`): `MouseButton.LEFT` → `1`, `MouseButton.RIGHT` → `3`. */
  | 'mousebutton';

export interface RepoFacts {
  test_cmd: string;
  /** Commands for specific `version`s of the repo, where they differ. */
  versions?: Record<string, string>;
  id_rewrite?: IdRewrite;
  /**
   * Why the reference eval script re-runs the repository's install step before the tests and rft
   * does not (no network in the sandbox): shown by `rft tasks validate` for the instances it
   * concerns, whose gold may then fail here only. Per version where it differs.
   */
  reinstall?: { note: string; versions?: readonly string[] };
}

const SWEBENCH_PYTEST = 'pytest -rA';

export const PYTEST_REPOS: Readonly<Record<string, RepoFacts>> = {
  // SWE-Gym
  'getmoto/moto': { test_cmd: 'pytest -n0 -rA' },
  'Project-MONAI/MONAI': { test_cmd: 'pytest -rA' },
  'pandas-dev/pandas': {
    test_cmd: 'pytest -rA --tb=long',
    reinstall: { note: 'the reference rebuilds pandas before the tests: edits to .pyx/.pxd (C extensions) take effect only then' },
  },
  'python/mypy': { test_cmd: 'pytest -n0 -rA -k' },
  'dask/dask': { test_cmd: 'pytest -n0 -rA --color=no' },
  'iterative/dvc': { test_cmd: 'pytest -rA' },
  'conan-io/conan': { test_cmd: 'PYTHONPATH="${PYTHONPATH:-}:$PWD" pytest -n0 -rA' },
  'pydantic/pydantic': {
    test_cmd: 'pytest -rA --tb=short -vv -o console_output_style=classic --no-header',
    reinstall: { note: 'the reference runs `pdm add pre-commit; make install` (network) before the tests: a pydantic-core bump in a patch takes effect only then' },
  },
  'modin-project/modin': { test_cmd: 'pytest -n0 -rA' },
  'facebookresearch/hydra': {
    test_cmd: 'pytest -rA --tb=long',
    reinstall: { note: 'the reference re-installs hydra before the tests: edits to its ANTLR grammars (.g4) take effect only then' },
  },
  'bokeh/bokeh': {
    test_cmd: 'pytest -rA -n0',
    reinstall: { note: 'the reference re-installs bokeh before the tests: edits to bokehjs (TypeScript) take effect only then' },
  },
  // SWE-bench Lite
  'astropy/astropy': {
    test_cmd: SWEBENCH_PYTEST,
    versions: Object.fromEntries(
      ['0.1', '0.2', '0.3', '0.4', '1.1', '1.2', '1.3'].map((v) => [v, 'pytest -rA -vv -o console_output_style=classic --tb=no']),
    ),
  },
  'matplotlib/matplotlib': { test_cmd: SWEBENCH_PYTEST, id_rewrite: 'mousebutton' },
  'mwaskom/seaborn': { test_cmd: 'pytest --no-header -rA' },
  'pallets/flask': { test_cmd: SWEBENCH_PYTEST },
  'psf/requests': {
    test_cmd: SWEBENCH_PYTEST,
    id_rewrite: 'path_basename',
    reinstall: { note: 'the reference re-runs `pip install .` (not editable) before the tests; the tests import /testbed first, so the patch is usually seen anyway' },
  },
  'pydata/xarray': { test_cmd: SWEBENCH_PYTEST },
  'pylint-dev/pylint': { test_cmd: SWEBENCH_PYTEST, id_rewrite: 'path_basename' },
  'pydicom/pydicom': { test_cmd: SWEBENCH_PYTEST, id_rewrite: 'path_basename' },
  'pytest-dev/pytest': { test_cmd: SWEBENCH_PYTEST },
  'sphinx-doc/sphinx': { test_cmd: 'tox --current-env -epy39 -v -- -rA' },
  'scikit-learn/scikit-learn': { test_cmd: SWEBENCH_PYTEST },
};

export const DJANGO_REPOS: Readonly<Record<string, RepoFacts>> = {
  'django/django': {
    test_cmd: './tests/runtests.py --verbosity 2 --settings=test_sqlite --parallel 1',
    versions: { '1.9': './tests/runtests.py --verbosity 2' },
    reinstall: {
      note: 'Django ≤ 2.2 is installed with `python setup.py install` (not editable) and the reference re-installs it before the tests; without that the tests import the installed copy and never see the patch',
      versions: ['1.9', '1.10', '1.11', '2.0', '2.1', '2.2'],
    },
  },
};

export const SYMPY_REPOS: Readonly<Record<string, RepoFacts>> = {
  'sympy/sympy': { test_cmd: "PYTHONWARNINGS='ignore::UserWarning,ignore::SyntaxWarning' bin/test -C --verbose" },
};
