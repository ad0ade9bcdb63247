/**
 * Progress of a phase: a live bar on a terminal, a plain line every few seconds otherwise (logs,
 * CI). Counts: trajectories done of total, verified, resolved so far.
 */
export class PhaseProgress {
  private done = 0;
  private verified = 0;
  private resolved = 0;
  private errors = 0;
  private readonly started = Date.now();
  private lastPrint = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly intervalMs = process.stderr.isTTY ? 200 : 5000,
    alreadyDone = 0,
  ) {
    this.done = alreadyDone;
    this.timer = setInterval(() => this.print(false), this.intervalMs);
    this.timer.unref();
  }

  trajectory(): void {
    this.done += 1;
  }

  verdict(resolved: boolean): void {
    this.verified += 1;
    if (resolved) this.resolved += 1;
  }

  error(): void {
    this.errors += 1;
  }

  finish(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.print(true);
    if (this.out.isTTY) this.out.write('\n');
  }

  private print(final: boolean): void {
    const now = Date.now();
    if (!final && !this.out.isTTY && now - this.lastPrint < this.intervalMs) return;
    this.lastPrint = now;
    const seconds = Math.max(0.001, (now - this.started) / 1000);
    const rate = this.done / seconds;
    const left = Math.max(0, this.total - this.done);
    const eta = rate > 0 ? formatDuration(left / rate) : '?';
    const parts = [
      `${this.done}/${this.total} trajectories`,
      `${this.verified} verified`,
      `${this.resolved} resolved`,
      ...(this.errors ? [`${this.errors} infrastructure errors (retried on resume)`] : []),
      `${rate.toFixed(1)}/s`,
      final ? `took ${formatDuration(seconds)}` : `ETA ${eta}`,
    ];
    if (this.out.isTTY) {
      const width = 20;
      const filled = this.total ? Math.round((width * Math.min(this.done, this.total)) / this.total) : width;
      this.out.write(`\r\x1b[2K[${this.label}] ${'█'.repeat(filled)}${'░'.repeat(width - filled)} ${parts.join(' · ')}`);
    } else {
      this.out.write(`[${this.label}] ${parts.join(', ')}\n`);
    }
  }
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}
