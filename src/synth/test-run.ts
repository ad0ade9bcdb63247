import { randomBytes } from 'node:crypto';
import type { Sandbox } from '../sandbox/container.js';
import { mergeStatuses } from '../verify/grade.js';
import { rewriteIds } from '../verify/id-rewrite.js';
import { parseJunitXml } from '../verify/junit.js';
import type { TestStatusMap } from '../verify/pytest-log.js';
import { HOOK_SOURCE, parseHookResults } from '../verify/result-hook.js';
import { parseEvalOutput, ranOutOfTime, renderEvalScript, shQuote } from '../verify/eval-script.js';
import { RUNNERS } from '../verify/runners.js';
import type { EvalSpec } from '../verify/spec.js';
import { TRACE_ENV, TRACE_PLUGIN, TRACE_PLUGIN_SOURCE, TRACER_SOURCE, TraceOutputSchema, type TraceOutput } from './tracer.js';

/**
 * One run of a repository's tests inside a container that stays up between runs (the synthesis
 * validator applies, tests and reverts many candidates in one container). The same eval script
 * and the same result channels as verification (verify/run.ts: pytest's junit report, or the
 * result hook for Django and sympy), read from a file of a fresh random path per run instead of
 * a pipe: the code under test here is ours (a candidate bug), not a model's, so the pipe's
 * protection against forged reports is not needed.
 */
export interface TestRun {
  statuses: TestStatusMap;
  /** The tests ran out of time (and were killed). */
  timedOut: boolean;
  /** The runner ended by a signal or the script died: its results are not whole. */
  killed: boolean;
  /** Why nothing could be read, when the run did not start or handed over no results. */
  error: string | null;
  seconds: number;
  /** Present for a traced run. */
  trace?: TraceOutput;
  log: string;
}

const HOOK_DIR = '/tmp/rft-synth/hook';
const TRACE_DIR = '/tmp/rft-synth/trace';
const HARNESS_MARGIN_S = 60;

/** Puts the hook and the tracer in the container once. */
export async function installHarness(box: Sandbox): Promise<void> {
  await box.putFiles('/', [
    { name: `${HOOK_DIR.slice(1)}/sitecustomize.py`, content: HOOK_SOURCE, mode: 0o644 },
    { name: `${TRACE_DIR.slice(1)}/sitecustomize.py`, content: TRACER_SOURCE, mode: 0o644 },
    { name: `${TRACE_DIR.slice(1)}/${TRACE_PLUGIN}.py`, content: TRACE_PLUGIN_SOURCE, mode: 0o644 },
  ]);
}

/**
 * Runs `spec` in `box` (installHarness first). `trace` adds the tracer; `knownIds` helps read
 * pytest's junit ids back into node ids (junit.ts).
 */
export async function runTests(box: Sandbox, spec: EvalSpec, options: { trace?: boolean; knownIds?: readonly string[] } = {}): Promise<TestRun> {
  const started = Date.now();
  const token = randomBytes(10).toString('hex');
  const runner = RUNNERS[spec.parser];
  const resultPath = `/tmp/rft-synth/${token}/${runner.channel === 'junit' ? 'report.xml' : 'results.jsonl'}`;
  const tracePath = `/tmp/rft-synth/${token}/trace.json`;
  const traced: EvalSpec = options.trace
    ? {
        ...spec,
        test_cmd: [
          `PYTHONPATH=${TRACE_DIR}"\${PYTHONPATH:+:$PYTHONPATH}"`,
          `${TRACE_ENV}=${shQuote(tracePath)}`,
          ...(spec.parser === 'pytest' ? [`PYTEST_PLUGINS=${TRACE_PLUGIN}`] : []),
          spec.test_cmd,
        ].join(' '),
      }
    : spec;
  const markers = { startMarker: `RFT_START_${token}`, endMarker: `RFT_END_${token}` };
  const script = renderEvalScript(traced, { instance_id: 'synth' }, { junitPath: resultPath, ...(runner.channel === 'hook' ? { hookDir: HOOK_DIR } : {}), ...markers });
  await box.putFiles('/', [{ name: `tmp/rft-synth/${token}.sh`, content: script, mode: 0o755 }]);
  const run = await box.exec(['bash', '-c', `exec bash /tmp/rft-synth/${token}.sh 2>&1`], {
    timeoutMs: (spec.timeout_s + HARNESS_MARGIN_S) * 1000,
    maxOutputBytes: 4 * 1024 * 1024,
  });
  const seconds = (Date.now() - started) / 1000;
  const output = parseEvalOutput(run.output, markers.startMarker, markers.endMarker);
  const failed = (error: string): TestRun => ({ statuses: {}, timedOut: false, killed: true, error, seconds, log: output.log });
  if (run.timedOut) return { ...failed(`the harness gave up after ${spec.timeout_s + HARNESS_MARGIN_S} s`), timedOut: true };
  if (!output.started) return failed(`the eval script stopped (exit ${run.exitCode}): ${output.preamble.trim().split('\n').slice(-4).join(' | ')}`);
  const timedOut = ranOutOfTime(output, spec.timeout_s);
  const killed = output.exitCode === null || output.exitCode > 128;

  let trace: TraceOutput | undefined;
  if (options.trace) {
    const text = await box.readFile(tracePath, 256 * 1024 * 1024);
    if (text !== null) trace = TraceOutputSchema.parse(JSON.parse(text.toString('utf8')));
  }
  const report = await box.readFile(resultPath, 64 * 1024 * 1024);
  const reportText = report === null || report.length === 0 ? null : report.toString('utf8');
  const known = [...(options.knownIds ?? []), ...Object.keys(trace?.tests ?? {})];
  let trusted: TestStatusMap | null = null;
  if (reportText !== null) {
    if (runner.channel === 'hook') trusted = parseHookResults(reportText);
    else {
      try {
        trusted = parseJunitXml(reportText, [...new Set(known.map((id) => id.split('::')[0]!))], known);
      } catch {
        trusted = null;
      }
    }
  }
  const statuses = mergeStatuses(trusted === null ? null : rewriteIds(trusted, spec.id_rewrite), rewriteIds(runner.parseLog(output.log), spec.id_rewrite));
  const error = trusted === null && !timedOut ? `the test run handed over no results (exit ${output.exitCode ?? 'unknown'})` : null;
  await box.exec(['rm', '-rf', '--', `/tmp/rft-synth/${token}`, `/tmp/rft-synth/${token}.sh`], { timeoutMs: 30_000 });
  return { statuses, timedOut, killed, error, seconds, log: output.log, ...(trace ? { trace } : {}) };
}
