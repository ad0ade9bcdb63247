import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RUN_DIR_LABEL } from '../../src/loop/gc.js';
import { LABEL } from '../../src/sandbox/container.js';
import { connectEngine, dockerClient } from '../../src/sandbox/engine.js';
import { readRecords } from '../../src/store/ledger.js';
import { processStartTicks, type LockInfo } from '../../src/store/lock.js';
import { startSimServer } from '../../src/doubles/server.js';
import { imageNameFor } from '../../src/tasks/image-name.js';
import { isFinal, VerdictSchema, verdictKeyOf, type Verdict } from '../../src/verify/verdict.js';
import { RFT_BIN, ROOT } from '../cli/helpers.js';
import { MINIGYM_DIR, MINIGYM_TASKS, minigymInstances } from '../helpers/minigym.js';
import { simTrainerFinetune } from '../helpers/sim-trainer.js';

/**
 * Docker faults, on a SECOND dockerd that this file starts for itself (its own socket, data
 * root, exec root and pid file, in a temp folder) with the bundled images copied into it from
 * the main engine (save → load). The engine these tests restart, whose images they remove and
 * whose containers they kill and collect is that one only: test files running at the same time
 * on the main engine (vitest runs files in parallel) never see any of it. The main engine is
 * only read (the image export).
 */

const TASK = 'minigym__iniform-201';
const IMAGE = imageNameFor(TASK, 'swebench');
const BASE_IMAGE = 'rft-base:bookworm';

// ---- a private engine ----------------------------------------------------------------------

class PrivateEngine {
  readonly socket: string;
  readonly url: string;
  readonly docker: Docker;
  private readonly pidFile: string;
  private readonly log: string;
  private child: ChildProcess | null = null;

  constructor(readonly dir: string) {
    this.socket = path.join(dir, 'docker.sock');
    this.url = `unix://${this.socket}`;
    this.pidFile = path.join(dir, 'docker.pid');
    this.log = path.join(dir, 'dockerd.log');
    this.docker = dockerClient(this.url);
  }

  private get execRoot(): string {
    return path.join(this.dir, 'exec');
  }

  private get containerdPidFile(): string {
    return path.join(this.execRoot, 'containerd', 'containerd.pid');
  }

  /** Starts dockerd the way scripts/setup-docker.sh does (no bridge, no iptables; stale pid files dropped), on this folder. */
  async start(): Promise<void> {
    dropStalePidFile(this.pidFile, 'dockerd');
    dropStalePidFile(this.containerdPidFile, 'containerd');
    const out = openSync(this.log, 'a');
    const args = ['--bridge=none', '--iptables=false', '--ip-masq=false', '-H', this.url, '--data-root', path.join(this.dir, 'data'), '--exec-root', this.execRoot, '--pidfile', this.pidFile];
    const child = spawn('dockerd', args, { stdio: ['ignore', out, out] });
    closeSync(out);
    this.child = child;
    // Should the test process end without afterAll (a crash, a timeout), the daemon goes with it.
    const orphaned = () => child.kill('SIGTERM');
    process.once('exit', orphaned);
    child.once('exit', () => process.off('exit', orphaned));
    let exited = false;
    child.once('exit', () => (exited = true));
    child.once('error', () => (exited = true));
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`the test's dockerd exited at start: ${tail(this.log)}`);
      if (await this.docker.ping().then(() => true, () => false)) return;
      await sleep(200);
    }
    throw new Error(`the test's dockerd did not answer within 60 s: ${tail(this.log)}`);
  }

  /** SIGKILLs dockerd, as a crash would; its containerd follows it (parent-death signal), the containers' shims live on. */
  async kill(): Promise<void> {
    const containerd = readPid(this.containerdPidFile);
    await this.signal('SIGKILL');
    // A dockerd started while the old containerd is still dying would attach to it and fail.
    if (containerd !== null) await waitGone(containerd, 20_000);
  }

  /** Removes every container, stops dockerd and its containerd, deletes the folder. */
  async stop(): Promise<void> {
    const listed = await this.docker.listContainers({ all: true }).catch(() => []);
    await Promise.all(listed.map((c) => this.docker.getContainer(c.Id).remove({ force: true }).catch(() => {})));
    await this.signal('SIGTERM');
    const containerdPid = readPid(this.containerdPidFile);
    if (containerdPid !== null && commOf(containerdPid) === 'containerd') {
      process.kill(containerdPid, 'SIGTERM');
      await waitGone(containerdPid, 20_000);
    }
    spawnSync('umount', ['-R', path.join(this.dir, 'data')], { stdio: 'ignore' });
    rmSync(this.dir, { recursive: true, force: true, maxRetries: 3 });
  }

  private async signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await Promise.race([gone, sleep(30_000)]);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await gone;
    }
  }
}

function readPid(file: string): number | null {
  try {
    const text = readFileSync(file, 'utf8').trim();
    return /^\d+$/.test(text) ? Number(text) : null;
  } catch {
    return null;
  }
}

/** The command name of a live process; null when there is none (or only a zombie, which some init processes never reap). */
function commOf(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return null;
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

/** As setup-docker.sh: a pid file whose process is not the daemon it names is left by a killed daemon. */
function dropStalePidFile(file: string, expected: string): void {
  if (!existsSync(file)) return;
  const pid = readPid(file);
  if (pid === null || commOf(pid) !== expected) rmSync(file, { force: true });
}

async function waitGone(pid: number, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline && commOf(pid) !== null) await sleep(100);
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-15).join('\n');
  } catch {
    return '(no log)';
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** docker save on the main engine | docker load on the private one. */
async function copyImage(from: Docker, to: Docker, name: string): Promise<void> {
  const tar = await from.getImage(name).get();
  const loaded = await to.loadImage(tar);
  await new Promise<void>((resolve, reject) => to.modem.followProgress(loaded, (err: Error | null) => (err ? reject(err) : resolve())));
  await to.getImage(name).inspect();
}

// ---- rft against it --------------------------------------------------------------------------

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function startRft(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<Finished> } {
  const child = spawn(process.execPath, [RFT_BIN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<Finished>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done };
}

/** One task, 3 samples, one iteration, no eval: sampling and verification on the private engine. */
function writeRecipe(name: string, engineUrl: string, policyUrl: string | null = null): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-fault-recipe-'));
  writeFileSync(path.join(dir, 'ids.txt'), `${TASK}\n`);
  writeFileSync(
    path.join(dir, 'recipe.yaml'),
    `name: ${name}
seed: 1
iterations: 1
tasks:
  train: {path: ${MINIGYM_TASKS}, ids_file: ids.txt}
sandbox: {memory: 512m, pids: 256, test_timeout_s: 60, concurrency: 2, docker: [{url: '${engineUrl}'}]}
policy: ${policyUrl ? `{kind: openai, base_url: ${policyUrl}, model: sim-base, concurrency: 8, retries: 0}` : '{kind: simulated, model: sim-base, concurrency: 8}'}
sampling: {samples_per_task: 3, instances_in_flight: 1}
select: {cap: 2}
${simTrainerFinetune()}`,
  );
  return path.join(dir, 'recipe.yaml');
}

async function until(what: string, condition: () => boolean | Promise<boolean>, running?: { done: Promise<Finished> }, ms = 120_000): Promise<void> {
  let ended = false;
  void running?.done.then(() => (ended = true));
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await condition()) return;
    if (ended) throw new Error(`rft ended before ${what}: ${(await running!.done).stderr.slice(-2000)}`);
    await sleep(40);
  }
  throw new Error(`timed out waiting for ${what}`);
}

const verdictsOf = (runDir: string): Verdict[] => [...readRecords(path.join(runDir, 'iter-0', 'verdicts.jsonl'), VerdictSchema)];

async function containersOf(docker: Docker, run: string, extra: string[] = []): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL.run}=${run}`, ...extra] }) });
}

/** The run ended as a run that stopped on infrastructure trouble ends: said plainly, with the command that continues it. */
function expectCleanIncomplete(result: Finished, runDir: string): void {
  expect(result.signal).toBeNull();
  expect(result.stderr).not.toMatch(/^rft: /m); // no crash, no stack
  expect(result.stdout).toMatch(/run incomplete \(.+\); continue with: rft resume /);
  expect(result.stdout).toContain(path.basename(runDir));
  expect(result.code).toBe(1);
}

async function resumeToTheEnd(runDir: string): Promise<Finished> {
  const result = await startRft(['resume', runDir]).done;
  expect({ stderr: result.stderr.slice(-1500), code: result.code }).toMatchObject({ code: 0 });
  expect(result.stdout).toMatch(/run complete/);
  return result;
}

/** Every recorded patch has a final verdict, and none of them blames the patch for a dead container. */
function expectAllVerifiedHonestly(runDir: string): void {
  const verdicts = verdictsOf(runDir);
  const finals = verdicts.filter((v) => isFinal(v.outcome));
  expect(finals.length).toBeGreaterThan(0);
  for (const v of finals) expect(v.reason ?? '').not.toMatch(/killed before it finished|stopped while running/);
  for (const v of verdicts.filter((e) => !isFinal(e.outcome))) expect(finals.some((f) => verdictKeyOf(f) === verdictKeyOf(v))).toBe(true);
}

// ----------------------------------------------------------------------------------------------

describe('Docker faults, on a dockerd of this file\'s own', () => {
  let engine: PrivateEngine;
  let main: Docker;

  beforeAll(async () => {
    main = await connectEngine();
    // A short folder: unix socket paths are limited to ~107 bytes.
    engine = new PrivateEngine(mkdtempSync('/tmp/rft-dockerd-'));
    await engine.start();
    await copyImage(main, engine.docker, IMAGE);
    await copyImage(main, engine.docker, BASE_IMAGE);
  }, 300_000);

  afterAll(async () => {
    await engine?.stop();
  }, 120_000);

  it('the engine restarted mid-run: a clear stop (or recovery), then rft resume completes', { timeout: 300_000 }, async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-fault-restart-'));
    const name = 'fault-restart';
    const runDir = path.join(runs, name);
    const run = startRft(['run', writeRecipe(name, engine.url), '--runs-dir', runs]);
    await until('a verification container', async () => (await containersOf(engine.docker, name, [`${LABEL.purpose}=verify`]).catch(() => [])).length > 0, run);
    await engine.kill();
    await sleep(500); // rft meets an engine that is not there…
    await engine.start(); // …and then one that came back, without its containers' commands
    const first = await run.done;
    if (first.code !== 0) {
      expectCleanIncomplete(first, runDir);
      // What went wrong is said: the engine's trouble, not a model failure.
      expect(first.stderr).toMatch(/warning: .*(container \w+ stopped while running .*Docker engine went away or restarted|the Docker engine dropped or refused the connection)/);
    } else {
      expect(first.stdout).toMatch(/run complete/);
    }
    await resumeToTheEnd(runDir);
    expectAllVerifiedHonestly(runDir);
    expect(await containersOf(engine.docker, name)).toEqual([]);
  });

  it('a container killed from outside mid-verification: an infrastructure error, not a model failure, retried on resume', { timeout: 300_000 }, async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-fault-kill-'));
    const name = 'fault-kill';
    const runDir = path.join(runs, name);
    const run = startRft(['run', writeRecipe(name, engine.url), '--runs-dir', runs]);
    let killed: { id: string; instance: string } | null = null;
    await until(
      'pytest running in a verification container',
      async () => {
        for (const c of await containersOf(engine.docker, name, [`${LABEL.purpose}=verify`])) {
          const top = await engine.docker.getContainer(c.Id).top().catch(() => null);
          if (top?.Processes?.some((p: string[]) => p.join(' ').includes('pytest'))) {
            await engine.docker.getContainer(c.Id).kill();
            killed = { id: c.Id, instance: c.Labels[LABEL.instance]! };
            return true;
          }
        }
        return false;
      },
      run,
    );
    const first = await run.done;
    expectCleanIncomplete(first, runDir);
    const errors = verdictsOf(runDir).filter((v) => v.outcome === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.instance_id).toBe(killed!.instance);
    expect(errors[0]!.reason).toMatch(new RegExp(`^infrastructure: container ${killed!.id.slice(0, 12)} stopped while running .*eval\\.sh`));
    // Not cached as a result: the first run has no final verdict for that patch.
    expect(verdictsOf(runDir).filter((v) => verdictKeyOf(v) === verdictKeyOf(errors[0]!) && isFinal(v.outcome))).toEqual([]);

    await resumeToTheEnd(runDir);
    const after = verdictsOf(runDir);
    const retried = after.filter((v) => verdictKeyOf(v) === verdictKeyOf(errors[0]!));
    expect(retried.map((v) => v.outcome)).toEqual(['error', expect.stringMatching(/^(resolved|unresolved|apply_failed|timeout)$/)]);
    expectAllVerifiedHonestly(runDir);
    expect(await containersOf(engine.docker, name)).toEqual([]);
  });

  it('an image removed mid-run: an error naming the image and what to run; after rebuilding it, resume completes', { timeout: 300_000 }, async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-fault-image-'));
    const name = 'fault-image';
    const runDir = path.join(runs, name);
    // A SIMULATED policy that takes its time, so that the image can go between the repository
    // snapshot (taken before the first LLM call) and the first verification (after a trajectory).
    const sim = await startSimServer({ models: [], tasks: minigymInstances(), modelsDir: path.join(runDir, 'sim-models'), latencyMs: 300 });
    try {
      const run = startRft(['run', writeRecipe(name, engine.url, sim.url), '--runs-dir', runs]);
      await until('the first LLM call', () => sim.requests.length > 0, run);
      await engine.docker.getImage(IMAGE).remove({ force: true }); // as `docker rmi -f` would
      const first = await run.done;
      expectCleanIncomplete(first, runDir);
      expect(first.stderr).toContain(IMAGE);
      expect(first.stderr).toMatch(/rft tasks build-images/);
      expect(verdictsOf(runDir).map((v) => v.outcome)).toContain('error');

      // Resumed without the image: stops again, as clearly.
      const second = await startRft(['resume', runDir]).done;
      expectCleanIncomplete(second, runDir);
      expect(second.stderr).toContain(IMAGE);
      expect(second.stderr).toMatch(/rft tasks build-images/);

      // Do what it says (on the private engine, for this one task), then resume.
      const tasksDir = mkdtempSync(path.join(tmpdir(), 'rft-fault-tasks-'));
      const tasksFile = path.join(tasksDir, 'tasks.jsonl');
      writeFileSync(tasksFile, `${readFileSync(MINIGYM_TASKS, 'utf8').split('\n').find((line) => line.includes(`"${TASK}"`))}\n`);
      const build = spawnSync(process.execPath, [RFT_BIN, 'tasks', 'build-images', tasksFile, '--repos-dir', path.join(MINIGYM_DIR, 'repos')], {
        cwd: ROOT,
        env: { ...process.env, DOCKER_HOST: engine.url },
        encoding: 'utf8',
        timeout: 240_000,
      });
      expect({ code: build.status, stderr: build.stderr.slice(-1000) }).toMatchObject({ code: 0 });
      expect(build.stdout).toContain(`built   ${IMAGE}`);
      await resumeToTheEnd(runDir);
      expectAllVerifiedHonestly(runDir);
      expect(await containersOf(engine.docker, name)).toEqual([]);
    } finally {
      await sim.close();
    }
  });

  describe('rft gc', () => {
    /** A run folder whose lock is held by `holder` (a live process), stale (a dead one) or absent. */
    function makeRun(runsDir: string, name: string, lock: 'live' | 'stale' | 'none', holderPid?: number): string {
      const dir = path.join(runsDir, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'run.json'), `${JSON.stringify({ name, recipe_hash: 'x', base_dir: runsDir, created_at: new Date().toISOString() })}\n`);
      if (lock !== 'none') {
        const info: LockInfo = { pid: holderPid!, host: hostname(), start_ticks: processStartTicks(holderPid!), acquired_at: new Date().toISOString() };
        if (lock === 'stale') info.start_ticks = info.start_ticks ?? '1';
        writeFileSync(path.join(dir, 'lock'), `${JSON.stringify(info)}\n`);
      }
      return dir;
    }

    async function create(labels: Record<string, string>): Promise<string> {
      const c = await engine.docker.createContainer({ Image: BASE_IMAGE, Cmd: ['sleep', 'infinity'], Labels: labels, HostConfig: { NetworkMode: 'none' } });
      return c.id;
    }

    it('removes the containers of runs not running, keeps those of a running run and every container without rft labels; --dry-run removes nothing', { timeout: 240_000 }, async () => {
      // This engine is the file's own: what earlier tests left on it goes first, so the counts are this test's.
      await Promise.all((await engine.docker.listContainers({ all: true })).map((c) => engine.docker.getContainer(c.Id).remove({ force: true })));
      const runs = mkdtempSync(path.join(tmpdir(), 'rft-gc-'));
      const otherRuns = mkdtempSync(path.join(tmpdir(), 'rft-gc-other-'));
      // A live lock holder (a process of this test) and a dead one (a process that has exited).
      const live = spawn('sleep', ['600'], { stdio: 'ignore' });
      const dead = spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' });
      const deadPid = Number(dead.stdout.trim());
      // A zombie: exited, never reaped (its parent execs into a sleep that never waits), so signal 0 still reaches it.
      const zombieParent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 600'], { stdio: ['ignore', 'pipe', 'ignore'] });
      const zombiePid = await new Promise<number>((resolve) => zombieParent.stdout!.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
      await until('a zombie', () => /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${zombiePid}/stat`, 'utf8')));
      try {
        const running = makeRun(runs, 'gc-running', 'live', live.pid!);
        const stale = makeRun(runs, 'gc-stale', 'stale', deadPid);
        const unlocked = makeRun(runs, 'gc-unlocked', 'none');
        const zombie = makeRun(runs, 'gc-zombie', 'live', zombiePid);
        // Two runs named alike in two runs folders: only the directory label tells their containers apart.
        const twinRunning = makeRun(otherRuns, 'gc-twin', 'live', live.pid!);
        const twinIdle = makeRun(runs, 'gc-twin', 'none');
        const lockBefore = readFileSync(path.join(running, 'lock'), 'utf8');

        const ids = {
          running: await create({ [LABEL.run]: 'gc-running', [RUN_DIR_LABEL]: running, [LABEL.purpose]: 'verify' }),
          runningByName: await create({ [LABEL.run]: 'gc-running' }), // no directory label: found under --runs-dir
          stale: await create({ [LABEL.run]: 'gc-stale', [RUN_DIR_LABEL]: stale }),
          staleByName: await create({ [LABEL.run]: 'gc-stale' }),
          unlocked: await create({ [LABEL.run]: 'gc-unlocked', [RUN_DIR_LABEL]: unlocked }),
          zombie: await create({ [LABEL.run]: 'gc-zombie', [RUN_DIR_LABEL]: zombie }),
          twinRunning: await create({ [LABEL.run]: 'gc-twin', [RUN_DIR_LABEL]: twinRunning }),
          twinIdle: await create({ [LABEL.run]: 'gc-twin', [RUN_DIR_LABEL]: twinIdle }),
          unknownRun: await create({ [LABEL.run]: 'verify-4242' }), // `rft verify`'s: no run folder anywhere
          foreign: await create({ app: 'not-rft' }),
          bare: await create({}),
        };
        await engine.docker.getContainer(ids.stale).start(); // a running container of a dead run goes too
        const present = async () => new Set((await engine.docker.listContainers({ all: true })).map((c) => c.Id));
        const gc = (extra: string[]) => spawnSync(process.execPath, [RFT_BIN, 'gc', '--docker', engine.url, '--runs-dir', runs, ...extra], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });

        const dry = gc(['--dry-run']);
        expect({ code: dry.status, stderr: dry.stderr }).toMatchObject({ code: 0 });
        expect(dry.stdout).toMatch(/dry run: 5 container\(s\) of runs not running would be removed, 4 kept/);
        for (const id of [ids.stale, ids.staleByName, ids.unlocked, ids.zombie, ids.twinIdle]) expect(dry.stdout).toContain(`would remove     ${id.slice(0, 12)}`);
        expect([...(await present())].filter((id) => Object.values(ids).includes(id)).sort()).toEqual(Object.values(ids).sort());

        const real = gc([]);
        expect({ code: real.status, stderr: real.stderr }).toMatchObject({ code: 0 });
        expect(real.stdout).toMatch(/5 container\(s\) of runs not running removed, 4 kept/);
        const after = await present();
        expect(Object.fromEntries(Object.entries(ids).map(([k, id]) => [k, after.has(id)]))).toEqual({
          running: true,
          runningByName: true,
          stale: false,
          staleByName: false,
          unlocked: false,
          zombie: false,
          twinRunning: true,
          twinIdle: false,
          unknownRun: true,
          foreign: true,
          bare: true,
        });
        // The lock was read, never taken or touched; and only containers went (the run folders stay).
        expect(readFileSync(path.join(running, 'lock'), 'utf8')).toBe(lockBefore);
        for (const dir of [running, stale, unlocked, zombie, twinRunning, twinIdle]) expect(existsSync(path.join(dir, 'run.json'))).toBe(true);
        await engine.docker.getImage(BASE_IMAGE).inspect();

        // Once the holder is gone, its run's containers are collected too.
        live.kill('SIGKILL');
        await new Promise((resolve) => live.once('exit', resolve));
        const later = gc([]);
        expect(later.stdout).toMatch(/3 container\(s\) of runs not running removed, 1 kept/);
        const left = await present();
        expect([ids.running, ids.runningByName, ids.twinRunning].map((id) => left.has(id))).toEqual([false, false, false]);
        expect([ids.unknownRun, ids.foreign, ids.bare].map((id) => left.has(id))).toEqual([true, true, true]);
      } finally {
        live.kill('SIGKILL');
        zombieParent.kill('SIGKILL');
        await Promise.all(
          (await engine.docker.listContainers({ all: true })).map((c) => engine.docker.getContainer(c.Id).remove({ force: true }).catch(() => {})),
        );
      }
    });
  });
});
