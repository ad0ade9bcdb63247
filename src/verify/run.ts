import { randomBytes } from 'node:crypto';
import type Docker from 'dockerode';
import { DiskLimitExceededError, LABEL, Sandbox, type ExecResult } from '../sandbox/container.js';
import type { Instance } from '../tasks/instance.js';
import { MODEL_PATCH_PATH, parseApplyOutput, renderApplyScript } from './apply-script.js';
import { DEFAULT_TEST_PATCH_PATH, EVAL_EXIT, parseEvalOutput, PYTHON_ENV_LINE, ranOutOfTime, renderEvalScript } from './eval-script.js';
import { gradeTests, mergeStatuses } from './grade.js';
import { fileOfTestId, parseJunitXml } from './junit.js';
import { normalizePatch, patchFileChanges, patchHash } from './patch.js';
import { rewriteIds } from './id-rewrite.js';
import type { TestStatusMap } from './pytest-log.js';
import { HOOK_SOURCE, parseHookResults } from './result-hook.js';
import { RUNNERS } from './runners.js';
import { specHash, type EvalSpec } from './spec.js';
import { detectTampering } from './tampering.js';
import { VerdictSchema, type Verdict } from './verdict.js';

/** Where a verification runs: the engine, the instance's image, the limits and the run's labels. */
export interface VerifyContext {
  docker: Docker;
  imageFor: (instance: Instance) => string;
  /** `diskBytes` bounds what one verification may write in its container (default DEFAULT_VERIFY_DISK_BYTES). */
  limits: { memoryBytes: number; cpus: number; pids: number; diskBytes?: number };
  /** Labels every container of this verification carries (rft.run, rft.iteration, …). */
  labels: Record<string, string>;
  /** Cap on the stored log (head and tail are kept). */
  maxLogBytes?: number;
}

export interface VerifyResult {
  verdict: Verdict;
  /** The test run's output (capped), for the run's logs; '' when nothing ran. */
  log: string;
}

/** Extra time the harness allows around the test command before it calls the run an infrastructure error. */
const HARNESS_MARGIN_S = 120;

/** Runs a script with stderr into stdout, so its lines (and our markers) arrive whole and in order. */
const ONE_STREAM = (script: string): string[] => ['bash', '-c', `exec bash ${script} 2>&1`];
const APPLY_TIMEOUT_MS = 120_000;

/** What the tests of one verification may write to the container's filesystem unless the context says otherwise. */
export const DEFAULT_VERIFY_DISK_BYTES = 4 * 1024 ** 3;
/** The largest junit report read; a bigger one counts as no report. */
const MAX_REPORT_BYTES = 64 * 1024 * 1024;
/** How long the report reader may take to finish once the tests are over and the pipe was closed. */
const REPORT_GRACE_MS = 10_000;

/**
 * Verifies one patch on one instance in a fresh container, by SWE-bench's rules (design §4):
 * empty → `empty_patch`; three ways to apply; the test infrastructure put back and the test patch
 * applied; the tests run under a timeout; results read from pytest's junit report; graded.
 * Harness failures are `error` verdicts, never exceptions, so a caller can record them and retry
 * on resume. `runEmpty` runs the tests even for an empty patch (gold validation).
 *
 * The report never rests in a file the tests could rewrite. Its path (random per run) is a named
 * pipe, and a second command in the container, started before the tests, copies what comes
 * through it straight out to the harness. pytest writes the report at the end of its session and
 * closes it; that ends the copy, so code under test that writes the path afterwards (an atexit
 * hook) finds no reader and hangs until the timeout, and one that writes it earlier (every *.xml
 * under /tmp) takes pytest's place and leaves pytest hanging at the end the same way; one that
 * holds the pipe open while pytest writes gets its bytes mixed into the report, which then does
 * not parse. A test run that ends by a signal (its runner killed) is never resolved. Code in the
 * test process can still do anything pytest can (rewrite its reports in memory, say): this
 * stops the cheap tricks, not an adversary who targets this harness.
 */
export async function verifyPatch(
  ctx: VerifyContext,
  instance: Instance,
  spec: EvalSpec,
  rawPatch: string,
  options: { runEmpty?: boolean } = {},
): Promise<VerifyResult> {
  const started = Date.now();
  const patch = normalizePatch(rawPatch);
  const base = {
    instance_id: instance.instance_id,
    patch_hash: patchHash(patch),
    spec_hash: specHash(spec),
    tests: {},
    log_truncated: false,
  };
  const finish = (fields: Partial<Verdict> & Pick<Verdict, 'outcome'>, log = ''): VerifyResult => ({
    verdict: VerdictSchema.parse({
      reason: null,
      apply_method: null,
      test_exit_code: null,
      report: null,
      ...base,
      ...fields,
      duration_ms: Date.now() - started,
      created_at: new Date().toISOString(),
    }),
    log,
  });

  if (patch === '' && !options.runEmpty) return finish({ outcome: 'empty_patch' });
  const touchesGit = patchFileChanges(patch).some((c) => [c.oldPath, c.newPath].some((p) => p !== null && p.split('/').includes('.git')));
  if (touchesGit) return finish({ outcome: 'apply_failed', reason: 'the patch touches .git, which is never applied' });

  let box: Sandbox | null = null;
  let applyMethod: Verdict['apply_method'] = null;
  try {
    box = await Sandbox.start(ctx.docker, {
      image: ctx.imageFor(instance),
      labels: { ...ctx.labels, [LABEL.instance]: instance.instance_id, [LABEL.purpose]: 'verify' },
      ...ctx.limits,
      diskBytes: ctx.limits.diskBytes ?? DEFAULT_VERIFY_DISK_BYTES,
    });
    const token = randomBytes(12).toString('hex');
    const reportDir = `/tmp/rft-${token}`;
    const runner = RUNNERS[spec.parser];
    const junitPath = `${reportDir}/${runner.channel === 'junit' ? 'report.xml' : 'results.jsonl'}`;
    const hookDir = runner.channel === 'hook' ? `${reportDir}/hook` : undefined;
    const markers = { startMarker: `RFT_START_${token}`, endMarker: `RFT_END_${token}` };
    await box.putFiles('/', [
      { name: MODEL_PATCH_PATH.slice(1), content: patch },
      { name: DEFAULT_TEST_PATCH_PATH.slice(1), content: normalizePatch(instance.test_patch) },
      { name: 'tmp/rft/apply.sh', content: renderApplyScript(), mode: 0o755 },
      { name: 'tmp/rft/eval.sh', content: renderEvalScript(spec, instance, { junitPath, junitPipe: true, ...(hookDir ? { hookDir } : {}), ...markers }), mode: 0o755 },
      ...(hookDir ? [{ name: `${hookDir.slice(1)}/sitecustomize.py`, content: HOOK_SOURCE, mode: 0o644 }] : []),
    ]);

    if (patch !== '') {
      const applied = await box.exec(ONE_STREAM('/tmp/rft/apply.sh'), { timeoutMs: APPLY_TIMEOUT_MS });
      const method = parseApplyOutput(applied.output);
      if (method === null) return finish({ outcome: 'error', reason: `applying the patch did not finish: ${tail(applied.output)}` });
      if (method === 'failed') return finish({ outcome: 'apply_failed', reason: `no method applied the patch: ${tail(applied.output)}` });
      applyMethod = method;
    }

    const pipe = await box.exec(['bash', '-c', 'mkdir -p -- "$1" && mkfifo -m 600 -- "$2" 2>&1', 'rft', reportDir, junitPath], { timeoutMs: 30_000 });
    if (pipe.exitCode !== 0) return finish({ outcome: 'error', reason: `could not make the report pipe: ${tail(pipe.output)}`, apply_method: applyMethod });
    // Started before the tests and not awaited yet: it copies the report out as pytest writes it.
    const reader: Promise<ExecResult | Error> = box
      .exec(['bash', '-c', 'exec cat -- "$1" 2>/dev/null', 'rft', junitPath], {
        timeoutMs: (spec.timeout_s + HARNESS_MARGIN_S) * 1000,
        maxOutputBytes: MAX_REPORT_BYTES,
      })
      .catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));

    const run = await box.exec(ONE_STREAM('/tmp/rft/eval.sh'), {
      timeoutMs: (spec.timeout_s + HARNESS_MARGIN_S) * 1000,
      maxOutputBytes: ctx.maxLogBytes ?? 2 * 1024 * 1024,
    });
    if (run.timedOut) return finish({ outcome: 'error', reason: `the harness gave up after ${spec.timeout_s + HARNESS_MARGIN_S} s`, apply_method: applyMethod });
    const output = parseEvalOutput(run.output, markers.startMarker, markers.endMarker);
    const pythonEnv = (PYTHON_ENV_LINE.exec(output.preamble)?.[1] as 'conda' | 'system' | undefined) ?? null;
    if (!output.started) {
      // The task's own test patch does not apply to its repository: no patch can ever be graded
      // on it. A final verdict (retrying changes nothing), blamed on the task, not the model.
      if (run.exitCode === EVAL_EXIT.testPatchFailed) {
        return finish({ outcome: 'invalid_task', reason: `the test patch did not apply: ${tail(output.preamble)}`, apply_method: applyMethod, python_env: pythonEnv }, run.output);
      }
      const why = run.exitCode === EVAL_EXIT.noPythonEnv ? 'the Python environment could not be activated' : `the eval script stopped (exit ${run.exitCode})`;
      return finish({ outcome: 'error', reason: `${why}: ${tail(output.preamble)}`, apply_method: applyMethod, python_env: pythonEnv }, run.output);
    }
    if (ranOutOfTime(output, spec.timeout_s)) {
      return finish(
        { outcome: 'timeout', reason: `the tests ran past ${spec.timeout_s} s and were killed`, apply_method: applyMethod, log_truncated: run.truncated, python_env: pythonEnv },
        output.log,
      );
    }
    // The eval script closed the pipe after the tests: the reader is done, unless something the
    // tests left behind still holds the pipe open (then there is no report).
    const report = await Promise.race([reader, new Promise<null>((resolve) => setTimeout(() => resolve(null), REPORT_GRACE_MS).unref())]);
    if (report instanceof DiskLimitExceededError) throw report;
    if (report instanceof Error) return finish({ outcome: 'error', reason: `reading the test report failed: ${report.message}`, apply_method: applyMethod });
    const listed = [...instance.FAIL_TO_PASS, ...instance.PASS_TO_PASS];
    const reportText = report === null || report.truncated || report.output === '' ? null : report.output;
    const trusted =
      runner.channel === 'junit'
        ? readJunit(reportText, [...spec.test_files, ...listed.map(fileOfTestId)], listed)
        : reportText === null
          ? null
          : parseHookResults(reportText);
    const statuses = mergeStatuses(
      trusted === null ? null : rewriteIds(trusted, spec.id_rewrite),
      rewriteIds(runner.parseLog(output.log), spec.id_rewrite),
    );
    const junit = trusted;
    const graded = gradeTests({ failToPass: instance.FAIL_TO_PASS, passToPass: instance.PASS_TO_PASS, statuses });
    // Killed (no end marker: the script itself died) or ended by a signal (the runner was killed):
    // the run did not finish, whatever report it left.
    const killed = output.exitCode === null || output.exitCode > 128;
    const killedNote = killed ? `the test run was killed before it finished (exit ${output.exitCode ?? 'unknown'}); ` : '';
    const resolved = graded.resolved && !killed;
    const tampering = detectTampering({ patch, repo: instance.repo, spec, log: output.log, tests: statuses });
    return finish(
      {
        outcome: resolved ? 'resolved' : 'unresolved',
        ...(tampering ? { tampering } : {}),
        reason: resolved
          ? null
          : `${killedNote}${junit === null ? (runner.channel === 'junit' ? 'pytest wrote no report; ' : 'the test process handed over no results; ') : ''}${graded.reason ?? 'every listed test passed'}`,
        apply_method: applyMethod,
        test_exit_code: output.exitCode,
        tests: statuses,
        report: graded.report,
        log_truncated: run.truncated,
        python_env: pythonEnv,
      },
      output.log,
    );
  } catch (err) {
    // Filling the disk once the patch is in is the tests' doing (the model's patch), not the
    // harness's: nothing passed, every listed test counts as failed.
    if (err instanceof DiskLimitExceededError && (applyMethod !== null || patch === '')) {
      const nothing = gradeTests({ failToPass: instance.FAIL_TO_PASS, passToPass: instance.PASS_TO_PASS, statuses: {} });
      return finish({ outcome: 'unresolved', reason: `the tests filled the disk: ${err.message}`, apply_method: applyMethod, report: nothing.report });
    }
    return finish({ outcome: 'error', reason: `infrastructure: ${(err as Error).message}` });
  } finally {
    await box?.remove().catch(() => {});
  }
}

/** A report cut off or mangled (the run was killed mid-write) says nothing: every test counts as missing. */
function readJunit(xml: string | null, knownFiles: string[], listed: readonly string[]): TestStatusMap | null {
  if (xml === null) return null;
  try {
    return parseJunitXml(xml, [...new Set(knownFiles)], listed);
  } catch {
    return null;
  }
}

function tail(text: string, lines = 6): string {
  return text.trim().split('\n').slice(-lines).join(' | ').slice(0, 800);
}
