import type { Trajectory } from '../agent/trajectory.js';
import { normalizePatch, patchHash } from '../verify/patch.js';
import { isFinal, type Outcome, type Verdict } from '../verify/verdict.js';

/** What is running right now, read when a line is printed. */
/** What progress reads of a trajectory: a ledger's record head is enough (no calls held). */
export type RecordedSample = Pick<Trajectory, 'instance_id' | 'sample_index' | 'outcome' | 'patch'>;

export interface ProgressGauges {
  llmCallsInFlight: number;
  containersRunning: number;
}

/** The counts of one progress line (also what the tests read). */
export interface ProgressCounts {
  total: number;
  /** Samples recorded before this process started (a resume), and recorded since. */
  recordedBefore: number;
  recordedNew: number;
  /** Trajectories (not patches) whose patch has verdict `resolved`. */
  resolvedTrajectories: number;
  /** Distinct (instance, patch) pairs with a final verdict, of those recorded. */
  patchesVerified: number;
  patchesQueued: number;
  infrastructureErrors: number;
  llmCallsInFlight: number;
  containersRunning: number;
  /** New trajectories per second since this process started; null before the first one. */
  rate: number | null;
  etaSeconds: number | null;
}

const patchKey = (instanceId: string, hash: string): string => `${instanceId}@${hash}`;

/**
 * Progress of a rollout phase: a live bar on a terminal, a plain line every few seconds otherwise
 * (logs, CI). One unit per figure: trajectories done of total (after a resume, those recorded
 * before apart from the new ones), trajectories resolved, distinct patches verified of those
 * queued, LLM calls in flight, containers running; the rate and ETA count new trajectories only.
 */
export class PhaseProgress {
  private recordedBefore = 0;
  private recordedNew = 0;
  private errors = 0;
  /** Trajectories per distinct patch, and each patch's final outcome once known. */
  private readonly trajectoriesOf = new Map<string, number>();
  private readonly outcomeOf = new Map<string, Outcome>();
  private gauges: () => ProgressGauges = () => ({ llmCallsInFlight: 0, containersRunning: 0 });
  private readonly started: number;
  private lastPrint = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly out: Pick<NodeJS.WriteStream, 'write'> & { isTTY?: boolean } = process.stderr,
    private readonly intervalMs = process.stderr.isTTY ? 200 : 5000,
    private readonly now: () => number = Date.now,
  ) {
    this.started = now();
    this.timer = setInterval(() => this.print(false), this.intervalMs);
    this.timer.unref();
  }

  /** What the ledgers held when the phase (re)started, and where to read the live gauges. */
  /** Returns how many samples were recorded before (0: a fresh phase). */
  recorded(trajectories: Iterable<RecordedSample>, verdicts: Iterable<Pick<Verdict, 'instance_id' | 'patch_hash' | 'outcome'>>, gauges?: () => ProgressGauges): number {
    const samples = new Set<string>();
    for (const t of trajectories) {
      if (t.outcome.status === 'error' && t.outcome.fault === 'infrastructure') continue;
      samples.add(`${t.instance_id}#${t.sample_index}`);
      this.addTrajectory(t);
    }
    this.recordedBefore = samples.size;
    for (const v of verdicts) this.verdict(v);
    if (gauges) this.gauges = gauges;
    return this.recordedBefore;
  }

  trajectory(t: RecordedSample): void {
    this.recordedNew += 1;
    this.addTrajectory(t);
  }

  verdict(v: Pick<Verdict, 'instance_id' | 'patch_hash' | 'outcome'>): void {
    if (isFinal(v.outcome)) this.outcomeOf.set(patchKey(v.instance_id, v.patch_hash), v.outcome);
  }

  error(): void {
    this.errors += 1;
  }

  counts(): ProgressCounts {
    let resolved = 0;
    let verified = 0;
    for (const [key, n] of this.trajectoriesOf) {
      const outcome = this.outcomeOf.get(key);
      if (outcome !== undefined) verified += 1;
      if (outcome === 'resolved') resolved += n;
    }
    const seconds = (this.now() - this.started) / 1000;
    const rate = this.recordedNew > 0 && seconds > 0 ? this.recordedNew / seconds : null;
    const left = Math.max(0, this.total - this.recordedBefore - this.recordedNew);
    const gauges = this.gauges();
    return {
      total: this.total,
      recordedBefore: this.recordedBefore,
      recordedNew: this.recordedNew,
      resolvedTrajectories: resolved,
      patchesVerified: verified,
      patchesQueued: this.trajectoriesOf.size,
      infrastructureErrors: this.errors,
      llmCallsInFlight: gauges.llmCallsInFlight,
      containersRunning: gauges.containersRunning,
      rate,
      etaSeconds: left === 0 ? 0 : rate !== null ? left / rate : null,
    };
  }

  finish(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.print(true);
    if (this.out.isTTY) this.out.write('\n');
  }

  private addTrajectory(t: RecordedSample): void {
    const key = patchKey(t.instance_id, patchHash(normalizePatch(t.patch)));
    this.trajectoriesOf.set(key, (this.trajectoriesOf.get(key) ?? 0) + 1);
  }

  /** One line of the counts; `final` says how long the phase took instead of the ETA. */
  line(final: boolean): string {
    const c = this.counts();
    const done = c.recordedBefore + c.recordedNew;
    const resumed = c.recordedBefore > 0 ? ` (${c.recordedBefore} recorded before, ${c.recordedNew} new)` : '';
    const seconds = (this.now() - this.started) / 1000;
    const parts = [
      `${done}/${c.total} trajectories${resumed}`,
      `${c.resolvedTrajectories} resolved`,
      `patches verified ${c.patchesVerified}/${c.patchesQueued}`,
      ...(final ? [] : [`${c.llmCallsInFlight} LLM calls in flight`, `${c.containersRunning} containers running`]),
      ...(c.infrastructureErrors ? [`${c.infrastructureErrors} infrastructure errors (retried on resume)`] : []),
      c.rate !== null ? `${c.rate.toFixed(2)} new trajectories/s` : 'no new trajectories yet',
      final ? `took ${formatDuration(seconds)}` : `ETA ${c.etaSeconds !== null ? formatDuration(c.etaSeconds) : '?'}`,
    ];
    return parts.join(this.out.isTTY ? ' · ' : ', ');
  }

  private print(final: boolean): void {
    const now = this.now();
    if (!final && !this.out.isTTY && now - this.lastPrint < this.intervalMs) return;
    this.lastPrint = now;
    const text = this.line(final);
    if (this.out.isTTY) {
      const c = this.counts();
      const width = 20;
      const done = c.recordedBefore + c.recordedNew;
      const filled = this.total ? Math.round((width * Math.min(done, this.total)) / this.total) : width;
      this.out.write(`\r\x1b[2K[${this.label}] ${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${text}`);
    } else {
      this.out.write(`[${this.label}] ${text}\n`);
    }
  }
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}
