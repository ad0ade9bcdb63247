/**
 * Benchmark 3 — verification dedup: on one pool of sampled trajectories (benchmark 1's, the same
 * patches), container runs and wall time of the Verifier (verdict cache + in-flight dedup) vs
 * naive verification (one fresh container per trajectory, verifyPatch directly), same container
 * concurrency. Empty patches need no container in either.
 */
import { performance } from 'node:perf_hooks';
import pLimit from 'p-limit';
import type { Trajectory } from '../src/agent/trajectory.js';
import { LABEL, reapContainers } from '../src/sandbox/container.js';
import { connectEngine } from '../src/sandbox/engine.js';
import type { Instance } from '../src/tasks/instance.js';
import { normalizePatch } from '../src/verify/patch.js';
import { verifyPatch, type VerifyContext } from '../src/verify/run.js';
import type { Verdict } from '../src/verify/verdict.js';
import { Verifier } from '../src/verify/verifier.js';
import { envInt } from './lib/env.js';
import { imageFor, LIMITS, specCache } from './lib/fixtures.js';
import type { BenchTable } from './lib/table.js';

export interface DedupConfig {
  /** Instances of the pool to verify (all their samples); 0 = all. */
  instances: number;
  containerConcurrency: number;
}

export function dedupConfigFromEnv(): DedupConfig {
  return { instances: envInt('BENCH_DEDUP_INSTANCES', 2), containerConcurrency: envInt('BENCH_CONTAINERS', 2) };
}

export async function dedupBench(pool: readonly Trajectory[], allInstances: readonly Instance[], config: DedupConfig = dedupConfigFromEnv()): Promise<BenchTable> {
  const started = performance.now();
  const docker = await connectEngine();
  const ids = [...new Set(pool.map((t) => t.instance_id))];
  const chosen = new Set(config.instances > 0 ? ids.slice(0, config.instances) : ids);
  const instances = new Map(allInstances.filter((i) => chosen.has(i.instance_id)).map((i) => [i.instance_id, i]));
  const trajectories = pool.filter((t) => chosen.has(t.instance_id));
  const runName = `bench-dedup-${process.pid}`;
  const ctx: VerifyContext = { docker, imageFor, limits: LIMITS, labels: { [LABEL.run]: runName } };
  const specFor = specCache();
  const K = config.containerConcurrency;
  try {
    // With the cache: every trajectory asks, concurrently, as rollout's pipeline does.
    const verifier = new Verifier(ctx, { concurrency: K, specFor });
    const t0 = performance.now();
    const cached = await Promise.all(trajectories.map((t) => verifier.verify(instances.get(t.instance_id)!, t.patch)));
    const cachedMs = performance.now() - t0;

    // Naive: one container per trajectory (an empty patch still needs none).
    const limit = pLimit(K);
    let naiveRuns = 0;
    const t1 = performance.now();
    const naive = await Promise.all(
      trajectories.map((t) =>
        limit(async () => {
          const { verdict } = await verifyPatch(ctx, instances.get(t.instance_id)!, specFor(instances.get(t.instance_id)!), t.patch);
          if (verdict.outcome !== 'empty_patch') naiveRuns += 1;
          return verdict;
        }),
      ),
    );
    const naiveMs = performance.now() - t1;

    const disagree = trajectories.filter((_, i) => cached[i]!.outcome !== naive[i]!.outcome).length;
    const errors = [...cached, ...naive].filter((v: Verdict) => v.outcome === 'error').length;
    const n = trajectories.length;
    const empty = trajectories.filter((t) => normalizePatch(t.patch) === '').length;
    const distinct = new Set(trajectories.filter((t) => normalizePatch(t.patch) !== '').map((t) => `${t.instance_id}\u0000${normalizePatch(t.patch)}`)).size;
    const cacheRuns = verifier.stats.containerRuns;
    const runsRatio = cacheRuns / Math.max(1, naiveRuns);
    const timeRatio = cachedMs / naiveMs;
    return {
      id: 'dedup',
      title: `3. Verification dedup: ${n} trajectories of ${instances.size} instances, K = ${K} containers`,
      columns: ['version', 'trajectories', 'container runs', 'runs / trajectory', 'wall s', 's / trajectory'],
      rows: [
        ['verdict cache (Verifier)', n, cacheRuns, Number((cacheRuns / n).toFixed(3)), Number((cachedMs / 1000).toFixed(1)), Number((cachedMs / 1000 / n).toFixed(3))],
        ['naive: a container per trajectory', n, naiveRuns, Number((naiveRuns / n).toFixed(3)), Number((naiveMs / 1000).toFixed(1)), Number((naiveMs / 1000 / n).toFixed(3))],
      ],
      ratios: { container_runs_cache_over_naive: runsRatio, wall_cache_over_naive: timeRatio },
      targets: [
        {
          name: 'the cache verifies each distinct non-empty patch once',
          met: cacheRuns === distinct,
          reason: `${cacheRuns} container runs for ${distinct} distinct non-empty patches (${empty} empty patches need none); time saved ${((naiveMs - cachedMs) / 1000).toFixed(1)} s = ${(100 * (1 - timeRatio)).toFixed(0)}% of the naive wall time`,
        },
        {
          name: 'same verdict for every trajectory either way',
          met: disagree === 0,
          reason: disagree === 0 ? `all ${n} agree${errors ? ` (${errors} harness errors)` : ''}` : `${disagree} of ${n} differ (${errors} harness errors): the tests are not deterministic or the harness failed`,
        },
      ],
      notes: [
        `The pool is benchmark 1's first rollout (30 samples per instance, T = 1.0), restricted to ${instances.size} instance(s) (BENCH_DEDUP_INSTANCES) to keep the naive run short; both versions verify exactly these trajectories, in a fresh container each time a container is run, K = ${K} at once.`,
        'Thirty samples of one task at T = 1 mostly end in a few patches (the simulated policy reproduces the gold fix or one of a few wrong edits), so the cache runs a handful of containers where the naive version runs one per trajectory.',
      ],
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    await reapContainers(docker, { [LABEL.run]: runName }).catch(() => 0);
  }
}
