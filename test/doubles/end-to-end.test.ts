import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { applyPatch } from 'diff';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodeIndex } from '../../src/agent/code-index.js';
import { PythonSpanParser } from '../../src/agent/python-spans.js';
import type { Trajectory } from '../../src/agent/trajectory.js';
import { runTrajectory } from '../../src/agent/run.js';
import { OpenAiPolicy } from '../../src/policy/client.js';
import { SIM_BASE, SimModelSchema, skillFor, type SimModel } from '../../src/doubles/model.js';
import { startSimServer, type SimServer } from '../../src/doubles/server.js';
import { RecipeSchema } from '../../src/recipe/schema.js';
import type { Instance } from '../../src/tasks/instance.js';
import { parsePytestSummary } from '../../src/verify/pytest-log.js';
import { MINIGYM_DIR, minigymInstances, minigymRepoFiles } from '../helpers/minigym.js';

/**
 * The workflow agent (src/agent/workflow.ts) against the SIMULATED policy over real HTTP, on
 * every bundled task, with the repositories read from test/fixtures/minigym/repos (no Docker):
 * final patches are checked with `git apply` and pytest on the host.
 */

const fixed = (name: string, skill: number): SimModel => SimModelSchema.parse({ name, simulated: true, parent: null, skill: { default: skill } });
const PERFECT = fixed('sim-perfect', 1);
const HOPELESS = fixed('sim-hopeless', 0);
const CALIBRATION = [fixed('sim-s20', 0.2), fixed('sim-s50', 0.5), fixed('sim-s80', 0.8)];

const TASKS = minigymInstances();
let server: SimServer;
let parser: PythonSpanParser;
const repos = new Map<string, { files: Map<string, string>; index: CodeIndex }>();
const goldFiles = new Map<string, Map<string, string>>();

const repoOf = (task: Instance) => task.repo.split('/')[1]!;

/** The repository's files with a patch applied (by content), or null if it does not apply. */
function patched(files: ReadonlyMap<string, string>, patch: string): Map<string, string> | null {
  const out = new Map(files);
  for (const part of patch.split(/^(?=diff --git )/m).filter((p) => p.trim() !== '')) {
    const file = /^\+\+\+ b\/(.+)$/m.exec(part)?.[1];
    if (!file) return null;
    const result = applyPatch(out.get(file) ?? '', part);
    if (result === false) return null;
    out.set(file, result);
  }
  return out;
}

/** Resolved by content: the patch makes the source files exactly what the gold patch makes them. */
function matchesGold(task: Instance, patch: string): boolean {
  const after = patched(repos.get(repoOf(task))!.files, patch);
  const gold = goldFiles.get(task.instance_id)!;
  return after !== null && [...gold.keys()].every((file) => after.get(file) === gold.get(file));
}

const AGENT = RecipeSchema.shape.agent.parse({});

async function sample(task: Instance, model: SimModel, seed: number, temperature: number, protocol: 'json' | 'tools' = 'json'): Promise<Trajectory> {
  const { files, index } = repos.get(repoOf(task))!;
  return runTrajectory({
    ids: { run: 'sim-e2e', iteration: 0, instance_id: task.instance_id, sample_index: seed },
    seed,
    instance: task,
    files,
    index,
    parser,
    policy: new OpenAiPolicy({ baseUrl: server.url, model: model.name, apiKey: null, timeoutMs: 30_000, maxRetries: 3 }),
    agent: { ...AGENT, protocol },
    sampling: { temperature, top_p: 1 },
  });
}

interface TestRun {
  applied: boolean;
  statuses: Record<string, string>;
  log: string;
}

/** git apply the patch and the task's test patch to a fresh git copy of the repository, then pytest the test files. */
function runTests(task: Instance, patch: string): TestRun {
  const dir = mkdtempSync(path.join(tmpdir(), `rft-sim-${task.instance_id}-`));
  try {
    cpSync(path.join(MINIGYM_DIR, 'repos', repoOf(task)), dir, { recursive: true });
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', '-c', 'commit.gpgsign=false', ...args], { cwd: dir, encoding: 'utf8' });
    git('init', '-q');
    git('add', '-A');
    git('commit', '-qm', 'base');
    writeFileSync(path.join(dir, '.model.patch'), patch);
    writeFileSync(path.join(dir, '.test.patch'), task.test_patch);
    const apply = spawnSync('git', ['apply', '-v', '.model.patch'], { cwd: dir, encoding: 'utf8' });
    if (apply.status !== 0) return { applied: false, statuses: {}, log: apply.stderr };
    git('apply', '.test.patch');
    const testFiles = [...new Set([...task.test_patch.matchAll(/^\+\+\+ b\/(.+)$/gm)].map((m) => m[1]!))];
    const run = spawnSync('python3', ['-m', 'pytest', '-rA', '-p', 'no:cacheprovider', ...testFiles], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, PYTHONDONTWRITEBYTECODE: '1' },
      timeout: 120_000,
    });
    const log = `${run.stdout}\n${run.stderr}`;
    return { applied: true, statuses: parsePytestSummary(log), log };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const allPass = (task: Instance, run: TestRun) => task.FAIL_TO_PASS.every((id) => run.statuses[id] === 'PASSED');

beforeAll(async () => {
  parser = await PythonSpanParser.create();
  for (const task of TASKS) {
    const repo = repoOf(task);
    if (!repos.has(repo)) {
      const files = minigymRepoFiles(repo);
      repos.set(repo, { files, index: await CodeIndex.build(files, parser) });
    }
    goldFiles.set(task.instance_id, patched(repos.get(repo)!.files, task.patch)!);
  }
  server = await startSimServer({ models: [PERFECT, HOPELESS, ...CALIBRATION], tasks: TASKS });
});

afterAll(async () => {
  await server?.close();
});

describe('the workflow agent against the SIMULATED policy, on every bundled task', () => {
  it('at T=0 a model of skill 1.0 finishes every task with a patch that makes every FAIL_TO_PASS test pass', async () => {
    const before = server.requests.length;
    let calls = 0;
    for (const task of TASKS) {
      const trajectory = await sample(task, PERFECT, 1, 0);
      calls += trajectory.llm_calls;
      expect(trajectory.outcome, task.instance_id).toEqual({ status: 'finished', reason: expect.any(String) });
      expect(trajectory.patch).not.toBe('');
      expect(trajectory.calls.every((c) => c.invalid === null)).toBe(true);
      expect(matchesGold(task, trajectory.patch), task.instance_id).toBe(true);
      const run = runTests(task, trajectory.patch);
      expect(run.applied, run.log).toBe(true);
      for (const id of [...task.FAIL_TO_PASS, ...task.PASS_TO_PASS]) expect(run.statuses[id], `${task.instance_id} ${id}\n${run.log}`).toBe('PASSED');
    }
    // Every LLM call was one logged request to the server.
    const logged = server.requests.slice(before);
    expect(logged).toHaveLength(calls);
    expect(new Set(logged.map((r) => r.instance_id))).toEqual(new Set(TASKS.map((t) => t.instance_id)));
    expect(logged.every((r) => r.model === 'sim-perfect' && typeof r.seed === 'number')).toBe(true);
  });

  it('at T=0 a model of skill 0 finishes every task with a patch that applies but fails a FAIL_TO_PASS test', async () => {
    for (const task of TASKS) {
      const trajectory = await sample(task, HOPELESS, 1, 0);
      expect(trajectory.outcome.status, task.instance_id).toBe('finished');
      expect(trajectory.patch).not.toBe('');
      expect(matchesGold(task, trajectory.patch), task.instance_id).toBe(false);
      const run = runTests(task, trajectory.patch);
      expect(run.applied, run.log).toBe(true);
      expect(allPass(task, run), `${task.instance_id}: the wrong edit passed its tests\n${trajectory.patch}`).toBe(false);
    }
  });

  it('at T=0 sim-base resolves exactly the tasks where its skill is at least 0.5 (a third of them)', async () => {
    const resolved: string[] = [];
    for (const task of TASKS) {
      const trajectory = await sample(task, SIM_BASE, 3, 0);
      expect(trajectory.calls.every((c) => c.invalid === null)).toBe(true);
      if (trajectory.outcome.status === 'finished' && matchesGold(task, trajectory.patch)) resolved.push(task.instance_id);
    }
    expect(resolved).toEqual(TASKS.filter((t) => skillFor(SIM_BASE, t.instance_id) >= 0.5).map((t) => t.instance_id));
    expect(resolved).toHaveLength(3);
  });

  it('the tools protocol gives the same fixes as the json protocol, answering with tool calls', async () => {
    for (const task of TASKS) {
      const viaJson = await sample(task, PERFECT, 5, 0, 'json');
      const viaTools = await sample(task, PERFECT, 5, 0, 'tools');
      expect(viaTools.outcome.status, task.instance_id).toBe('finished');
      expect(viaTools.patch).toBe(viaJson.patch);
      expect(viaTools.transitions.map((t) => t.to)).toEqual(viaJson.transitions.map((t) => t.to));
      for (const call of viaTools.calls) {
        if (call.state === 'EditCode') expect(call.completion.content).toMatch(/^<replace>\n/);
        else expect(call.completion).toMatchObject({ content: null, tool_calls: [{ type: 'function' }] });
      }
    }
  });

  it('at T=1 sim-base sometimes solves a task and sometimes not, with invalid actions answered by retries, in both protocols', async () => {
    const trajectories: { task: Instance; trajectory: Trajectory; protocol: string }[] = [];
    for (const task of TASKS) {
      for (let seed = 0; seed < 8; seed++) {
        const protocol = seed % 2 === 0 ? 'json' : 'tools';
        trajectories.push({ task, trajectory: await sample(task, SIM_BASE, 100 + seed, 1, protocol), protocol });
      }
    }
    const resolved = trajectories.filter(({ task, trajectory }) => trajectory.outcome.status === 'finished' && matchesGold(task, trajectory.patch));
    expect(resolved.length).toBeGreaterThan(0);
    expect(resolved.length).toBeLessThan(trajectories.length);
    for (const protocol of ['json', 'tools']) {
      expect(resolved.some((r) => r.protocol === protocol), protocol).toBe(true);
      expect(trajectories.some((t) => t.protocol === protocol && !resolved.includes(t)), protocol).toBe(true);
    }
    // An invalid action, then a retry of the same state that the workflow accepted.
    const retried = trajectories.filter(({ trajectory }) =>
      trajectory.calls.some((call, i) => call.invalid !== null && trajectory.calls[i + 1]?.retry === true && trajectory.calls[i + 1]?.state === call.state),
    );
    expect(retried.length).toBeGreaterThan(0);
    expect(retried.some(({ trajectory }) => trajectory.calls.some((c, i) => c.invalid !== null && trajectory.calls[i + 1]?.invalid === null))).toBe(true);
    // Wandering: some trajectories search more than the single search a clean run needs.
    expect(trajectories.some(({ trajectory }) => trajectory.calls.filter((c) => c.state === 'SearchCode').length > 2)).toBe(true);
    // Success by content agrees with the tests on every distinct finished patch.
    const distinct = new Map<string, { task: Instance; patch: string }>();
    for (const { task, trajectory } of trajectories) {
      if (trajectory.outcome.status === 'finished' && trajectory.patch) distinct.set(`${task.instance_id}\n${trajectory.patch}`, { task, patch: trajectory.patch });
    }
    expect(distinct.size).toBeGreaterThan(TASKS.length);
    for (const { task, patch } of distinct.values()) {
      const run = runTests(task, patch);
      expect(run.applied, run.log).toBe(true);
      expect(allPass(task, run), `${task.instance_id}\n${patch}`).toBe(matchesGold(task, patch));
    }
  });
});

describe('calibration of the SIMULATED policy: at T=1 the resolve rate tracks the skill', () => {
  const SEEDS = 20;
  const observed = new Map<number, number>();

  it.each(CALIBRATION.map((m) => [m.name, m] as const))('%s', async (_name, model) => {
    let resolved = 0;
    for (const task of TASKS) {
      for (let seed = 0; seed < SEEDS; seed++) {
        const trajectory = await sample(task, model, 1000 + seed, 1, seed % 2 === 0 ? 'json' : 'tools');
        if (trajectory.outcome.status === 'finished' && matchesGold(task, trajectory.patch)) resolved++;
      }
    }
    const rate = resolved / (TASKS.length * SEEDS);
    const skill = model.skill.default;
    observed.set(skill, rate);
    process.stdout.write(`SIMULATED calibration: skill ${skill.toFixed(2)} → resolved ${rate.toFixed(3)} (${resolved}/${TASKS.length * SEEDS})\n`);
    // 180 trajectories: one standard error is at most 0.037.
    expect(Math.abs(rate - skill)).toBeLessThanOrEqual(0.1);
    for (const [other, otherRate] of observed) {
      if (other < skill) expect(otherRate).toBeLessThan(rate);
    }
  });
});
