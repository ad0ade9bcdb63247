/**
 * Benchmark 5 — token counting: js-tiktoken throughput on the prompts the agent really sends
 * (every call of benchmark 1's trajectories: system prompts, issues, file contexts, histories,
 * completions) and its share of the loop: the tokens record() counts per trajectory, at that
 * throughput, against the rollout's wall time and CPU time.
 */
import { performance } from 'node:perf_hooks';
import { Tiktoken } from 'js-tiktoken/lite';
import cl100k from 'js-tiktoken/ranks/cl100k_base';
import type { Trajectory } from '../src/agent/trajectory.js';
import { countTokensUncached, TokenCounter } from '../src/util/tokens.js';
import type { BenchTable } from './lib/table.js';

export interface LoopTiming {
  wallMs: number;
  cpuMs: number;
}

/** The texts record() counts for one trajectory (messagesTokens of every call's messages and completion). */
function textsOf(t: Trajectory): string[] {
  const out: string[] = [];
  for (const call of t.calls) {
    for (const m of [...call.messages, call.completion]) {
      out.push(m.content ?? '');
      if (m.role === 'assistant') for (const c of m.tool_calls ?? []) out.push(c.function.name + c.function.arguments);
    }
  }
  return out;
}

const cpuMsSince = (start: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
};

export function tokensBench(trajectories: readonly Trajectory[], loop: LoopTiming): BenchTable {
  const started = performance.now();
  const t0 = performance.now();
  const fresh = new Tiktoken(cl100k);
  const loadMs = performance.now() - t0;
  void fresh;

  countTokensUncached('warm up');
  const texts = trajectories.flatMap(textsOf);
  const chars = texts.reduce((a, t) => a + t.length, 0);

  // Uncached, as before the cache: every text through the BPE. CPU time (the machine is shared:
  // wall time would count the time others had the CPU). Best of two passes.
  let uncachedCpu = Infinity;
  let uncachedWall = Infinity;
  let tokens = 0;
  for (let pass = 0; pass < 2; pass++) {
    const c0 = process.cpuUsage();
    const w0 = performance.now();
    let n = 0;
    for (const text of texts) n += countTokensUncached(text);
    uncachedCpu = Math.min(uncachedCpu, cpuMsSince(c0));
    uncachedWall = Math.min(uncachedWall, performance.now() - w0);
    tokens = n;
  }
  // Cached (src/util/tokens.ts TokenCounter), from cold, in the order the rollout recorded them.
  const counter = new TokenCounter('cl100k_base');
  const c1 = process.cpuUsage();
  let cachedTokens = 0;
  for (const text of texts) cachedTokens += counter.count(text);
  const cachedCpu = cpuMsSince(c1);
  if (cachedTokens !== tokens) throw new Error(`the cached count ${cachedTokens} differs from the uncached ${tokens}`);
  const hitRate = counter.hits / Math.max(1, counter.hits + counter.misses);

  const n = trajectories.length;
  const tokensPerCpuS = tokens / (uncachedCpu / 1000);
  // The rollout ran with the cache: its CPU time holds cachedCpu; without the cache it would hold uncachedCpu instead.
  const shareNow = cachedCpu / loop.cpuMs;
  const loopWithout = loop.cpuMs - cachedCpu + uncachedCpu;
  const shareWithout = uncachedCpu / loopWithout;
  return {
    id: 'tokens',
    title: `5. Token counting (js-tiktoken cl100k_base) on ${n} trajectories' prompts`,
    columns: ['figure', 'uncached', 'cached (TokenCounter)'],
    rows: [
      ['texts counted (every message and completion of every call)', texts.length, texts.length],
      ['characters, MB / tokens', `${(chars / 1e6).toFixed(2)} / ${tokens}`, `${(chars / 1e6).toFixed(2)} / ${cachedTokens}`],
      ['CPU time to count them all, s', Number((uncachedCpu / 1000).toFixed(2)), Number((cachedCpu / 1000).toFixed(3))],
      ['wall time, s', Number((uncachedWall / 1000).toFixed(2)), null],
      ['throughput, tokens per CPU-second', Math.round(tokensPerCpuS), Math.round(tokens / (cachedCpu / 1000))],
      ['throughput, MB of text per CPU-second', Number((chars / 1e6 / (uncachedCpu / 1000)).toFixed(2)), Number((chars / 1e6 / (cachedCpu / 1000)).toFixed(1))],
      ['cache hits (texts counted before)', null, `${(100 * hitRate).toFixed(1)}%`],
      ['tokens counted per trajectory', Math.round(tokens / n), Math.round(tokens / n)],
      ['CPU per trajectory, ms', Number((uncachedCpu / n).toFixed(2)), Number((cachedCpu / n).toFixed(2))],
      ['share of the loop process CPU (rollout of benchmark 1)', `${(100 * shareWithout).toFixed(1)}%`, `${(100 * shareNow).toFixed(1)}%`],
      ['share of the rollout wall time', `${((100 * uncachedCpu) / loop.wallMs).toFixed(1)}%`, `${((100 * cachedCpu) / loop.wallMs).toFixed(1)}%`],
      ['encoder construction (once per process), ms', Math.round(loadMs), Math.round(loadMs)],
    ],
    ratios: {
      uncached_share_of_loop_cpu: shareWithout,
      cached_share_of_loop_cpu: shareNow,
      cached_cpu_over_uncached: cachedCpu / uncachedCpu,
      uncached_share_of_wall: uncachedCpu / loop.wallMs,
      tokens_per_cpu_s: tokensPerCpuS,
    },
    targets: [],
    notes: [
      `Counting happens once, when a trajectory is recorded (workflow.ts record → messagesTokens → countTokens), on the loop's only thread, so its CPU time is taken from prompt building and HTTP handling for every other trajectory in flight. The rollout of benchmark 1 took ${(loop.wallMs / 1000).toFixed(1)} s of wall time and ${(loop.cpuMs / 1000).toFixed(1)} s of loop-process CPU, with the cache; "uncached" shares are what the rollout's CPU would be with the uncached count instead.`,
      `The cache (src/util/tokens.ts TokenCounter, at most 16 M characters, least recently used out) skips texts counted before: each state's system prompt is re-sent on every call, and the samples of one task share their first prompts. With the SIMULATED policy, whose trajectories of one task often coincide, ${(100 * hitRate).toFixed(0)}% of the texts are repeats; with a real model only the system prompts and the first call's prompt of every sample are (roughly a third to a half of the calls' texts).`,
    ],
    seconds: (performance.now() - started) / 1000,
  };
}
