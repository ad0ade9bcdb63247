import { posix } from 'node:path';
import type { Instance } from '../tasks/instance.js';
import { HOOK_ENV } from './result-hook.js';
import { RUNNERS } from './runners.js';
import type { EvalSpec } from './spec.js';

/** Single-quote a string for bash: every byte literal, embedded quotes closed, escaped, reopened. */
export function shQuote(value: string): string {
  if (value.includes('\0')) throw new Error('a shell argument cannot contain a NUL byte');
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export interface EvalScriptOptions {
  /**
   * Where the results go: pytest's junit report, or the result hook's records (result-hook.ts) for
   * runners read through it. Pick it per run so nothing can be planted there beforehand.
   */
  junitPath: string;
  /** For runners whose channel is `hook`: the directory holding the hook's sitecustomize.py. */
  hookDir?: string;
  /**
   * The junit path is a named pipe the harness made and reads from outside the tested process
   * (see verifyPatch): the script checks it is there instead of clearing the path, and once the
   * tests are over opens and closes it, so a reader still waiting sees the end of its input.
   */
  junitPipe?: boolean;
  /** Printed on a line of its own right before the test command. Random per run. */
  startMarker: string;
  /** Printed after the test command as `<endMarker> exit=<rc> elapsed=<s>`. Random per run. */
  endMarker: string;
  /** The test patch, already copied into the container (never passed through a shell argument). */
  testPatchPath?: string;
  /** The repository in the container. */
  workdir?: string;
}

export const DEFAULT_TEST_PATCH_PATH = '/tmp/rft/test.patch';
export const DEFAULT_WORKDIR = '/testbed';

/** Script exit codes other than 0 (tests ran; their own exit code is on the end-marker line). */
export const EVAL_EXIT = { noPythonEnv: 94, noWorkdir: 95, restoreFailed: 96, testPatchFailed: 97, noReportPipe: 98 } as const;

/** The line the eval script prints to say which Python environment it ran the tests in. */
export const PYTHON_ENV_LINE = /^rft: python env (conda|system)$/m;

/**
 * Untracked files with protected names are not deleted inside these trees: an environment kept
 * inside the repository (a venv's own .pth files, tox's, node's) must survive. SWE-bench and
 * SWE-Gym images keep their environment outside /testbed, so this excludes nothing there.
 */
const ENV_DIRS = ['.git', '.tox', '.nox', '.venv', 'venv', 'node_modules'];

/**
 * The bash script run in the container, in the repository, after the model patch is applied.
 *
 * 1. Hardening: undo what a patch could do to make failing tests report as passing, before the
 *    test patch goes in. SWE-bench only checks out the test patch's files; a patch can also add a
 *    conftest.py that rewrites reports, an ini file whose addopts deselects tests or loads a
 *    plugin, a sitecustomize.py or .pth file that Python runs at start-up, or edit helpers the
 *    tests import. So:
 *    - protected names anywhere (conftest.py, pytest/tox/setup.cfg/pyproject config, .gitignore,
 *      sitecustomize.py, usercustomize.py, *.pth): tracked changes go back to HEAD, untracked
 *      files — ignored ones too — are deleted (.gitignore first, so the later clean judges
 *      ignored-ness by HEAD's rules);
 *    - each test directory: tracked files back to HEAD, untracked (non-ignored) files removed;
 *      a test directory HEAD does not have is removed whole (the test patch creates it);
 *    - each file the test patch touches: back to HEAD, or removed if HEAD lacks it.
 *    What this does not stop: the patch's own code runs inside the test process and can do
 *    anything pytest can. The aim is that no cheap trick works, not a sandbox against an adversary.
 *    Restoring to HEAD also reverts edits the image build made to those files (SWE-bench's sphinx
 *    image adds -rA to tox.ini; the spec passes -rA itself for that reason).
 * 2. Apply the test patch from its file with `git apply -v`.
 * 3. Run the test command on the spec's arguments under `timeout -s KILL`, with TZ and
 *    PYTHONHASHSEED pinned, stdout and stderr combined, between the two markers; for pytest, with
 *    `--junitxml` at the given path (a stale file there is removed first; with `junitPipe`, the
 *    harness's named pipe must be there, and is opened and closed once the tests are over).
 */
export function renderEvalScript(
  spec: EvalSpec,
  instance: Pick<Instance, 'instance_id'>,
  options: EvalScriptOptions,
): string {
  const channel = RUNNERS[spec.parser].channel;
  if (channel === 'hook' && options.hookDir === undefined) {
    throw new Error(`the ${spec.parser} runner reports through the result hook: hookDir is required`);
  }
  checkMarker('startMarker', options.startMarker);
  checkMarker('endMarker', options.endMarker);
  if (options.startMarker.includes(options.endMarker) || options.endMarker.includes(options.startMarker)) {
    throw new Error('startMarker and endMarker must differ and neither may contain the other');
  }
  const workdir = options.workdir ?? DEFAULT_WORKDIR;
  const testPatch = options.testPatchPath ?? DEFAULT_TEST_PATCH_PATH;
  for (const path of [options.junitPath, testPatch, workdir, ...(options.hookDir ? [options.hookDir] : [])]) {
    if (!posix.isAbsolute(path) || /[\n\r]/.test(path)) {
      throw new Error(`expected an absolute one-line path, got ${JSON.stringify(path)}`);
    }
  }

  const names = spec.protected_paths.names.map((name) => shQuote(`:(glob)**/${name}`));
  const envExcludes = ENV_DIRS.map((dir) => shQuote(`:(exclude,glob)**/${dir}/**`));
  const command =
    channel === 'junit'
      ? [spec.test_cmd, ...spec.test_args.map(shQuote), shQuote(`--junitxml=${options.junitPath}`)].join(' ')
      : [
          `export PYTHONPATH=${shQuote(options.hookDir ?? '')}"\${PYTHONPATH:+:$PYTHONPATH}" ${HOOK_ENV}=${shQuote(options.junitPath)};`,
          spec.test_cmd,
          ...spec.test_args.map(shQuote),
        ].join(' ');
  const { conda_root: condaRoot, conda_env: condaEnv, mode } = spec.python_env;
  const activate = `${condaRoot}/bin/activate`;
  const env = Object.entries(spec.env)
    .map(([key, value]) => `${key}=${shQuote(value)}`)
    .join(' ');
  const safeId = instance.instance_id.replace(/[^\x20-\x7e]/g, '?');

  const lines = [
    '#!/bin/bash',
    `# rft eval script for ${safeId} (rendered by src/verify/eval-script.ts)`,
    'set -uo pipefail',
    `cd ${shQuote(workdir)} || { echo ${shQuote(`rft: no repository at ${workdir}`)}; exit ${EVAL_EXIT.noWorkdir}; }`,
    `rft_fail() { echo "rft: $1"; exit ${EVAL_EXIT.restoreFailed}; }`,
    '',
    `# 0. The Python environment (python_env: ${mode}), activated as SWE-bench's eval scripts do.`,
    mode === 'auto' ? `rft_env=system; [ -f ${shQuote(activate)} ] && rft_env=conda` : `rft_env=${mode}`,
    'echo "rft: python env $rft_env"',
    'if [ "$rft_env" = conda ]; then',
    '  set +u',
    `  source ${shQuote(activate)} && conda activate ${shQuote(condaEnv)} \\`,
    `    || { echo ${shQuote(`rft: could not activate the conda env ${condaEnv} (${activate})`)}; exit ${EVAL_EXIT.noPythonEnv}; }`,
    '  set -u',
    'fi',
    '# A path back to its HEAD state, or gone when HEAD does not have it.',
    'rft_restore() {',
    '  if git cat-file -e "HEAD:$1" 2>/dev/null; then',
    '    git --literal-pathspecs checkout -q HEAD -- "$1" || rft_fail "cannot restore $1"',
    '  else',
    '    rm -rf -- "./$1" || rft_fail "cannot remove $1"',
    '  fi',
    '}',
    '',
    '# 1a. Protected names anywhere in the tree (see renderEvalScript).',
    `rft_names=(${names.join(' ')})`,
    `rft_env_dirs=(${envExcludes.join(' ')})`,
    "git diff --name-only -z --no-renames HEAD -- ':(glob)**/.gitignore' | xargs -0 -r git --literal-pathspecs checkout -q HEAD -- \\",
    "  || rft_fail 'cannot restore .gitignore files'",
    'git diff --name-only -z --no-renames HEAD -- "${rft_names[@]}" | xargs -0 -r git --literal-pathspecs checkout -q HEAD -- \\',
    "  || rft_fail 'cannot restore protected files'",
    'git ls-files -z --others -- "${rft_names[@]}" "${rft_env_dirs[@]}" | xargs -0 -r rm -f -- \\',
    "  || rft_fail 'cannot delete untracked protected files'",
    '',
    '# 1b. Test directories.',
    ...spec.protected_paths.dirs.flatMap((dir) => [
      `if git cat-file -e ${shQuote(`HEAD:${dir}`)} 2>/dev/null; then`,
      `  git --literal-pathspecs checkout -q HEAD -- ${shQuote(dir)} || rft_fail ${shQuote(`cannot restore ${dir}`)}`,
      `  git --literal-pathspecs clean -fdq -- ${shQuote(dir)} || rft_fail ${shQuote(`cannot clean ${dir}`)}`,
      'else',
      `  rm -rf -- ${shQuote(`./${dir}`)} || rft_fail ${shQuote(`cannot remove ${dir}`)}`,
      'fi',
    ]),
    '',
    '# 1c. Every file the test patch touches.',
    ...spec.protected_paths.files.map((file) => `rft_restore ${shQuote(file)}`),
    '',
    '# 2. The test patch.',
    `if [ -s ${shQuote(testPatch)} ]; then`,
    `  git apply -v -- ${shQuote(testPatch)} || { echo 'rft: the test patch did not apply'; exit ${EVAL_EXIT.testPatchFailed}; }`,
    'fi',
    '',
    '# 3. The tests.',
    ...(options.junitPipe
      ? [`[ -p ${shQuote(options.junitPath)} ] || { echo 'rft: the report pipe is missing'; exit ${EVAL_EXIT.noReportPipe}; }`]
      : [`rm -rf -- ${shQuote(options.junitPath)}`, `mkdir -p -- ${shQuote(posix.dirname(options.junitPath))}`]),
    `export ${env}`,
    `echo ${shQuote(options.startMarker)}`,
    'rft_t0=$SECONDS',
    `timeout -s KILL ${spec.timeout_s} bash -c ${shQuote(command)} </dev/null 2>&1`,
    'rft_rc=$?',
    // Opening the pipe read-write never blocks; closing it again ends the input of a reader that
    // is still waiting (pytest never wrote the report). `true` is a builtin: no process is needed,
    // so this works even when the tests left the container without free pids.
    ...(options.junitPipe ? [`true 3<>${shQuote(options.junitPath)} 2>/dev/null`] : []),
    // A newline first: a killed test run can leave its last line unterminated.
    `printf '\\n%s exit=%d elapsed=%d\\n' ${shQuote(options.endMarker)} "$rft_rc" "$((SECONDS - rft_t0))"`,
    'exit 0',
    '',
  ];
  return lines.join('\n');
}

function checkMarker(name: string, marker: string): void {
  if (!/^[A-Za-z0-9_.:=+-]{8,200}$/.test(marker)) {
    throw new Error(`${name} must be 8–200 characters of [A-Za-z0-9_.:=+-] (one line, no spaces)`);
  }
}

export interface EvalOutput {
  /** The start marker was printed: restore and test-patch steps are done and the tests started. */
  started: boolean;
  /** Output between the markers: the test command's combined stdout and stderr. */
  log: string;
  /** Exit code of the test command; null when the end marker is missing (the run was killed). */
  exitCode: number | null;
  /** Seconds the test command took (whole seconds), when the end marker is there. */
  elapsedS: number | null;
  /** Output before the start marker (restore and `git apply -v` messages), for error reports. */
  preamble: string;
}

/**
 * Split the eval script's output. The start marker is the first line equal to it (nothing the
 * tests print can come earlier); the end marker is the last matching line (the script prints the
 * real one after the test command has exited, so a test that learned the marker and printed it
 * early only moves text into the log). Markers stop accidents and pre-printed fakes, not code
 * that reads the script.
 */
export function parseEvalOutput(output: string, startMarker: string, endMarker: string): EvalOutput {
  const lines = output.replace(/\r\n/g, '\n').split('\n');
  const start = lines.indexOf(startMarker);
  if (start < 0) return { started: false, log: '', exitCode: null, elapsedS: null, preamble: output };
  const endLine = new RegExp(`^${escapeRegExp(endMarker)} exit=(\\d+) elapsed=(\\d+)$`);
  let end = -1;
  let match: RegExpExecArray | null = null;
  for (let i = lines.length - 1; i > start; i--) {
    match = endLine.exec(lines[i] ?? '');
    if (match) {
      end = i;
      break;
    }
  }
  const preamble = lines.slice(0, start).join('\n');
  // The script prints a newline before the end marker; the empty line it makes is not log.
  if (end > start + 1 && lines[end - 1] === '') end -= 1;
  if (end < 0 || !match) {
    return { started: true, log: lines.slice(start + 1).join('\n'), exitCode: null, elapsedS: null, preamble };
  }
  return {
    started: true,
    log: lines.slice(start + 1, end).join('\n'),
    exitCode: Number(match[1]),
    elapsedS: Number(match[2]),
    preamble,
  };
}

/**
 * Did the test command run out of time? `timeout -s KILL` makes it exit 137, as any SIGKILL would,
 * so the elapsed time decides (whole seconds, hence the one-second slack).
 */
export function ranOutOfTime(result: Pick<EvalOutput, 'exitCode' | 'elapsedS'>, timeoutS: number): boolean {
  return result.exitCode === 137 && result.elapsedS !== null && result.elapsedS >= timeoutS - 1;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
