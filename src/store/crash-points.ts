import path from 'node:path';

/**
 * TEST-ONLY FAULT INJECTION. Named places the code passes through where a crash is worth
 * testing (a ledger line half written, a state file written but not yet renamed, a phase
 * boundary). They do nothing unless the environment variable RFT_CRASH_AT names one:
 *
 *   RFT_CRASH_AT=<point>[@<subject>]:<n>
 *
 * and then the process SIGKILLs itself — no exit handler, no finally block, no flush: what a
 * power cut or `kill -9` leaves — the n-th time it reaches that point (with that subject). The
 * subject of a file's point is its path; `@<subject>` matches the whole path or any ending of it
 * at a `/`, e.g. `ledger.append.mid-line@iter-0/trajectories.jsonl:2`. Without `@` every subject
 * counts. test/reliability/crash-anywhere.test.ts kills `rft` at these points and resumes it.
 *
 * The variable is read once, when this module loads; unset, `crashPoint` returns at its first
 * test and `crashArmed` is false, so the normal paths pay nothing.
 */

export const CRASH_POINTS = {
  /** Ledger.append, armed only: half of the line's bytes are written (a torn last line). */
  ledgerMidLine: 'ledger.append.mid-line',
  /** Ledger.append: the whole line is written, not yet fsynced. */
  ledgerBeforeFsync: 'ledger.append.before-fsync',
  /** writeFileAtomic: the temp file is written and fsynced, not yet renamed over the target. */
  atomicBeforeRename: 'atomic.before-rename',
  /** writeFileAtomic: renamed, the folder not yet fsynced. */
  atomicBeforeDirSync: 'atomic.before-dirsync',
  /** The loop is about to start a phase; the subject is its state.json key (`iter-0/sample`, `iter-0/select`, `iter-0/finetune`, `serve/m1`, `eval/m1`). */
  loopPhase: 'loop.phase',
} as const;

export type CrashPointName = (typeof CRASH_POINTS)[keyof typeof CRASH_POINTS];

export interface CrashSpec {
  point: string;
  subject: string | null;
  n: number;
}

export const CRASH_ENV = 'RFT_CRASH_AT';

/** Parses `<point>[@<subject>]:<n>`; throws on anything else, so a typo in a test never passes silently. */
export function parseCrashSpec(text: string): CrashSpec {
  const match = /^([a-z][a-z0-9.-]*)(?:@([^:]+))?:([1-9]\d*)$/.exec(text.trim());
  if (!match) throw new Error(`${CRASH_ENV}=${text}: expected <point>[@<subject>]:<n>, e.g. ledger.append.mid-line@iter-0/trajectories.jsonl:2`);
  const point = match[1]!;
  if (!(Object.values(CRASH_POINTS) as string[]).includes(point)) {
    throw new Error(`${CRASH_ENV}=${text}: unknown crash point ${point} (known: ${Object.values(CRASH_POINTS).join(', ')})`);
  }
  return { point, subject: match[2] ?? null, n: Number(match[3]) };
}

/** Does a point's subject (a path, a phase) match the spec's `@<subject>`? */
export function subjectMatches(wanted: string | null, subject: string | undefined): boolean {
  if (wanted === null) return true;
  if (subject === undefined) return false;
  const normalized = subject.split(path.sep).join('/');
  return normalized === wanted || normalized.endsWith(`/${wanted}`);
}

const armed: CrashSpec | null = process.env[CRASH_ENV] ? parseCrashSpec(process.env[CRASH_ENV]) : null;
let reached = 0;

/** True when RFT_CRASH_AT names `point` (and, if given, a subject that matches): the caller may take its slow, crashable path. */
export function crashArmed(point: CrashPointName, subject?: string): boolean {
  return armed !== null && armed.point === point && subjectMatches(armed.subject, subject);
}

/** SIGKILLs this process the n-th time it gets here, when RFT_CRASH_AT names this point; else nothing. */
export function crashPoint(point: CrashPointName, subject?: string): void {
  if (armed === null || armed.point !== point || !subjectMatches(armed.subject, subject)) return;
  reached += 1;
  if (reached < armed.n) return;
  process.stderr.write(`rft: ${CRASH_ENV}: crashing at ${point}${subject === undefined ? '' : ` (${subject})`}, time ${reached}\n`);
  process.kill(process.pid, 'SIGKILL');
}
