import type { Instance } from '../tasks/instance.js';
import { shQuote } from '../verify/eval-script.js';
import { RUNNERS } from '../verify/runners.js';
import { buildEvalSpec, NON_TEST_EXTS, resolveTestCommand, type EvalSpec } from '../verify/spec.js';
import { filesInPatch } from '../verify/patch.js';

/**
 * Which tests a synthesized task runs, as the verifier runs them. A synthesized task has no test
 * patch, so its own `test_cmd` names its tests: the source instance's command followed by the
 * runner's directives for the test files that execute the changed functions (module labels for
 * Django, paths for pytest and sympy). A command ending in `-k` (mypy) takes test names instead;
 * the verifier derives those from FAIL_TO_PASS and PASS_TO_PASS (spec.ts testArgsFor), so it is
 * kept as it is.
 */
export function selectsByName(source: Pick<Instance, 'repo' | 'version' | 'test_cmd'>): boolean {
  return /(^|\s)-k$/.test(resolveTestCommand(source).test_cmd.trim());
}

export function taskTestCommand(source: Pick<Instance, 'repo' | 'version' | 'test_cmd'>, testFiles: readonly string[]): string {
  const resolved = resolveTestCommand(source);
  if (selectsByName(source)) return resolved.test_cmd;
  const directives = RUNNERS[resolved.parser].directives([...new Set(testFiles)].sort());
  return [resolved.test_cmd, ...directives.map(shQuote)].join(' ');
}

/** The spec of a run over `testFiles` (or, for `-k` commands, the tests `ids`), as a synthesized task with those lists gets it. */
export function runSpec(
  source: Instance,
  testFiles: readonly string[],
  ids: readonly string[],
  options: { timeout_s: number; pythonEnv: EvalSpec['python_env']['mode'] },
): EvalSpec {
  const byName = selectsByName(source);
  return buildEvalSpec(
    {
      repo: source.repo,
      version: source.version,
      test_cmd: taskTestCommand(source, testFiles),
      test_patch: '',
      FAIL_TO_PASS: byName ? [...ids] : [],
      PASS_TO_PASS: [],
    },
    { timeout_s: options.timeout_s, pythonEnv: options.pythonEnv },
  );
}

/** The test files the source instance's test patch names (what the trace runs by default), before checking they exist at the base commit. */
export function sourceTestFiles(source: Instance): string[] {
  return filesInPatch(source.test_patch).filter((file) => !NON_TEST_EXTS.some((ext) => file.endsWith(ext)));
}

/** The ids a `-k` trace selects: the source instance's lists. */
export function sourceTestIds(source: Instance): string[] {
  return [...source.FAIL_TO_PASS, ...source.PASS_TO_PASS];
}

/** A `-k` command without its `-k` (a trace over every test). */
export function withoutNameFilter(testCmd: string): string {
  return testCmd.trim().replace(/(^|\s)-k$/, '').trim();
}
