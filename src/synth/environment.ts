import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import { imageNameFor } from '../tasks/image-name.js';
import { InstanceSchema, type Instance } from '../tasks/instance.js';
import type { TestStatusMap } from '../verify/pytest-log.js';
import type { EvalSpec } from '../verify/spec.js';
import type { Candidate, FunctionTarget } from './candidate.js';
import { runSpec, selectsByName, sourceTestFiles, sourceTestIds, taskTestCommand, withoutNameFilter } from './command.js';
import { diffKey } from './dedup.js';
import { unifiedDiff } from './diff.js';
import { judge, type Bounds, type Judgement } from './judge.js';
import type { CandidateRecord, TraceRecord } from './records.js';
import type { ChatEndpoint, Strategy } from './strategy.js';
import { installHarness, runTests, type TestRun } from './test-run.js';
import { Workspace, type Limits } from './workspace.js';

/** The settings every environment of one synth run shares (their fingerprint guards resume). */
export interface SynthSettings {
  seed: number;
  /** Tasks per environment at most. */
  limit: number;
  /** Candidates tried per environment at most (spread evenly over the strategies). */
  maxCandidates: number;
  strategies: readonly Strategy[];
  bounds: Bounds;
  timeoutS: number;
  pythonEnv: EvalSpec['python_env']['mode'];
  /** `instance`: trace the tests the source instance names; `all`: the repository's whole suite. */
  traceScope: 'instance' | 'all';
  limits: Limits;
  /** Name template of the task images (a preset: `synth`). */
  imageTemplate: string;
  llm?: ChatEndpoint;
  /** Writes the issue text (the strategies' issue-text module, or a template). */
  issueText: (input: IssueInput) => Promise<{ text: string; source: string }>;
}

export interface IssueInput {
  repo: string;
  failing: readonly string[];
  log: string;
  gold: string;
  candidate: Candidate;
  llm?: ChatEndpoint;
  seed: number;
}

/** One repository environment: a source instance whose image holds the repository at its base commit. */
export interface Environment {
  id: string;
  source: Instance;
  image: string;
}

export interface EnvironmentHooks {
  append: (record: TraceRecord | CandidateRecord) => void;
  /** True once the run's time is up: no new candidate is started (the ledger lets a later run go on). */
  stopping: () => boolean;
  onCandidate: (record: CandidateRecord) => void;
  labels: Record<string, string>;
}

/** A seed per environment, from the run's seed and the environment's id. */
export function environmentSeed(seed: number, envId: string): number {
  return createHash('sha256').update(`${seed}\0${envId}`).digest().readUInt32BE(0);
}

const passes = (statuses: TestStatusMap, id: string) => statuses[id] === 'PASSED' || statuses[id] === 'XFAIL';
const targetKey = (t: Pick<FunctionTarget, 'file' | 'name' | 'start_line'>) => `${t.file}\0${t.name}\0${t.start_line}`;

/**
 * Synthesizes the tasks of one environment in one container: the traced run (or its record, on
 * resume), then each candidate in the strategies' order — written, tested with only the tests
 * that execute its functions (once; a second time only when the first shows a failure), written
 * back. A valid candidate's image is made in a fresh container of the source image (the bug
 * committed in /testbed). Candidates already in the ledger are skipped, so a resumed environment
 * goes on where it stopped.
 */
export async function synthEnvironment(
  docker: Docker,
  env: Environment,
  settings: SynthSettings,
  done: { trace: TraceRecord | null; candidates: ReadonlyMap<number, CandidateRecord> },
  hooks: EnvironmentHooks,
): Promise<'done' | 'stopped'> {
  const ws = await Workspace.open(docker, env.image, settings.limits, hooks.labels);
  try {
    await installHarness(ws.box);
    const trace = done.trace ?? (await traceEnvironment(ws, env, settings));
    if (!done.trace) hooks.append(trace);
    const passBefore = new Set(trace.pass_before);
    const testsOf = new Map<string, string[]>();
    for (const [id, test] of Object.entries(trace.tests)) {
      if (!passBefore.has(id)) continue;
      for (const index of test.functions) {
        const fn = trace.functions[index];
        if (!fn) continue;
        const key = targetKey(fn);
        testsOf.set(key, [...(testsOf.get(key) ?? []), id]);
      }
    }
    const targets = trace.functions.filter((fn) => testsOf.has(targetKey(fn))).sort((a, b) => cmp(a.file, b.file) || a.start_line - b.start_line || cmp(a.name, b.name));
    const seed = environmentSeed(settings.seed, env.id);
    const seen = new Set([...done.candidates.values()].map((r) => r.key));
    let valid = [...done.candidates.values()].filter((r) => r.outcome.valid).length;
    let index = 0;
    const perStrategy = Math.ceil(settings.maxCandidates / Math.max(1, settings.strategies.length));
    const repo = ws.view();
    for (const strategy of settings.strategies) {
      if (valid >= settings.limit) break;
      for await (const candidate of strategy.candidates({ repo, targets, seed, limit: perStrategy, ...(settings.llm ? { llm: settings.llm } : {}) })) {
        const at = index++;
        if (done.candidates.has(at)) continue;
        if (valid >= settings.limit) break;
        if (hooks.stopping()) return 'stopped';
        const record = await tryCandidate(docker, ws, env, settings, trace, testsOf, candidate, at, seen, seed, hooks.labels);
        hooks.append(record);
        hooks.onCandidate(record);
        seen.add(record.key);
        if (record.outcome.valid) valid++;
      }
    }
  } finally {
    await ws.close();
  }
  return 'done';
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The traced run over the environment's tests, then a plain run of the same tests: a test counts as passing before only if both say so. */
async function traceEnvironment(ws: Workspace, env: Environment, settings: SynthSettings): Promise<TraceRecord> {
  const started = Date.now();
  const source = env.source;
  let spec: EvalSpec;
  if (settings.traceScope === 'all') {
    spec = runSpec(source, [], [], { timeout_s: settings.timeoutS, pythonEnv: settings.pythonEnv });
    if (selectsByName(source)) spec = { ...spec, test_cmd: withoutNameFilter(spec.test_cmd), test_args: [] };
  } else {
    const files = await ws.existing(sourceTestFiles(source));
    spec = runSpec(source, files, sourceTestIds(source), { timeout_s: settings.timeoutS, pythonEnv: settings.pythonEnv });
  }
  const traced = await runTests(ws.box, spec, { trace: true, knownIds: sourceTestIds(source) });
  if (!traced.trace) throw new Error(`${env.id}: the traced test run left no trace (${traced.error ?? `the runner wrote nothing; log ends: ${traced.log.slice(-400)}`})`);
  const plain = await runTests(ws.box, spec, { knownIds: Object.keys(traced.trace.tests) });
  const passBefore = Object.keys(traced.trace.tests).filter((id) => passes(traced.statuses, id) && passes(plain.statuses, id)).sort();
  if (passBefore.length === 0) throw new Error(`${env.id}: no test passed in the traced run (${traced.error ?? 'see its log'}): ${traced.log.slice(-600)}`);
  const functions = traced.trace.functions.map(([file, name, start, end]) => ({ file, name, start_line: start, end_line: Math.max(start, end) }));
  return { type: 'trace', env: env.id, pass_before: passBefore, tests: traced.trace.tests, functions, seconds: (Date.now() - started) / 1000 };
}

async function tryCandidate(
  docker: Docker,
  ws: Workspace,
  env: Environment,
  settings: SynthSettings,
  trace: TraceRecord,
  testsOf: ReadonlyMap<string, string[]>,
  candidate: Candidate,
  index: number,
  seen: ReadonlySet<string>,
  seed: number,
  labels: Record<string, string>,
): Promise<CandidateRecord> {
  const started = Date.now();
  const key = diffKey(candidate.edits);
  let runs = 0;
  const record = (outcome: CandidateRecord['outcome']): CandidateRecord => ({
    type: 'candidate',
    env: env.id,
    index,
    strategy: candidate.strategy,
    kind: candidate.kind,
    key,
    seconds: (Date.now() - started) / 1000,
    test_runs: runs,
    outcome,
  });
  const reject = (j: Extract<Judgement, { valid: false }>) => record({ valid: false, reason: j.reason, detail: j.detail });
  if (seen.has(key)) return reject({ valid: false, reason: 'duplicate', detail: 'an earlier candidate made the same change' });
  const ids = [...new Set(candidate.functions.flatMap((fn) => testsOf.get(targetKey(fn)) ?? []))].sort();
  if (ids.length === 0) return reject({ valid: false, reason: 'no_tests', detail: 'no passing test executes the changed functions' });
  for (const edit of candidate.edits) {
    if ((await ws.readFile(edit.path)) !== edit.before) return reject({ valid: false, reason: 'apply_failed', detail: `${edit.path} is not as the candidate expects` });
  }
  const files = [...new Set(ids.map((id) => trace.tests[id]!.file))].sort();
  const byName = selectsByName(env.source);
  // Every passing test the run will include: the whole files (or, for -k commands, the named tests).
  const considered = byName ? ids : trace.pass_before.filter((id) => files.includes(trace.tests[id]?.file ?? ''));
  const spec = runSpec(env.source, files, considered, { timeout_s: settings.timeoutS, pythonEnv: settings.pythonEnv });
  const after: TestRun[] = [];
  await ws.write(candidate.edits, 'after');
  try {
    after.push(await runTests(ws.box, spec, { knownIds: considered }));
    runs++;
    const first = judge(considered, after, settings.bounds);
    // A second run can only turn a valid first run into a flaky one.
    if (first.valid) {
      after.push(await runTests(ws.box, spec, { knownIds: considered }));
      runs++;
    }
  } finally {
    await ws.write(candidate.edits, 'before');
  }
  const judgement = judge(considered, after, settings.bounds);
  if (!judgement.valid) return reject(judgement);

  const gold = unifiedDiff(candidate.edits, 'reverse');
  const instanceId = `${env.id}.synth-${createHash('sha256').update(key).digest('hex').slice(0, 10)}`;
  const issue = await settings.issueText({
    repo: env.source.repo,
    failing: judgement.FAIL_TO_PASS,
    log: after[0]!.log,
    gold,
    candidate,
    seed,
    ...(settings.llm ? { llm: settings.llm } : {}),
  });
  const image = imageNameFor(instanceId, settings.imageTemplate);
  const builder = await Workspace.open(docker, env.image, settings.limits, labels);
  let baseCommit: string;
  try {
    baseCommit = await builder.commit(candidate.edits, `rft synth: ${candidate.strategy}/${candidate.kind}`);
    await builder.saveAs(image, env.image, { 'rft.synth.source': env.id, 'rft.synth.instance': instanceId });
  } finally {
    await builder.close();
  }
  const fn = candidate.functions[0]!;
  const instance: Instance = InstanceSchema.parse({
    instance_id: instanceId,
    repo: env.source.repo,
    base_commit: baseCommit,
    problem_statement: issue.text,
    hints_text: '',
    patch: gold,
    test_patch: '',
    FAIL_TO_PASS: judgement.FAIL_TO_PASS,
    PASS_TO_PASS: judgement.PASS_TO_PASS,
    version: env.source.version,
    created_at: null,
    environment_setup_commit: env.source.environment_setup_commit,
    test_cmd: taskTestCommand(env.source, files),
    synth: {
      strategy: candidate.strategy,
      kind: candidate.kind,
      file: fn.file,
      function: fn.name,
      validation_runs: runs,
      source_instance: env.source.instance_id,
      issue_text_source: issue.source,
      seed,
    },
  });
  return record({ valid: true, instance: instance as unknown as Record<string, unknown> });
}
