import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Trajectory } from '../../src/agent/trajectory.js';
import { runLayout } from '../../src/loop/layout.js';
import { deriveSeed } from '../../src/policy/seed.js';
import { startSimServer, type SimServer } from '../../src/doubles/server.js';
import { LABEL } from '../../src/sandbox/container.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import { CRASH_ENV, CRASH_POINTS, parseCrashSpec } from '../../src/store/crash-points.js';
import { readRecords } from '../../src/store/ledger.js';
import { readTrajectories } from '../../src/store/trajectories.js';
import { normalizePatch, patchHash } from '../../src/verify/patch.js';
import { isFinal, VerdictSchema } from '../../src/verify/verdict.js';
import { RFT_BIN, ROOT } from '../cli/helpers.js';
import { MINIGYM_TASKS, minigymInstances } from '../helpers/minigym.js';
import type { Running } from '../loop/helpers.js';
import { mulberry32 as rng } from '../../src/util/prng.js';

/**
 * The whole loop (zero-shot eval, 2 iterations of sample → verify → select → emit → command
 * fine-tune → serve → eval) SIGKILLed at 10 points chosen from a seed, resumed after each, must
 * end exactly where an uninterrupted run ends. Half the kills come from inside (RFT_CRASH_AT:
 * a ledger line half written, a state file written but not renamed, a phase boundary), half from
 * outside at moments picked by watching the run directory and the engine.
 *
 * Reproduce a failure with the seed it prints: RFT_CRASH_SEED=<seed> npx vitest run … this file.
 */

const NAME = 'crash-anywhere';
const TASKS = ['minigym__iniform-201', 'minigym__ledgerlite-303'];
const SAMPLES = 3;
const EVAL_SAMPLES = 1;
const KILLS = 10;
/** Of the ten, killed from outside (the others by RFT_CRASH_AT). */
const EXTERNAL_KILLS = 4;
const SEED = process.env.RFT_CRASH_SEED ? Number(process.env.RFT_CRASH_SEED) : Math.floor(Math.random() * 2 ** 31);

const servers: SimServer[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function simFor(runsDir: string, port = 0): Promise<SimServer> {
  const server = await startSimServer({ port, models: [], tasks: minigymInstances(), modelsDir: path.join(runsDir, NAME, 'sim-models') });
  servers.push(server);
  return server;
}

/** The same recipe for both runs (its hash is in every manifest): only the folder it sits in differs. */
function writeRecipe(simUrl: string, name = NAME): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-crash-recipe-'));
  writeFileSync(path.join(dir, 'ids.txt'), `${TASKS.join('\n')}\n`);
  const recipe = `name: ${name}
seed: 1
iterations: 2
tasks:
  train: {path: ${MINIGYM_TASKS}, ids_file: ids.txt}
  eval: {path: ${MINIGYM_TASKS}, ids_file: ids.txt}
sandbox: {memory: 512m, pids: 256, test_timeout_s: 60, concurrency: 2}
policy: {kind: openai, base_url: ${simUrl}, model: sim-base, concurrency: 8, retries: 0}
sampling: {samples_per_task: ${SAMPLES}, instances_in_flight: 2}
eval: {samples: ${EVAL_SAMPLES}}
select: {cap: 2}
finetune:
  backend: command
  command: "sleep 2 && node ${path.join(ROOT, 'scripts/sim-train.mjs')} --dataset {dataset} --base {base_model} --iteration {iteration} --out {output_dir} --models-dir {run_dir}/sim-models"
  base_model: sim-base
  output_model_file: '{output_dir}/MODEL'
`;
  const file = path.join(dir, 'recipe.yaml');
  writeFileSync(file, recipe);
  return file;
}

function startRft(args: string[], crashAt: string | null): Running {
  const env = { ...process.env };
  delete env[CRASH_ENV];
  if (crashAt !== null) env[CRASH_ENV] = crashAt;
  const child = spawn(process.execPath, [RFT_BIN, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })),
  );
  Object.defineProperty(child, 'stderrSoFar', { get: () => stderr });
  return { child, done };
}

const stderrOf = (running: Running): string => (running.child as unknown as { stderrSoFar: string }).stderrSoFar;

/** Every ledger of the run, relative to it: the trajectories and verdicts of iterations 0-1 and evals of M0-M2. */
const PHASE_DIRS = ['eval/m0', 'iter-0', 'eval/m1', 'iter-1', 'eval/m2'];
const ledgerFile = (runDir: string, phaseDir: string, kind: 'trajectories' | 'verdicts') => path.join(runDir, phaseDir, `${kind}.jsonl`);
const expectedSamples = (phaseDir: string) => TASKS.length * (phaseDir.startsWith('eval') ? EVAL_SAMPLES : SAMPLES);

function trajectories(runDir: string, phaseDir: string): Trajectory[] {
  const file = ledgerFile(runDir, phaseDir, 'trajectories');
  return existsSync(file) ? [...readTrajectories(file)] : [];
}

function recorded(runDir: string): Trajectory[] {
  return PHASE_DIRS.flatMap((dir) => trajectories(runDir, dir));
}

/** Every file of the datasets folders (names and bytes): a stray temp file counts too. */
function datasetFiles(runDir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const k of [0, 1]) {
    const dir = runLayout.datasetDir(runDir, k, 2);
    for (const name of readdirSync(dir).sort()) files.set(`iter-${k}/${name}`, readFileSync(path.join(dir, name), 'utf8'));
  }
  return files;
}

/** instance#sample → patch hash, per ledger: what was drawn, whatever the order it was recorded in. */
function drawn(runDir: string): Record<string, Record<string, string>> {
  return Object.fromEntries(
    PHASE_DIRS.map((dir) => [dir, Object.fromEntries(trajectories(runDir, dir).map((t) => [`${t.instance_id}#${t.sample_index}`, patchHash(normalizePatch(t.patch))]))]),
  );
}

async function runContainers(filters: string[] = []): Promise<string[]> {
  const docker = await connectEngine();
  const found = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL.run}=${NAME}`, ...filters] }) });
  return found.map((c) => c.Id);
}

/** Stray temp files of atomic replacements (`.<name>.<pid>.<hex>.tmp`) anywhere in the run. */
function strayTemps(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? strayTemps(path.join(dir, e.name)) : /^\..+\.\d+\.[0-9a-f]{8}\.tmp$/.test(e.name) ? [path.join(dir, e.name)] : [],
  );
}

// ---- the kill plan -------------------------------------------------------------------------

type Category = 'eval' | 'sampling' | 'verification' | 'emit' | 'finetune' | 'serve';

/** What the test watches, from the start of one rft process. */
interface Watch {
  runDir: string;
  running: Running;
  /** Trajectory counts per phase folder when the process started. */
  startCounts: Map<string, number>;
  /** Containers of the run that existed when the process started (left by the killed one). */
  oldContainers: Set<string>;
}

type Mechanism =
  | { kind: 'crash'; category: Category; spec: string }
  | { kind: 'external'; category: Category; what: string; ready: (w: Watch) => boolean | Promise<boolean> };

const crash = (category: Category, point: string, subject: string, n = 1): Mechanism => ({ kind: 'crash', category, spec: `${point}@${subject}:${n}` });

const sampledMore = (phaseDir: string, n: number, category: Category): Mechanism => ({
  kind: 'external',
  category,
  what: `${n} more trajectories in ${phaseDir}`,
  ready: (w) => trajectories(w.runDir, phaseDir).length >= (w.startCounts.get(phaseDir) ?? 0) + n,
});

const verifying: Mechanism = {
  kind: 'external',
  category: 'verification',
  what: 'a verification container of this process runs',
  ready: async (w) => (await runContainers([`${LABEL.purpose}=verify`])).some((id) => !w.oldContainers.has(id)),
};

const training = (k: number): Mechanism => ({
  kind: 'external',
  category: 'finetune',
  what: `rft waits on the trainer of iteration ${k}`,
  ready: (w) => new RegExp(`(started the trainer|re-attaching to the running trainer) of iteration ${k}\\b`).test(stderrOf(w.running)),
});

const { ledgerMidLine, ledgerBeforeFsync, atomicBeforeRename, atomicBeforeDirSync, loopPhase } = CRASH_POINTS;

/** Sampling kills in a phase folder whose ledger is still empty when the slot comes (n ≤ what is left). */
function samplingKills(phaseDir: string, category: Category, maxN: number): Mechanism[] {
  const out: Mechanism[] = [];
  for (let n = 1; n <= maxN; n++) {
    out.push(crash(category, ledgerMidLine, `${phaseDir}/trajectories.jsonl`, n));
    out.push(crash(category, ledgerBeforeFsync, `${phaseDir}/trajectories.jsonl`, n));
    out.push(sampledMore(phaseDir, n, category));
  }
  // The message texts of the compact layout, written before the record that refers to them (a
  // process's first trajectory always writes some: its dedup memory starts empty).
  out.push(crash(category, ledgerMidLine, `${phaseDir}/trajectories.blobs.jsonl`, 1));
  out.push(crash(category, ledgerBeforeFsync, `${phaseDir}/trajectories.blobs.jsonl`, 1));
  return out;
}

const emitKills = (k: number): Mechanism[] => [
  crash('emit', atomicBeforeRename, `iter-${k}/datasets/cap-2/train.jsonl`),
  crash('emit', atomicBeforeRename, `iter-${k}/datasets/cap-2/manifest.json`),
  crash('emit', atomicBeforeDirSync, `iter-${k}/datasets/cap-2/train.jsonl`),
  crash('emit', loopPhase, `iter-${k}/select`),
];

/** finetune.json is saved 1: pending, 2: running (before the trainer starts), 3: with its pid, 4: succeeded. */
const finetuneKills = (k: number): Mechanism[] => [
  ...[1, 2, 3, 4].flatMap((n) => [
    crash('finetune', atomicBeforeRename, `iter-${k}/finetune/finetune.json`, n),
    crash('finetune', atomicBeforeDirSync, `iter-${k}/finetune/finetune.json`, n),
  ]),
  training(k),
];

/**
 * Ten slots in the order the run meets them, each a menu the seed picks from. Every slot is
 * reachable whatever the earlier picks were: a slot's work is still ahead when its process starts
 * (the kill before it landed in an earlier phase), and emit/serve are redone by every resume.
 */
const SLOTS: { slot: string; menu: Mechanism[] }[] = [
  {
    slot: 'zero-shot eval of M0',
    menu: [...samplingKills('eval/m0', 'eval', 2), crash('eval', ledgerBeforeFsync, 'eval/m0/verdicts.jsonl'), crash('eval', ledgerMidLine, 'eval/m0/verdicts.jsonl')],
  },
  { slot: 'iteration 0 sampling', menu: samplingKills('iter-0', 'sampling', 3) },
  {
    slot: 'iteration 0 verification',
    menu: [verifying, crash('verification', ledgerBeforeFsync, 'iter-0/verdicts.jsonl'), crash('verification', ledgerMidLine, 'iter-0/verdicts.jsonl')],
  },
  { slot: 'iteration 0 selection and emit', menu: emitKills(0) },
  { slot: 'iteration 0 command fine-tune', menu: finetuneKills(0) },
  { slot: 'serving M1', menu: [crash('serve', loopPhase, 'serve/m1')] },
  { slot: 'eval of M1', menu: [...samplingKills('eval/m1', 'eval', 2), crash('eval', ledgerBeforeFsync, 'eval/m1/verdicts.jsonl')] },
  {
    slot: 'iteration 1 sampling or verification',
    menu: [...samplingKills('iter-1', 'sampling', 3), verifying, crash('verification', ledgerBeforeFsync, 'iter-1/verdicts.jsonl'), crash('verification', ledgerMidLine, 'iter-1/verdicts.jsonl')],
  },
  { slot: 'iteration 1 emit or fine-tune', menu: [...emitKills(1), ...finetuneKills(1)] },
  { slot: 'serving or eval of M2', menu: [crash('serve', loopPhase, 'serve/m2'), ...samplingKills('eval/m2', 'eval', 2)] },
];

function describeMechanism(m: Mechanism): string {
  return m.kind === 'crash' ? `${CRASH_ENV}=${m.spec}` : `external SIGKILL once ${m.what}`;
}

// ---------------------------------------------------------------------------------------------

describe('crash anywhere: rft SIGKILLed at 10 points across every phase, resumed after each', () => {
  let uninterrupted: Map<string, string>;
  let uninterruptedDraws: Record<string, Record<string, string>>;
  let simPort = 0;

  it('an uninterrupted run (the reference): datasets, manifests and draws', { timeout: 300_000 }, async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-crash-a-'));
    const sim = await simFor(runs);
    simPort = sim.port;
    const run = startRft(['run', writeRecipe(sim.url), '--runs-dir', runs], null);
    const result = await run.done;
    expect(result.stderr).not.toMatch(/rft: /);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/run complete/);
    const runDir = path.join(runs, NAME);
    uninterrupted = datasetFiles(runDir);
    uninterruptedDraws = drawn(runDir);
    for (const k of [0, 1]) expect(JSON.parse(uninterrupted.get(`iter-${k}/manifest.json`)!).counts.examples).toBeGreaterThan(0);
    for (const dir of PHASE_DIRS) expect(Object.keys(uninterruptedDraws[dir]!)).toHaveLength(expectedSamples(dir));
    await sim.close();
  });

  it(`${KILLS} SIGKILLs (crash points and external), each resumed: same datasets byte for byte, nothing recorded asked again, clean ledgers, no container left`, { timeout: 900_000 }, async () => {
    const random = rng(SEED);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    // A mix, whatever the seed: EXTERNAL_KILLS slots (of those that can be watched) are killed from outside, the rest from inside.
    const watchable = SLOTS.flatMap((s, i) => (s.menu.some((m) => m.kind === 'external') ? [i] : []));
    const outside = new Set<number>();
    while (outside.size < EXTERNAL_KILLS) outside.add(pick(watchable));
    const plan = SLOTS.map(({ slot, menu }, i) => ({ slot, mechanism: pick(menu.filter((m) => (m.kind === 'external') === outside.has(i))) }));
    expect(plan).toHaveLength(KILLS);
    expect(plan.filter((p) => p.mechanism.kind === 'external')).toHaveLength(EXTERNAL_KILLS);
    for (const p of plan) if (p.mechanism.kind === 'crash') parseCrashSpec(p.mechanism.spec); // a typo fails here, not as a kill that never comes
    console.log(`crash-anywhere: seed ${SEED} (rerun with RFT_CRASH_SEED=${SEED}); plan:\n${plan.map((p, i) => `  ${i + 1}. ${p.slot}: ${describeMechanism(p.mechanism)}`).join('\n')}`);

    const runs = mkdtempSync(path.join(tmpdir(), 'rft-crash-b-'));
    const sim = await simFor(runs, simPort);
    const runDir = path.join(runs, NAME);
    const recipe = writeRecipe(sim.url);
    /** At each kill: what the ledgers held, and how many requests the policy had answered. */
    const atKill: { recorded: Trajectory[]; requests: number }[] = [];
    const landed: { slot: string; category: Category; how: string; phases: string }[] = [];

    for (const [i, { slot, mechanism }] of plan.entries()) {
      const startCounts = new Map(PHASE_DIRS.map((dir) => [dir, trajectories(runDir, dir).length]));
      const oldContainers = new Set(await runContainers());
      const args = i === 0 ? ['run', recipe, '--runs-dir', runs] : ['resume', runDir];
      const running = startRft(args, mechanism.kind === 'crash' ? mechanism.spec : null);
      const context = () => `kill ${i + 1} (${slot}: ${describeMechanism(mechanism)}), seed ${SEED}`;
      if (mechanism.kind === 'crash') {
        const result = await running.done;
        const { point } = parseCrashSpec(mechanism.spec);
        expect({ context: context(), signal: result.signal, stderr: result.stderr.slice(-1500) }).toMatchObject({ signal: 'SIGKILL' });
        expect(result.stderr).toContain(`crashing at ${point}`);
      } else {
        const watch: Watch = { runDir, running, startCounts, oldContainers };
        let ended = false;
        void running.done.then(() => (ended = true));
        for (;;) {
          if (await mechanism.ready(watch)) break;
          if (ended) throw new Error(`${context()}: rft ended before the moment came: ${(await running.done).stderr.slice(-2000)}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        running.child.kill('SIGKILL');
        const result = await running.done;
        expect({ context: context(), signal: result.signal }).toMatchObject({ signal: 'SIGKILL' });
      }
      atKill.push({ recorded: recorded(runDir), requests: sim.requests.length });
      const state = JSON.parse(readFileSync(path.join(runDir, 'state.json'), 'utf8')) as { phases: Record<string, { status: string }> };
      const phases = Object.entries(state.phases)
        .map(([phase, p]) => `${phase}:${p.status}`)
        .join(' ');
      landed.push({ slot, category: mechanism.category, how: describeMechanism(mechanism), phases });
      console.log(`crash-anywhere: kill ${i + 1}/${KILLS} done — ${slot}: ${describeMechanism(mechanism)}; state.json: ${phases}`);
    }

    // To the end.
    const final = await startRft(['resume', runDir], null).done;
    expect(final.stderr).not.toMatch(/rft: /);
    expect(final.code).toBe(0);
    expect(final.stdout).toMatch(/run complete/);
    const survived = landed.length;
    console.log(`crash-anywhere: seed ${SEED}: ${survived} kills survived, the run completed`);
    expect(survived).toBe(KILLS);
    expect(new Set(landed.map((l) => l.category))).toEqual(new Set<Category>(['eval', 'sampling', 'verification', 'emit', 'finetune', 'serve']));

    // Byte for byte the datasets and manifests of the uninterrupted run (and no other file beside them).
    const resumed = datasetFiles(runDir);
    expect([...resumed.keys()]).toEqual([...uninterrupted.keys()]);
    for (const [file, text] of resumed) expect({ file, text }).toEqual({ file, text: uninterrupted.get(file) });
    // The same draws: every (instance, sample) of every ledger ended in the same patch.
    expect(drawn(runDir)).toEqual(uninterruptedDraws);

    // Nothing recorded before a kill was asked for again after it (a trajectory in flight at a
    // kill was not recorded, so it is sampled again: that is the only repeat allowed).
    let checked = 0;
    for (const kill of atKill) {
      const later = new Set(sim.requests.slice(kill.requests).map((r) => r.seed));
      for (const t of kill.recorded) {
        for (let call = 0; call < t.llm_calls; call++) {
          expect({ trajectory: `${t.iteration}/${t.instance_id}/${t.sample_index}`, call, askedAgain: later.has(deriveSeed(t.seed, call)) }).toMatchObject({ askedAgain: false });
          checked += 1;
        }
      }
    }
    expect(checked).toBeGreaterThan(10);

    // Every ledger: whole lines only, no (instance, sample) twice, no final verdict twice.
    for (const dir of PHASE_DIRS) {
      for (const kind of ['trajectories', 'verdicts'] as const) {
        const text = readFileSync(ledgerFile(runDir, dir, kind), 'utf8');
        expect({ file: `${dir}/${kind}.jsonl`, endsWithNewline: text.endsWith('\n') }).toEqual({ file: `${dir}/${kind}.jsonl`, endsWithNewline: true });
        const lines = text.slice(0, -1).split('\n');
        if (kind === 'trajectories') {
          // Whole records, message texts restored from the blob file (the compact layout).
          const keys = [...readTrajectories(ledgerFile(runDir, dir, kind))].map((t) => `${t.instance_id}#${t.sample_index}`);
          expect(keys).toHaveLength(lines.length);
          expect(new Set(keys).size).toBe(keys.length);
          expect(keys).toHaveLength(expectedSamples(dir));
        } else {
          const finals = lines.map((l) => VerdictSchema.parse(JSON.parse(l))).filter((v) => isFinal(v.outcome));
          const keys = finals.map((v) => `${v.instance_id}@${v.patch_hash}`);
          expect({ file: `${dir}/verdicts.jsonl`, duplicates: keys.filter((k, j) => keys.indexOf(k) !== j) }).toEqual({ file: `${dir}/verdicts.jsonl`, duplicates: [] });
        }
      }
    }

    // One training per iteration: a trainer the killed rft had started was re-attached to, never run twice.
    for (const k of [0, 1]) {
      const log = readFileSync(path.join(runLayout.finetuneDir(runDir, k), 'trainer.log'), 'utf8');
      expect({ iteration: k, trainings: log.match(/SIMULATED training:/g)?.length ?? 0 }).toEqual({ iteration: k, trainings: 1 });
    }

    expect(strayTemps(runDir)).toEqual([]);
    expect(await runContainers()).toEqual([]);
  });

  it('killed while the run is being created (before run.json): resume says how to start it again, and rft run does', { timeout: 120_000 }, async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-crash-c-'));
    const name = 'crash-at-creation';
    const runDir = path.join(runs, name);
    const recipe = writeRecipe('http://127.0.0.1:9/v1', name); // never asked: every process here stops before sampling
    // RunDir.open writes recipe.yaml, then state.json (killed before its rename), then run.json.
    const created = await startRft(['run', recipe, '--runs-dir', runs], `${CRASH_POINTS.atomicBeforeRename}@${name}/state.json:1`).done;
    expect(created.signal).toBe('SIGKILL');
    expect(existsSync(path.join(runDir, 'recipe.yaml'))).toBe(true);
    expect(existsSync(path.join(runDir, 'run.json'))).toBe(false);
    expect(strayTemps(runDir)).toHaveLength(1);

    const resumed = await startRft(['resume', runDir], null).done;
    expect(resumed.code).toBe(2);
    expect(resumed.stderr).toMatch(/was interrupted while being created, before anything was recorded: start it again with `rft run <recipe>`/);
    expect(resumed.stderr).not.toMatch(/\n\s+at /); // said plainly, no stack

    // Doing so creates it (the stale lock is taken over, the temp file swept) and the loop starts: stopped at its first phase here.
    const again = await startRft(['run', recipe, '--runs-dir', runs], `${CRASH_POINTS.loopPhase}@eval/m0:1`).done;
    expect(again.stderr).toContain(`crashing at ${CRASH_POINTS.loopPhase} (eval/m0)`);
    expect(existsSync(path.join(runDir, 'run.json'))).toBe(true);
    expect(strayTemps(runDir)).toEqual([]);
  });
});
