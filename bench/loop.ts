/**
 * Benchmark 1 — loop overhead. One sampling + verification iteration (src/loop/rollout.ts, driven
 * directly) on the bundled tasks × N samples against the SIMULATED policy (its own process) with a
 * fixed added latency per call; wall time over a lower bound computed from the same run.
 */
import { readTrajectories } from '../src/store/trajectories.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Trajectory } from '../src/agent/trajectory.js';
import { rollout, type RolloutSummary } from '../src/loop/rollout.js';
import { OpenAiPolicy } from '../src/policy/client.js';
import type { PolicyClient, PolicyRequest, PolicyResponse } from '../src/policy/types.js';
import { LABEL, reapContainers } from '../src/sandbox/container.js';
import { connectEngine } from '../src/sandbox/engine.js';
import { encoder } from '../src/util/tokens.js';
import { PULLED_IMAGES_FILE, PulledImages } from '../src/sandbox/pulled-images.js';
import type { Instance } from '../src/tasks/instance.js';
import type { Verdict } from '../src/verify/verdict.js';
import { mainThreadCpuMs, runQueueDelayMs } from './lib/cpu.js';
import { envInt, envList } from './lib/env.js';
import { agentDefaults, bundledInstances, imageFor, LIMITS, specCache, TASKS_FILE } from './lib/fixtures.js';
import { startSimChild } from './lib/sim.js';
import type { BenchTable, Cell } from './lib/table.js';

export interface LoopConfig {
  /** Bundled instances to use (0 = all). */
  instances: number;
  samples: number;
  latencyMs: number;
  llmConcurrency: number;
  containerConcurrency: number;
  instancesInFlight: number;
}

export function loopConfigFromEnv(): LoopConfig {
  return {
    instances: envInt('BENCH_LOOP_INSTANCES', 0),
    samples: envInt('BENCH_LOOP_SAMPLES', 30),
    latencyMs: envInt('BENCH_LATENCY_MS', 200),
    llmConcurrency: envInt('BENCH_LLM_CONCURRENCY', 16),
    containerConcurrency: envInt('BENCH_CONTAINERS', 2),
    instancesInFlight: envInt('BENCH_INSTANCES_IN_FLIGHT', 2),
  };
}

/** Times are ms since the rollout started. */
export interface Interval {
  start: number;
  end: number;
}

export interface VerificationRun extends Interval {
  outcome: Verdict['outcome'];
  container: boolean;
}

export interface LoopRun {
  config: LoopConfig;
  instances: Instance[];
  summary: RolloutSummary;
  trajectories: Trajectory[];
  wallMs: number;
  /** CPU time (user + system) of this process during the rollout. */
  cpuMs: number;
  /** Of it, kernel time (system), ms. */
  systemMs: number;
  /** CPU time of the main thread alone (the loop's thread: every call's JavaScript), ms. */
  threadMs: number;
  /** Run-queue delay of the main thread during the rollout (runnable, waiting for a CPU). */
  waitMs: number;
  calls: Interval[];
  trajectorySpans: Interval[];
  verifications: VerificationRun[];
  /** Per instance: when its slot was taken and given back (rollout's 'instance' events). */
  instanceSpans: Array<Interval & { id: string }>;
}

/** Records when each LLM call is in flight (it sits inside rollout's concurrency limit). */
class TimedPolicy implements PolicyClient {
  readonly calls: Interval[] = [];
  constructor(
    private readonly inner: PolicyClient,
    private readonly t0: () => number,
  ) {}
  get model(): string {
    return this.inner.model;
  }
  async complete(request: PolicyRequest): Promise<PolicyResponse> {
    const start = performance.now() - this.t0();
    try {
      return await this.inner.complete(request);
    } finally {
      this.calls.push({ start, end: performance.now() - this.t0() });
    }
  }
}

/** Runs one rollout (sample + verify, pipelined) in a fresh run directory and records its timeline. */
export async function runLoop(config: LoopConfig): Promise<LoopRun> {
  const docker = await connectEngine();
  const instances = bundledInstances(config.instances);
  const sim = await startSimChild(TASKS_FILE, config.latencyMs);
  const dir = mkdtempSync(path.join(tmpdir(), 'rft-bench-loop-'));
  const runName = `bench-loop-${process.pid}`;
  // The bench pulls nothing (pullImages: false); the record is there because rollout takes one.
  const pulledImages = PulledImages.open(path.join(dir, PULLED_IMAGES_FILE));
  let t0 = 0;
  const policy = new TimedPolicy(new OpenAiPolicy({ baseUrl: sim.url, model: 'sim-base', apiKey: null, timeoutMs: 600_000, maxRetries: 2 }), () => t0);
  const verifications: VerificationRun[] = [];
  const instanceStart = new Map<string, number>();
  const instanceSpans: Array<Interval & { id: string }> = [];
  // The token encoder's tables (~0.6 s of CPU, once per process) are built before the clock starts:
  // in `rft run` the sampling phase's process has them long before (M0's eval comes first).
  encoder('cl100k_base');
  try {
    t0 = performance.now();
    const t0Wall = Date.now();
    const cpu0 = process.cpuUsage();
    const wait0 = runQueueDelayMs();
    const thread0 = mainThreadCpuMs();
    const summary = await rollout(
      {
        phase: 'iter-0',
        runName,
        runSeed: 7,
        iteration: 0,
        instances,
        samplesPerInstance: config.samples,
        sampling: { temperature: 1, top_p: 1 },
        agent: agentDefaults(),
        encoding: 'cl100k_base',
        trajectoriesFile: path.join(dir, 'trajectories.jsonl'),
        verdictsFile: path.join(dir, 'verdicts.jsonl'),
      },
      {
        docker,
        engineUrl: 'unix:///var/run/docker.sock',
        pulledImages,
        policy,
        imageFor,
        specFor: specCache(),
        verifyContext: { docker, imageFor, limits: LIMITS, labels: { [LABEL.run]: runName } },
        llmConcurrency: config.llmConcurrency,
        containerConcurrency: config.containerConcurrency,
        instancesInFlight: config.instancesInFlight,
        pullImages: false,
        removeImagesAfterUse: false,
        stopping: () => false,
        warn: (m) => process.stderr.write(`[bench loop] ${m}\n`),
        progress: (event) => {
          if (event.kind === 'instance') {
            const now = performance.now() - t0;
            // The sampling slot: taken at 'started', given back at 'sampled' (or at 'done' after an error).
            if (event.status === 'started') instanceStart.set(event.instance_id, now);
            else if (instanceStart.has(event.instance_id) && !instanceSpans.some((s) => s.id === event.instance_id)) instanceSpans.push({ id: event.instance_id, start: instanceStart.get(event.instance_id) ?? now, end: now });
          }
          if (event.kind !== 'verdict') return;
          const end = performance.now() - t0;
          verifications.push({ start: end - event.verdict.duration_ms, end, outcome: event.verdict.outcome, container: !isNoContainer(event.verdict) });
        },
      },
    );
    const wallMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    const cpuMs = (cpu.user + cpu.system) / 1000;
    const systemMs = cpu.system / 1000;
    const threadMs = mainThreadCpuMs() - thread0;
    const waitMs = runQueueDelayMs() - wait0;
    if (!summary.complete) throw new Error(`the rollout is incomplete: ${summary.infraErrors} sampling and ${summary.verifyErrors} verification infrastructure errors`);
    // Read back from the ledger (rollout no longer holds them): in the order they were recorded.
    const trajectories = [...readTrajectories(path.join(dir, 'trajectories.jsonl'))];
    const trajectorySpans = trajectories.map((t) => {
      const start = Date.parse(t.started_at) - t0Wall;
      return { start, end: start + t.duration_ms };
    });
    return { config, instances, summary, trajectories, wallMs, cpuMs, systemMs, threadMs, waitMs, calls: policy.calls, trajectorySpans, verifications, instanceSpans };
  } finally {
    pulledImages.close();
    await sim.stop();
    await reapContainers(docker, { [LABEL.run]: runName }).catch(() => 0);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Verdicts reached without starting a container: an empty patch, a patch touching .git. */
function isNoContainer(verdict: Verdict): boolean {
  return verdict.outcome === 'empty_patch' || (verdict.outcome === 'apply_failed' && verdict.apply_method === null && (verdict.reason ?? '').includes('.git'));
}

export interface LoopBound {
  /** ℓ·N / min(C, I·S): the calls at full LLM concurrency. */
  llmThroughputMs: number;
  /** ℓ × the most calls of one trajectory: its calls are sequential. */
  longestChainMs: number;
  llmMs: number;
  /** Verification container work ÷ container concurrency, after the earliest a patch can exist. */
  containerCapacityMs: number;
  /** Container time after the last LLM call that no schedule can hide. */
  tailMs: number;
  boundMs: number;
}

/**
 * The lower bound (explained in bench/RESULTS.md):
 *   LLM   = max(ℓ·N / min(C, I·S), ℓ·max_i n_i)
 *   bound = max(LLM + tail, ℓ·min_i n_i + Σ container durations / K)
 * where tail = the shortest container run, counted only when the trajectory that finished last
 * needed a container run of its own (a new, non-empty patch); otherwise 0.
 */
export function lowerBound(run: LoopRun, latencyMs = run.config.latencyMs): LoopBound {
  const l = latencyMs;
  const { llmConcurrency: C, containerConcurrency: K, instancesInFlight: I, samples: S } = run.config;
  const n = run.trajectories.map((t) => t.llm_calls);
  const N = n.reduce((a, b) => a + b, 0);
  const llmThroughputMs = (l * N) / Math.min(C, I * S);
  const longestChainMs = l * Math.max(0, ...n);
  const llmMs = Math.max(llmThroughputMs, longestChainMs);
  const containers = run.verifications.filter((v) => v.container);
  const containerWork = containers.reduce((a, v) => a + (v.end - v.start), 0);
  const containerCapacityMs = (n.length ? l * Math.min(...n) : 0) + containerWork / K;
  let tailMs = 0;
  if (containers.length > 0 && run.trajectorySpans.length > 0) {
    const lastEnd = Math.max(...run.trajectorySpans.map((s) => s.end));
    // A container run that started once the last trajectory was written verifies one of its patches.
    if (containers.some((v) => v.start >= lastEnd - 5)) tailMs = Math.min(...containers.map((v) => v.end - v.start));
  }
  const boundMs = Math.max(llmMs + tailMs, containerCapacityMs);
  return { llmThroughputMs, longestChainMs, llmMs, containerCapacityMs, tailMs, boundMs };
}

/** Length of the union of intervals. */
export function unionMs(intervals: readonly Interval[]): number {
  const sorted = [...intervals].sort((a, b) => a.start - b.start);
  let total = 0;
  let curStart = -Infinity;
  let curEnd = -Infinity;
  for (const i of sorted) {
    if (i.start > curEnd) {
      if (curEnd > curStart) total += curEnd - curStart;
      curStart = i.start;
      curEnd = i.end;
    } else curEnd = Math.max(curEnd, i.end);
  }
  if (curEnd > curStart) total += curEnd - curStart;
  return total;
}

/** Time during which at least `k` of the intervals are open. */
export function timeAtLeast(intervals: readonly Interval[], k: number): number {
  return timeWhere([intervals], ([open]) => open! >= k);
}

/** Time within [from, to] during which `holds` is true of the numbers of open intervals of each set. */
export function timeWhere(sets: readonly (readonly Interval[])[], holds: (open: number[]) => boolean, from = 0, to = Infinity): number {
  const events: Array<[number, number, number]> = [];
  sets.forEach((set, which) => {
    for (const i of set) events.push([i.start, which, 1], [i.end, which, -1]);
  });
  events.sort((a, b) => a[0] - b[0] || a[2] - b[2]);
  const open = sets.map(() => 0);
  let last = from;
  let total = 0;
  for (const [t, which, d] of [...events, [to, 0, 0] as [number, number, number]]) {
    const at = Math.min(Math.max(t, from), to);
    if (holds(open)) total += at - last;
    last = at;
    open[which]! += d;
  }
  return total;
}

interface LoopFigures {
  rows: Array<[string, Cell]>;
  ratio: number;
  explanation: string;
}

function loopFigures(run: LoopRun): LoopFigures {
  const b = lowerBound(run);
  const s = (ms: number) => Math.round(ms / 100) / 10;
  const ratio = run.wallMs / b.boundMs;
  const containers = run.verifications.filter((v) => v.container);
  const containerWork = containers.reduce((a, v) => a + v.end - v.start, 0);
  const N = run.calls.length;
  const firstCall = Math.min(...run.calls.map((c) => c.start));
  const lastCall = Math.max(...run.calls.map((c) => c.end));
  const callMs = run.calls.reduce((a, c) => a + (c.end - c.start), 0);
  const { llmConcurrency: C, containerConcurrency: K } = run.config;
  const saturated = timeAtLeast(run.calls, C);
  const measured = lowerBound(run, callMs / N);
  const bubble = timeWhere([run.calls, containers], ([llm, box]) => llm! < C && box! < K, 0, run.wallMs);
  const heldForVerification = timeWhere([run.calls, containers, verifyingSlots(run)], ([llm, box, held]) => llm! < C && box! < K && held! > 0, 0, run.wallMs);
  const rows: Array<[string, Cell]> = [
    ['trajectories (instances × samples)', `${run.trajectories.length} (${run.instances.length} × ${run.config.samples})`],
    ['LLM calls N (mean per trajectory)', `${N} (${(N / run.trajectories.length).toFixed(1)})`],
    ['ℓ configured / mean call latency measured, ms', `${run.config.latencyMs} / ${(callMs / N).toFixed(0)}`],
    ['C LLM / K containers / I instances in flight', `${C} / ${K} / ${run.config.instancesInFlight}`],
    ['container runs (verdicts without a container)', `${containers.length} (${run.verifications.length - containers.length})`],
    ['container work Σ, s (mean per run)', `${s(containerWork)} (${(containerWork / Math.max(1, containers.length) / 1000).toFixed(2)})`],
    ['wall time, s', s(run.wallMs)],
    ['bound: ℓ·N / min(C, I·S), s', s(b.llmThroughputMs)],
    ['bound: ℓ × longest trajectory, s', s(b.longestChainMs)],
    ['bound: first patch + Σ container / K, s', s(b.containerCapacityMs)],
    ['bound: verification tail after the last call, s', s(b.tailMs)],
    ['lower bound, s', s(b.boundMs)],
    ['wall / lower bound', Number(ratio.toFixed(3))],
    ['  the bound with the measured call latency for ℓ, s (wall / it)', `${s(measured.boundMs)} (${(run.wallMs / measured.boundMs).toFixed(2)})`],
    ['loop process CPU, s (main thread waiting for a CPU, s)', `${s(run.cpuMs)} (${s(run.waitMs)})`],
    ['loop process CPU per call, ms (of it kernel, ms)', `${(run.cpuMs / N).toFixed(2)} (${(run.systemMs / N).toFixed(2)})`],
    ["loop's thread CPU per call, ms", (run.threadMs / N).toFixed(2)],
    ['before the first LLM call, s', s(firstCall)],
    ['after the last LLM call, s', s(run.wallMs - lastCall)],
    [`all C LLM slots busy, s (share of the sampling span)`, `${s(saturated)} (${((100 * saturated) / Math.max(1, lastCall - firstCall)).toFixed(0)}%)`],
    ['mean LLM calls in flight (Σ call time / wall)', Number((callMs / run.wallMs).toFixed(2))],
    ['all K containers busy, s', s(timeAtLeast(containers, K))],
    ['LLM slots all busy while a container slot is idle, s', s(timeWhere([run.calls, containers], ([llm, box]) => llm! >= C && box! < K, 0, run.wallMs))],
    ['containers all busy while an LLM slot is idle, s', s(timeWhere([run.calls, containers], ([llm, box]) => llm! < C && box! >= K, 0, run.wallMs))],
    ['first trajectory of an instance ends at … of its sampling span (median)', `${(100 * lockstep(run)).toFixed(0)}%`],
    ['neither resource saturated (bubble), s', s(bubble)],
    ['  of which an instance slot waits on verification only, s', s(heldForVerification)],
  ];
  const containersIdle = timeWhere([run.calls, containers], ([llm, box]) => llm! >= C && box! < K, 0, run.wallMs);
  const llmIdle = timeWhere([run.calls, containers], ([llm, box]) => llm! < C && box! >= K, 0, run.wallMs);
  const explanation = [
    `${s(run.wallMs - b.boundMs)} s over the bound`,
    `calls took ${(callMs / N).toFixed(0)} ms for ℓ = ${run.config.latencyMs} ms: the loop's thread used ${s(run.cpuMs)} s of CPU and waited ${s(run.waitMs)} s for one on the shared machine (with the measured latency for ℓ the bound is ${s(measured.boundMs)} s, wall / it = ${(run.wallMs / measured.boundMs).toFixed(2)})`,
    `${s(containersIdle)} s with every LLM slot busy but a container idle: an instance's first trajectory ends at ${(100 * lockstep(run)).toFixed(0)}% of its sampling span (calls are scheduled furthest-trajectory-first; with C = ${run.config.llmConcurrency} slots shared by ${run.config.instancesInFlight} instances × ${run.config.samples} samples, the first C trajectories run ahead and end about halfway)`,
    `${s(llmIdle)} s with both containers busy but an LLM slot idle (${s(heldForVerification)} s with an instance slot held only for its verifications, so no new instance samples)`,
    `${s(bubble)} s with neither saturated; ${s(run.wallMs - lastCall)} s after the last call vs a ${s(b.tailMs)} s unavoidable tail`,
  ].join('; ');
  return { rows, ratio, explanation };
}

export function loopTable(runs: readonly LoopRun[], seconds: number): BenchTable {
  const figures = runs.map(loopFigures);
  const rows: Cell[][] = figures[0]!.rows.map(([label], i) => [label, ...figures.map((f) => f.rows[i]![1])]);
  const ratios: Record<string, number> = {};
  runs.forEach((run, i) => (ratios[i === 0 ? 'wall_over_bound' : `wall_over_bound_I${run.config.instancesInFlight}`] = figures[i]!.ratio));
  return {
    id: 'loop',
    title: `1. Loop overhead: one sample+verify iteration, ${runs[0]!.trajectories.length} trajectories, ℓ = ${runs[0]!.config.latencyMs} ms`,
    columns: ['figure', ...runs.map((r) => `I = ${r.config.instancesInFlight}`)],
    rows,
    ratios,
    targets: runs.map((run, i) => {
      const f = figures[i]!;
      const met = f.ratio <= 1.15;
      return {
        name: `wall / lower bound ≤ 1.15 (I = ${run.config.instancesInFlight})`,
        met,
        reason: met ? `${f.ratio.toFixed(3)}; ${f.explanation}` : `${f.ratio.toFixed(3)}: ${f.explanation}`,
      };
    }),
    notes: [
      'Bound: LLM = max(ℓ·N / min(C, I·S), ℓ·max_i n_i) — N calls of fixed latency ℓ, at most C at once and never more than I instances × S samples of trajectories, and one trajectory\'s calls are sequential; verification = ℓ·min_i n_i + Σ container time / K — no patch exists before the shortest trajectory ends and K containers run at once; tail = the shortest container run, counted when a container started after the last trajectory ended (its patch cannot be verified while any LLM call runs). Bound = max(LLM + tail, verification). Container durations are the measured ones (verdict.duration_ms), so CPU contention from the agent slows them and is not charged to the loop.',
      'The simulated policy runs in its own process, as a real endpoint would; its compute, HTTP, the agent\'s prompt building, code search, token counting and the ledgers (fsync per record) are loop overhead here.',
      'A "bubble" is time when neither resource is saturated: fewer than C calls in flight and fewer than K containers running. A loop that always has work for the bottleneck resource has no bubble.',
    ],
    seconds,
  };
}

/**
 * Per instance, when its first trajectory ends, as a share of its sampling span (slot taken →
 * last trajectory ended); the median over instances. Near 1: the samples advance in lockstep
 * (as they did behind one FIFO limit before ProgressScheduler), so the instance's patches arrive in one burst at
 * the end and the containers have nothing to verify until then.
 */
export function lockstep(run: LoopRun): number {
  const shares: number[] = [];
  for (const span of run.instanceSpans) {
    const ends = run.trajectories.map((t, i) => (t.instance_id === span.id ? run.trajectorySpans[i]!.end : null)).filter((e): e is number => e !== null);
    if (ends.length === 0) continue;
    const first = Math.min(...ends);
    const last = Math.max(...ends);
    if (last > span.start) shares.push((first - span.start) / (last - span.start));
  }
  shares.sort((a, b) => a - b);
  return shares.length ? shares[Math.floor(shares.length / 2)]! : 0;
}

/** Per instance: from its last trajectory's end to the slot's release (its verifications only). */
export function verifyingSlots(run: LoopRun): Interval[] {
  const lastEnd = new Map<string, number>();
  run.trajectories.forEach((t, i) => lastEnd.set(t.instance_id, Math.max(lastEnd.get(t.instance_id) ?? 0, run.trajectorySpans[i]!.end)));
  return run.instanceSpans.filter((span) => lastEnd.has(span.id)).map((span) => ({ start: lastEnd.get(span.id)!, end: span.end }));
}

/**
 * Runs the rollout once per instances-in-flight setting (BENCH_LOOP_IN_FLIGHT, default "2,4": the
 * recipe default and twice it), side by side; the first run's trajectories feed benchmarks 3 and 5.
 */
export async function loopBench(config: LoopConfig = loopConfigFromEnv(), inFlight: number[] = envList('BENCH_LOOP_IN_FLIGHT', [config.instancesInFlight, 2 * config.instancesInFlight])): Promise<{ table: BenchTable; runs: LoopRun[] }> {
  const started = performance.now();
  const runs: LoopRun[] = [];
  for (const I of inFlight) runs.push(await runLoop({ ...config, instancesInFlight: I }));
  return { runs, table: loopTable(runs, (performance.now() - started) / 1000) };
}
