import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileContextBlock, issueBlock } from '../../src/agent/prompts.js';
import { systemPrompt } from '../../src/agent/actions.js';
import { TrajectorySchema, type Trajectory } from '../../src/agent/trajectory.js';
import { runLayout } from '../../src/loop/layout.js';
import { MAX_RETRY_AFTER_MS, OpenAiPolicy, type RetryInfo } from '../../src/policy/client.js';
import { FAULT_KINDS, TRANSIENT_FAULTS, startFaultFront, type FaultFront, type FaultKind } from '../../src/doubles/faults.js';
import { startSimServer, type SimServer } from '../../src/doubles/server.js';
import { PolicyInfraError, type PolicyRequest, type PolicyResponse } from '../../src/policy/types.js';
import { readRecords } from '../../src/store/ledger.js';
import { readTrajectories } from '../../src/store/trajectories.js';
import { rft } from '../cli/helpers.js';
import { MINIGYM_TASKS, minigymInstance, minigymInstances } from '../helpers/minigym.js';
import { simTrainerFinetune } from '../helpers/sim-trainer.js';
import { startRft } from '../loop/helpers.js';

/**
 * The policy endpoint misbehaving in every way a real one does, through the fault-injecting
 * front (src/doubles/faults.ts) placed before the SIMULATED policy server: the client retries
 * what can be retried, never takes a broken answer for the model's, and a run either gets the
 * very answers a healthy endpoint gives (so the same data, byte for byte) or stops incomplete
 * with nothing wrong recorded, and resumes.
 */

let sim: SimServer;
let front: FaultFront;

beforeAll(async () => {
  sim = await startSimServer({ models: [], tasks: minigymInstances() });
  front = await startFaultFront({ target: sim.url });
});
afterAll(async () => {
  await front?.close();
  await sim?.close();
});

// ---------------------------------------------------------------------------------------------
// Unit level: the policy client against the front

const searchRequest = (seed = 7, temperature = 1): PolicyRequest => ({
  messages: [
    { role: 'system', content: systemPrompt('SearchCode', 'json') },
    { role: 'user', content: `${issueBlock(minigymInstance('minigym__unitkit-101').problem_statement)}\n\n${fileContextBlock([])}` },
  ],
  seed,
  temperature,
  top_p: 1,
  max_tokens: 2000,
  json: true,
});

interface Recorded {
  policy: OpenAiPolicy;
  retries: RetryInfo[];
  sleeps: number[];
}

/** A client whose waits are recorded and skipped (so delays are checked without a clock). */
function client(options: { maxRetries: number; timeoutMs?: number; apiKey?: string | null; baseUrl?: string }): Recorded {
  const retries: RetryInfo[] = [];
  const sleeps: number[] = [];
  const policy = new OpenAiPolicy({
    baseUrl: options.baseUrl ?? front.url,
    model: 'sim-base',
    apiKey: options.apiKey ?? null,
    timeoutMs: options.timeoutMs ?? 5_000,
    maxRetries: options.maxRetries,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
    onRetry: (retry) => retries.push(retry),
  });
  return { policy, retries, sleeps };
}

/** Completion requests the front received since it was last configured. */
function completionRequests(): number {
  const events = front.events;
  let n = 0;
  for (let i = events.length - 1; i >= 0; i--) {
    if (events[i]!.index === null) continue;
    n += 1;
    if (events[i]!.index === 0) break;
  }
  return n;
}

describe('the policy client against the fault front', () => {
  let direct: PolicyResponse;
  beforeAll(async () => {
    direct = await client({ maxRetries: 0, baseUrl: sim.url }).policy.complete(searchRequest());
  });

  const failing = TRANSIENT_FAULTS.filter((kind) => kind !== 'slow');
  it.each(failing)('%s: retried, and the answer after it is the healthy endpoint\'s answer', async (kind) => {
    front.configure({ script: [kind, kind] });
    const before = front.injected[kind];
    const { policy, retries } = client({ maxRetries: 3, timeoutMs: kind === 'hang' ? 800 : 5_000 });
    const response = await policy.complete(searchRequest());
    expect(response.message).toEqual(direct.message);
    expect(response.usage).toEqual(direct.usage);
    expect(front.injected[kind] - before).toBe(2);
    // Two failed attempts, each retried, then the answer: three requests at the front.
    expect(completionRequests()).toBe(3);
    expect(retries.map((r) => r.attempt)).toEqual([1, 2]);
  });

  it('slow: an answer dribbled within the timeout is taken on the first attempt, unchanged', async () => {
    front.configure({ script: ['slow'], slowPieces: 10, slowDelayMs: 30 });
    const { policy, retries } = client({ maxRetries: 3 });
    const response = await policy.complete(searchRequest());
    expect(response.message).toEqual(direct.message);
    expect(retries).toEqual([]);
    expect(completionRequests()).toBe(1);
  });

  it.each(['garbage_text', 'wrong_shape', 'empty_choices'] as const)('%s: an infrastructure error, never a model answer', async (kind) => {
    // wrong_shape comes in two shapes, in turn: take both.
    for (let round = 0; round < (kind === 'wrong_shape' ? 2 : 1); round++) {
      front.configure({ script: [kind] });
      const { policy } = client({ maxRetries: 0 });
      const error = await policy.complete(searchRequest()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PolicyInfraError);
      expect((error as PolicyInfraError).status).toBeNull();
      expect((error as Error).message).toMatch(/not a chat completion|not JSON/);
      expect((error as Error).message).toMatch(/after retries \(1 attempt/);
    }
  });

  it('Retry-After is honoured: seconds, HTTP-date, retry delays of its own otherwise, capped when absurd', async () => {
    front.configure({ script: ['rate_limit', 'rate_limit_date', 'http_500', 'http_503', 'rate_limit'], retryAfterS: 3, retryAfterDateS: 5 });
    const { policy, retries, sleeps } = client({ maxRetries: 5 });
    // A second rate limit asks for an hour: cut to the cap, not waited for.
    const answer = policy.complete(searchRequest());
    await expect(answer).resolves.toMatchObject({ message: direct.message });
    expect(retries.map((r) => [r.status, r.retryAfter])).toEqual([
      [429, true],
      [429, true],
      [500, false],
      [503, false],
      [429, true],
    ]);
    expect(sleeps[0]).toBe(3_000);
    // An HTTP-date has whole seconds: 5 s ahead, read a moment later, is between 4 and 5 s.
    expect(sleeps[1]).toBeGreaterThan(3_000);
    expect(sleeps[1]).toBeLessThanOrEqual(5_000);
    // Exponential backoff with up to 25 % jitter: 3rd attempt 2 s, 4th 4 s.
    expect(sleeps[2]).toBeGreaterThanOrEqual(1_500);
    expect(sleeps[2]).toBeLessThanOrEqual(2_000);
    expect(sleeps[3]).toBeGreaterThanOrEqual(3_000);
    expect(sleeps[3]).toBeLessThanOrEqual(4_000);
    expect(sleeps[4]).toBe(3_000);

    front.configure({ script: ['rate_limit'], retryAfterS: 3600 });
    const capped = client({ maxRetries: 1 });
    await capped.policy.complete(searchRequest());
    expect(capped.sleeps).toEqual([MAX_RETRY_AFTER_MS]);
  });

  it('with the default sleep, the Retry-After wait ends and the retry gets the answer', async () => {
    front.configure({ script: ['rate_limit'], retryAfterS: 1 });
    const retries: RetryInfo[] = [];
    const policy = new OpenAiPolicy({ baseUrl: front.url, model: 'sim-base', apiKey: null, timeoutMs: 5_000, maxRetries: 1, onRetry: (r) => retries.push(r) });
    const response = await policy.complete(searchRequest());
    expect(response.message).toEqual(direct.message);
    expect(retries).toMatchObject([{ attempt: 1, status: 429, delayMs: 1_000, retryAfter: true }]);
    expect(completionRequests()).toBe(2);
  });

  it('an endpoint that stays down: every attempt made, then one infrastructure error', async () => {
    front.configure({ downAfter: 0 });
    const before = front.injected.down;
    const { policy, retries } = client({ maxRetries: 4 });
    const error = await policy.complete(searchRequest()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PolicyInfraError);
    expect((error as Error).message).toMatch(/connection failed.* after retries \(5 attempts/);
    expect(front.injected.down - before).toBe(5);
    expect(retries).toHaveLength(4);
  });

  it('a refusal (401) is not retried, and its message keeps the status but not the key the server echoed', async () => {
    const key = 'fake-policy-key-Zq81rTx0';
    front.configure({ script: ['auth_echo', 'auth_echo'] });
    const { policy, retries } = client({ maxRetries: 3, apiKey: key });
    const error = await policy.complete(searchRequest()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PolicyInfraError);
    expect((error as PolicyInfraError).status).toBe(401);
    expect((error as Error).message).toMatch(/HTTP 401: .*Incorrect API key provided: \*\*\*.*\(not retried\)/);
    expect(`${(error as Error).message}\n${(error as Error).stack}\n${JSON.stringify(error)}`).not.toContain(key);
    expect(retries).toEqual([]);
    expect(completionRequests()).toBe(1);
  });

  it('the schedule is seeded: the same seed spoils the same requests with the same kinds, and every kind comes up', async () => {
    const pattern = async (seed: number): Promise<(FaultKind | null)[]> => {
      front.configure({ rate: 0.5, seed, kinds: TRANSIENT_FAULTS.filter((k) => k !== 'hang' && k !== 'slow') });
      const start = front.events.length;
      const { policy } = client({ maxRetries: 40 });
      for (let i = 0; i < 8; i++) await policy.complete(searchRequest(100 + i));
      return front.events.slice(start).map((e) => e.fault);
    };
    const a = await pattern(11);
    const b = await pattern(11);
    const c = await pattern(12);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(new Set(a.filter((f) => f !== null))).toEqual(new Set(TRANSIENT_FAULTS.filter((k) => k !== 'hang' && k !== 'slow')));
  });
});

// ---------------------------------------------------------------------------------------------
// Whole runs through the front

const RUN_TASKS = ['minigym__iniform-201', 'minigym__unitkit-101'];

function writeRecipe(name: string, retries: number): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-faults-recipe-'));
  writeFileSync(path.join(dir, 'ids.txt'), `${RUN_TASKS.join('\n')}\n`);
  const file = path.join(dir, 'recipe.yaml');
  writeFileSync(
    file,
    `name: ${name}
seed: 5
iterations: 1
tasks:
  train: {path: ${MINIGYM_TASKS}, ids_file: ids.txt}
sandbox: {memory: 512m, pids: 256, test_timeout_s: 60, concurrency: 2}
policy: {kind: openai, base_url: ${front.url}, model: sim-base, concurrency: 6, retries: ${retries}, request_timeout_s: 2}
sampling: {samples_per_task: 3, instances_in_flight: 2}
select: {cap: 2}
${simTrainerFinetune()}`,
  );
  return file;
}

/** Every file of the iteration-0 dataset folder, by name. */
function datasets(runDir: string): Map<string, string> {
  const dir = runLayout.datasetDir(runDir, 0, 2);
  return new Map(readdirSync(dir).sort().map((name) => [name, readFileSync(path.join(dir, name), 'utf8')]));
}

function trajectories(runDir: string): Trajectory[] {
  const file = runLayout.trajectories(runDir, 0);
  return existsSync(file) ? [...readTrajectories(file)] : [];
}

/** What a trajectory is, without its timings. */
function essence(t: Trajectory): unknown {
  return { id: `${t.instance_id}#${t.sample_index}`, seed: t.seed, outcome: t.outcome, patch: t.patch, calls: t.calls.map((c) => ({ state: c.state, completion: c.completion, invalid: c.invalid })) };
}

async function runHealthy(recipe: string, runs: string): Promise<{ datasets: Map<string, string>; trajectories: Map<string, unknown> }> {
  front.configure({});
  const result = await startRft(['run', recipe, '--runs-dir', runs]).done;
  expect(result.stderr).not.toMatch(/rft: |Error/);
  expect(result.code).toBe(0);
  expect(result.stdout).toMatch(/run complete/);
  const runDir = path.join(runs, path.basename(readdirSync(runs)[0]!));
  const recorded = trajectories(runDir);
  expect(recorded).toHaveLength(RUN_TASKS.length * 3);
  return { datasets: datasets(runDir), trajectories: new Map(recorded.map((t) => [`${t.instance_id}#${t.sample_index}`, essence(t)])) };
}

describe('rft run through the fault front', () => {
  it('a high fault rate with retries enough: the run completes with the datasets of a fault-free run, byte for byte', async () => {
    const recipe = writeRecipe('faults-retried', 16);
    const clean = await runHealthy(recipe, mkdtempSync(path.join(tmpdir(), 'rft-faults-clean-')));

    const runs = mkdtempSync(path.join(tmpdir(), 'rft-faults-noisy-'));
    const before = { ...front.injected };
    front.configure({ rate: 0.45, seed: 2024, kinds: TRANSIENT_FAULTS, retryAfterS: 1, retryAfterDateS: 1, slowPieces: 6, slowDelayMs: 40 });
    const result = await startRft(['run', recipe, '--runs-dir', runs]).done;
    const injected = Object.fromEntries(FAULT_KINDS.map((kind) => [kind, front.injected[kind] - before[kind]])) as Record<FaultKind, number>;
    console.log(`faults injected in the noisy run: ${JSON.stringify(injected)}`);
    expect(result.stderr).not.toMatch(/rft: |Error/);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/run complete/);
    for (const kind of TRANSIENT_FAULTS) expect({ kind, injected: injected[kind] > 0 }).toEqual({ kind, injected: true });
    expect(injected.auth_echo).toBe(0);

    const runDir = path.join(runs, 'faults-retried');
    const noisy = datasets(runDir);
    expect([...noisy.keys()]).toEqual([...clean.datasets.keys()]);
    for (const [file, text] of noisy) expect({ file, text }).toEqual({ file, text: clean.datasets.get(file) });
    // Not only the data: every trajectory, call by call, is the fault-free one.
    const recorded = trajectories(runDir);
    expect(recorded).toHaveLength(RUN_TASKS.length * 3);
    for (const t of recorded) expect(essence(t)).toEqual(clean.trajectories.get(`${t.instance_id}#${t.sample_index}`));
  });

  it('an endpoint that goes down: infrastructure errors counted apart, never recorded; the run says it is incomplete; resume completes it', async () => {
    const recipe = writeRecipe('faults-down', 1);
    const clean = await runHealthy(recipe, mkdtempSync(path.join(tmpdir(), 'rft-faults-down-clean-')));

    const runs = mkdtempSync(path.join(tmpdir(), 'rft-faults-down-'));
    const runDir = path.join(runs, 'faults-down');
    const downBefore = front.injected.down;
    front.configure({ downAfter: 12 });
    const first = await startRft(['run', recipe, '--runs-dir', runs]).done;
    expect(front.injected.down - downBefore).toBeGreaterThan(0);
    expect(first.code).toBe(1);
    const lost = /iteration 0: (\d+) samples and (\d+) verifications hit infrastructure errors/.exec(first.stdout);
    expect(lost, first.stdout).not.toBeNull();
    expect(Number(lost![1])).toBeGreaterThan(0);
    expect(first.stdout).toMatch(/run incomplete .*; continue with: rft resume .*faults-down/);
    expect(first.stderr).not.toMatch(/rft: /);

    // Nothing the endpoint spoiled is in the data: what is recorded is exactly what a healthy endpoint gave.
    const partial = trajectories(runDir);
    expect(partial.length).toBe(RUN_TASKS.length * 3 - Number(lost![1]));
    for (const t of partial) {
      expect(t.outcome).not.toMatchObject({ fault: 'infrastructure' });
      expect(essence(t)).toEqual(clean.trajectories.get(`${t.instance_id}#${t.sample_index}`));
    }
    expect(readFileSync(runLayout.trajectories(runDir, 0), 'utf8')).not.toMatch(/infrastructure/);
    expect(existsSync(runLayout.datasetDir(runDir, 0, 2))).toBe(false);
    const status = rft(['status', runDir]);
    expect(status.status).toBe(0);
    expect(status.stdout).toMatch(/not complete/);
    // rft has exited: nothing holds the run's lock, so the phase is stopped, not running.
    expect(status.stdout).toMatch(new RegExp(`iter-0/sample\\s+stopped\\s+${partial.length} trajectories`));

    front.configure({});
    const resumed = await startRft(['resume', runDir]).done;
    expect(resumed.stderr).not.toMatch(/rft: /);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/run complete/);
    const final = datasets(runDir);
    for (const [file, text] of final) expect({ file, text }).toEqual({ file, text: clean.datasets.get(file) });
    expect([...final.keys()]).toEqual([...clean.datasets.keys()]);
    const all = trajectories(runDir);
    expect(all).toHaveLength(RUN_TASKS.length * 3);
    // What was recorded before the endpoint went down was kept, not sampled again.
    expect(all.slice(0, partial.length).map(essence)).toEqual(partial.map(essence));
  });
});
