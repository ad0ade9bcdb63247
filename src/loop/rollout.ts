import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type Docker from 'dockerode';
import pLimit from 'p-limit';
import { prepareInstance } from '../agent/instance-workspace.js';
import type { Trajectory } from '../agent/trajectory.js';
import { runTrajectory, TrajectoryStoppedError, type AgentSettings } from '../agent/run.js';
import { deriveSeed } from '../policy/seed.js';
import type { PolicyClient } from '../policy/types.js';
import { LABEL } from '../sandbox/container.js';
import type { EnginePool } from '../sandbox/engine-pool.js';
import { ImagePullError } from '../sandbox/images.js';
import type { PulledImages } from '../sandbox/pulled-images.js';
import { writeFileAtomic } from '../store/atomic.js';
import { Ledger, readRecords } from '../store/ledger.js';
import { readTrajectoryHeads, TrajectoryLedger, type TrajectoryHead } from '../store/trajectories.js';
import type { Instance } from '../tasks/instance.js';
import type { VerifyContext } from '../verify/run.js';
import type { EvalSpec } from '../verify/spec.js';
import { VerdictSchema, isFinal, type Verdict } from '../verify/verdict.js';
import { Verifier } from '../verify/verifier.js';
import { runLayout } from './layout.js';
import { ProgressScheduler, ScheduledPolicy } from './limited-policy.js';

export interface RolloutPlan {
  /** Names the rollout in seeds and labels: `iter-<k>` or `eval-m<m>`. */
  phase: string;
  runName: string;
  runSeed: number;
  iteration: number;
  instances: readonly Instance[];
  samplesPerInstance: number;
  sampling: { temperature: number; top_p: number };
  agent: AgentSettings;
  encoding: 'cl100k_base' | 'o200k_base';
  trajectoriesFile: string;
  verdictsFile: string;
  /**
   * A shard worker's own ledgers (shardLedgerFile of the two above): new records go there, while
   * what is recorded is read from the whole ledger (the named files and every shard's part).
   */
  appendTo?: { trajectories: string; verdicts: string };
}

export interface RolloutResources {
  docker: Docker;
  /** The address of `docker` (sandbox.docker[0].url): which engine an image was pulled on. */
  engineUrl: string;
  policy: PolicyClient;
  imageFor: (instance: Instance) => string;
  specFor: (instance: Instance) => EvalSpec;
  verifyContext: VerifyContext;
  llmConcurrency: number;
  containerConcurrency: number;
  instancesInFlight: number;
  pullImages: boolean;
  /** Several engines (sandbox.docker lists more than one): verifications are spread over them. */
  engines?: EnginePool;
  /** Remove, once an instance is verified, its image if this run pulled it (never one that was there before). */
  removeImagesAfterUse: boolean;
  /** The run's record of the images it pulled (run dir, pulled-images.jsonl). */
  pulledImages: PulledImages;
  /** Harness failures allowed on one patch before the last is final (sandbox.max_error_attempts); unset: no limit. */
  maxErrorAttempts?: number;
  /** Set when the user asked to stop: no new work starts. */
  stopping: () => boolean;
  progress?: (event: RolloutEvent) => void;
  warn?: (message: string) => void;
  log?: (message: string) => void;
}

export type RolloutEvent =
  /**
   * Once, first: what the ledgers already held (streamed: read them as they come, keep nothing you
   * do not need), and live counts of what runs (for progress).
   */
  | { kind: 'recorded'; trajectories: Iterable<TrajectoryHead>; verdicts: Iterable<Verdict>; gauges: () => { llmCallsInFlight: number; containersRunning: number } }
  | { kind: 'trajectory'; trajectory: Trajectory }
  | { kind: 'infra_error'; instance_id: string; sample_index: number; reason: string }
  | { kind: 'verdict'; verdict: Verdict }
  /** An instance took a sampling slot (started), gave it back (sampled), and had every patch verified (done). */
  | { kind: 'instance'; instance_id: string; status: 'started' | 'sampled' | 'done'; detail?: string };

/** What a rollout did; its records are in the ledgers (read them with src/store's readers). */
export interface RolloutSummary {
  /** Trajectory records in the ledger at the end (resumed ones included). */
  recorded: number;
  /** Samples that could not be recorded this time (endpoint down): retried on resume. */
  infraErrors: number;
  /** Verifications that failed for the harness's reasons: retried on resume. */
  verifyErrors: number;
  /** Every sample is recorded and every recorded patch has a final verdict. */
  complete: boolean;
  /**
   * Trajectories the user's stop ended at an LLM call boundary, unrecorded (resume runs them
   * again from the start), and what their calls cost: the price of the stop.
   */
  abandoned: { trajectories: number; llm_calls: number; tokens: { prompt: number; completion: number } };
}

/** Distinct reasons of infrastructure errors told per rollout; the rest are only counted. */
const MAX_INFRA_REASONS_SHOWN = 5;

/** Distinct reasons of failed verifications told per rollout; the rest are only counted. */
const MAX_VERIFY_REASONS_SHOWN = 5;

function saveVerifyLog(file: string, log: string): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, log);
}

/** The seed of one sample: a resumed run draws exactly what an uninterrupted one would. */
export function sampleSeed(runSeed: number, phase: string, instanceId: string, sampleIndex: number): number {
  return deriveSeed(runSeed, phase, instanceId, sampleIndex);
}

/**
 * Samples and verifies, instance by instance (design §1; SWE-Gym images are 2–3 GB, so only a
 * bounded number of instances has its image on disk at once): image present, repository snapshot
 * taken once, the missing samples run (LLM calls bounded across all instances), each recorded
 * patch verified as soon as it exists (containers bounded), the image removed if asked.
 * Everything already in the ledgers is skipped, so a resumed rollout redoes only what is missing.
 */
export async function rollout(plan: RolloutPlan, res: RolloutResources): Promise<RolloutSummary> {
  const writeTrajectories = plan.appendTo?.trajectories ?? plan.trajectoriesFile;
  const writeVerdicts = plan.appendTo?.verdicts ?? plan.verdictsFile;
  if (plan.appendTo) mkdirSync(path.dirname(writeTrajectories), { recursive: true });
  const trajectoryLedger = TrajectoryLedger.open(writeTrajectories, (bytes) => res.warn?.(`${writeTrajectories}: dropped a torn last line (${bytes} bytes)`));
  const verdictLedger = Ledger.open(writeVerdicts, VerdictSchema, (bytes) => res.warn?.(`${writeVerdicts}: dropped a torn last line (${bytes} bytes)`));

  const verifier = new Verifier(res.verifyContext, {
    concurrency: res.containerConcurrency,
    ...(res.engines ? { engines: res.engines } : {}),
    specFor: res.specFor,
    known: [...readRecords(plan.verdictsFile, VerdictSchema)],
    ...(res.maxErrorAttempts !== undefined ? { maxErrorAttempts: res.maxErrorAttempts } : {}),
    onVerdict: (verdict, log) => {
      // The log first: a verdict on disk always has its log beside it (rft show, trajectory pages).
      if (log !== '') saveVerifyLog(runLayout.verifyLog(plan.verdictsFile, verdict.instance_id, verdict.patch_hash), log);
      verdictLedger.ledger.append(verdict);
      res.progress?.({ kind: 'verdict', verdict });
    },
  });

  // The resume scan: record heads only, one at a time (a ledger may be gigabytes). What is kept:
  // which samples are recorded, and the patches still waiting for a final verdict.
  const byId = new Map(plan.instances.map((i) => [i.instance_id, i]));
  const done = new Set<string>();
  const unverifiedOf = new Map<string, string[]>();
  let recorded = 0;
  /** Recorded patches without a final verdict yet (the rollout is complete only at 0). */
  let pendingVerifications = 0;
  for (const { head } of readTrajectoryHeads(plan.trajectoriesFile)) {
    recorded += 1;
    done.add(sampleKey(head.instance_id, head.sample_index));
    const instance = byId.get(head.instance_id);
    if (instance === undefined || verifier.cached(instance, head.patch) !== undefined) continue;
    pendingVerifications += 1;
    unverifiedOf.set(head.instance_id, [...(unverifiedOf.get(head.instance_id) ?? []), head.patch]);
  }

  // LLM calls: at most C in flight, the trajectory furthest along first (see ProgressScheduler).
  const scheduler = new ProgressScheduler(res.llmConcurrency);
  res.progress?.({
    kind: 'recorded',
    trajectories: (function* () {
      for (const { head } of readTrajectoryHeads(plan.trajectoriesFile)) yield head;
    })(),
    verdicts: readRecords(plan.verdictsFile, VerdictSchema),
    gauges: () => ({ llmCallsInFlight: scheduler.inFlight, containersRunning: verifier.running }),
  });
  // An instance holds a sampling slot (I of them) while it samples, and gives it up when its
  // sampling ends, so the next instance samples while its patches are verified. Its image stays
  // on disk until its verifications end: images present are bounded separately, by 2 × I.
  const samplingLimit = pLimit(res.instancesInFlight);
  const imageLimit = pLimit(2 * res.instancesInFlight);
  let infraErrors = 0;
  let verifyErrors = 0;
  const abandoned: RolloutSummary['abandoned'] = { trajectories: 0, llm_calls: 0, tokens: { prompt: 0, completion: 0 } };
  // Why samples failed is not recorded (they are not data): say it, once per distinct reason.
  const infraReasons = new Set<string>();
  const tellInfraError = (instanceId: string, sampleIndex: number, reason: string): void => {
    if (infraReasons.has(reason) || infraReasons.size > MAX_INFRA_REASONS_SHOWN) return;
    infraReasons.add(reason);
    res.warn?.(
      infraReasons.size > MAX_INFRA_REASONS_SHOWN
        ? 'more infrastructure errors with other reasons: counted, not shown'
        : `${instanceId} sample ${sampleIndex}: the policy endpoint failed, the sample is not recorded (retried on resume): ${reason}`,
    );
  };

  // A verification the harness failed (engine down, image gone, container killed) is recorded as
  // `error` and retried on resume; say why, once per distinct reason, or the run stops unexplained.
  const verifyReasons = new Set<string>();
  const verifyOne = async (instance: Instance, patch: string): Promise<void> => {
    const verdict = await verifier.verify(instance, patch);
    if (verdict.outcome === 'repeated_error') res.warn?.(`${instance.instance_id}: a verification failed for the harness's reasons once too often: recorded as final (${verdict.reason})`);
    if (isFinal(verdict.outcome)) {
      pendingVerifications -= 1;
      return;
    }
    verifyErrors += 1;
    const reason = verdict.reason ?? 'no reason given';
    if (verifyReasons.has(reason) || verifyReasons.size >= MAX_VERIFY_REASONS_SHOWN) return;
    verifyReasons.add(reason);
    res.warn?.(`${instance.instance_id}: a verification failed for the harness's reasons, not the patch's (retried on resume): ${reason}${engineHint(reason)}`);
  };

  const engines = (): { docker: Docker; url: string }[] => (res.engines ? res.engines.healthy() : [{ docker: res.docker, url: res.engineUrl }]);

  const work = async (instance: Instance): Promise<void> => {
    if (res.stopping()) return;
    const missing = range(plan.samplesPerInstance).filter((s) => !done.has(sampleKey(instance.instance_id, s)));
    const unverified = unverifiedOf.get(instance.instance_id) ?? [];
    unverifiedOf.delete(instance.instance_id);
    if (missing.length === 0 && unverified.length === 0) return;
    const image = res.imageFor(instance);
    const verifications: Promise<void>[] = [];
    try {
      await samplingLimit(async () => {
        if (res.stopping()) return;
        res.progress?.({ kind: 'instance', instance_id: instance.instance_id, status: 'started' });
        let lastReport = 0;
        // Every engine that may run this instance's containers needs its image.
        for (const { docker, url } of engines()) await res.pulledImages.ensure(docker, url, image, {
          pull: res.pullImages,
          // A pull of a 2-3 GB image takes minutes: say how far it is, every few seconds.
          onProgress: (p) => {
            if (!p.done && Date.now() - lastReport < 5000) return;
            lastReport = Date.now();
            const mb = (n: number) => (n / 1024 ** 2).toFixed(0);
            res.log?.(`pulling ${image}: ${p.layersDone}/${p.layersTotal} layers, ${mb(p.bytesDownloaded)}/${mb(p.bytesTotal)} MB${p.done ? ' (done)' : ''}`);
          },
        });
        for (const patch of unverified) verifications.push(verifyOne(instance, patch));
        if (missing.length === 0) return;
        const { release, ...prepared } = await prepareInstance(res.docker, image, { ...res.verifyContext.labels, [LABEL.run]: plan.runName });
        try {
          await Promise.all(
            missing.map(async (sampleIndex) => {
              if (res.stopping()) return;
              let trajectory: Trajectory;
              try {
                trajectory = await runTrajectory({
                  ids: { run: plan.runName, iteration: plan.iteration, instance_id: instance.instance_id, sample_index: sampleIndex },
                  seed: sampleSeed(plan.runSeed, plan.phase, instance.instance_id, sampleIndex),
                  instance,
                  ...prepared,
                  policy: new ScheduledPolicy(res.policy, scheduler, res.stopping),
                  agent: plan.agent,
                  sampling: plan.sampling,
                  encoding: plan.encoding,
                  stopping: res.stopping,
                });
              } catch (err) {
                // Stopped at a call boundary: nothing recorded, its cost counted (see RolloutSummary).
                if (!(err instanceof TrajectoryStoppedError)) throw err;
                abandoned.trajectories += 1;
                abandoned.llm_calls += err.llmCalls;
                abandoned.tokens.prompt += err.usage.prompt_tokens;
                abandoned.tokens.completion += err.usage.completion_tokens;
                return;
              }
              if (trajectory.outcome.status === 'error' && trajectory.outcome.fault === 'infrastructure') {
                infraErrors += 1;
                tellInfraError(instance.instance_id, sampleIndex, trajectory.outcome.reason);
                res.progress?.({ kind: 'infra_error', instance_id: instance.instance_id, sample_index: sampleIndex, reason: trajectory.outcome.reason });
                return;
              }
              // A trajectory that ended whole is a sample, even after a stop (its calls are paid):
              // it is recorded, and after a stop its patch is left for the resume to verify.
              trajectoryLedger.append(trajectory);
              recorded += 1;
              done.add(sampleKey(instance.instance_id, sampleIndex));
              res.progress?.({ kind: 'trajectory', trajectory });
              if (verifier.cached(instance, trajectory.patch) === undefined) {
                pendingVerifications += 1;
                if (!res.stopping()) verifications.push(verifyOne(instance, trajectory.patch));
              }
            }),
          );
        } finally {
          // The samples taken, the instance's snapshot and index are let go (its patches verify without them).
          release();
        }
      });
      // The sampling slot is free again: the next instance samples while these verify.
      res.progress?.({ kind: 'instance', instance_id: instance.instance_id, status: 'sampled' });
      await Promise.all(verifications);
      if (res.removeImagesAfterUse && !res.stopping()) {
        // Only what this run pulled: an image that was there before (built locally) stays.
        for (const { docker, url } of engines()) {
          const removed = await res.pulledImages.removeIfPulled(docker, url, image);
          if (removed?.warning) res.warn?.(`${image}: ${removed.warning}`);
        }
      }
      res.progress?.({ kind: 'instance', instance_id: instance.instance_id, status: 'done' });
    } catch (err) {
      // The instance could not be worked on (image missing, engine trouble): later instances go on,
      // and a resume retries this one. Verifications already started end on their own.
      await Promise.allSettled(verifications);
      infraErrors += 1;
      const hint = err instanceof ImagePullError ? ` (an image built locally rather than pulled is built again with: rft tasks build-images <tasks file>)` : engineHint((err as Error).message);
      res.warn?.(`${instance.instance_id}: ${(err as Error).message}${hint}`);
      res.progress?.({ kind: 'instance', instance_id: instance.instance_id, status: 'done', detail: (err as Error).message });
    }
  };

  try {
    await Promise.all(plan.instances.map((instance) => imageLimit(() => work(instance))));
  } finally {
    trajectoryLedger.close();
    verdictLedger.ledger.close();
  }
  const complete =
    !res.stopping() && plan.instances.every((i) => range(plan.samplesPerInstance).every((s) => done.has(sampleKey(i.instance_id, s)))) && pendingVerifications === 0;
  return { recorded, infraErrors, verifyErrors, complete, abandoned };
}

/** Socket errors of the engine's connection mean little to a reader: say what they mean. */
function engineHint(message: string): string {
  return /\b(ECONNRESET|ECONNREFUSED|EPIPE|socket hang up)\b/.test(message) ? ' (the Docker engine dropped or refused the connection: it stopped or restarted)' : '';
}

function sampleKey(instanceId: string, sampleIndex: number): string {
  return `${instanceId}#${sampleIndex}`;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
