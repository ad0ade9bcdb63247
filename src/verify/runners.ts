import { djangoDirectives, parseDjangoLog } from './django-log.js';
import { parsePytestSummary, type TestStatusMap } from './pytest-log.js';
import { DJANGO_REPOS, PYTEST_REPOS, SYMPY_REPOS, type RepoFacts } from './repos.js';
import { parseSympyLog, sympyDirectives } from './sympy-log.js';

/** The families of test runners rft can run and read. */
export const RUNNER_KINDS = ['pytest', 'django', 'sympy'] as const;
export type RunnerKind = (typeof RUNNER_KINDS)[number];

/**
 * How a family's tests are run and read:
 * - `parseLog`: the reference parser's reading of the printed log (one signature for all);
 * - `directives`: what follows the test command, from the test patch's test files;
 * - `channel`: where the results the harness trusts come from — `junit`, pytest's report written
 *   into the harness's pipe; `hook`, the harness's start-up module inside the test process
 *   (result-hook.ts) writing into that pipe. The log can only lower what the channel says.
 */
export interface Runner {
  parseLog: (log: string) => TestStatusMap;
  directives: (testFiles: readonly string[]) => string[];
  channel: 'junit' | 'hook';
  /** The repositories of the family and their facts (repos.ts). */
  repos: Readonly<Record<string, RepoFacts>>;
}

export const RUNNERS: Readonly<Record<RunnerKind, Runner>> = {
  pytest: { parseLog: parsePytestSummary, directives: (files) => [...new Set(files)], channel: 'junit', repos: PYTEST_REPOS },
  django: { parseLog: parseDjangoLog, directives: djangoDirectives, channel: 'hook', repos: DJANGO_REPOS },
  sympy: { parseLog: parseSympyLog, directives: sympyDirectives, channel: 'hook', repos: SYMPY_REPOS },
};

/** The family and facts of a repository (owner/name, matched case-insensitively: datasets disagree on MONAI's case). */
export function repoFamily(repo: string): { kind: RunnerKind; facts: RepoFacts } | null {
  const lower = repo.toLowerCase();
  for (const kind of RUNNER_KINDS) {
    const repos = RUNNERS[kind].repos;
    const key = Object.keys(repos).find((k) => k.toLowerCase() === lower);
    if (key) return { kind, facts: repos[key]! };
  }
  return null;
}
