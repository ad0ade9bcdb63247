import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { writeJsonAtomic } from '../store/atomic.js';
import { wholeLinesEnd } from '../store/ledger.js';
import type { Instance } from '../tasks/instance.js';

/**
 * Which instances a rollout phase (iter-<k>/ or eval/m<m>/) samples, fixed when it begins: written
 * atomically before its first sample, read on every resume. A resume never adds or drops instances
 * of a begun phase (a resumed run must equal an uninterrupted one); an instance that passes
 * preflight only later joins the next phase that has not begun.
 */
export const MEMBERSHIP_FILE = 'instances.json';
export const MembershipSchema = z.object({ instance_ids: z.array(z.string().min(1)) }).strict();
export type Membership = z.infer<typeof MembershipSchema>;

function hasRecords(ledger: string): boolean {
  return existsSync(ledger) && wholeLinesEnd(ledger).validBytes > 0;
}

export function readMembership(phaseDir: string): Membership | null {
  const file = path.join(phaseDir, MEMBERSHIP_FILE);
  if (!existsSync(file)) return null;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not JSON (${(err as Error).message})`);
  }
  const parsed = MembershipSchema.safeParse(raw);
  if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

/**
 * The instances `phaseDir` samples. Begun (a record and a sample in `ledger`): exactly the recorded ones, in the order of
 * `all`, whatever preflight says now (one whose image went missing stops the run as incomplete, as
 * any verification error does). Begun before records existed (a ledger, no record): `legacy`, the
 * set its first start sampled, recorded now. Not begun: `eligible`, recorded now.
 */
export function fixMembership(phaseDir: string, ledger: string, all: readonly Instance[], eligible: readonly Instance[], legacy: readonly Instance[]): Instance[] {
  // Begun means a sample is recorded: until then nothing depends on the choice, so it is made again.
  const recorded = hasRecords(ledger) ? readMembership(phaseDir) : null;
  if (recorded) {
    const ids = new Set(recorded.instance_ids);
    const known = new Set(all.map((i) => i.instance_id));
    const unknown = recorded.instance_ids.filter((id) => !known.has(id));
    if (unknown.length > 0) throw new Error(`${path.join(phaseDir, MEMBERSHIP_FILE)}: instance ${unknown[0]} is not in the recipe's task set any more (${unknown.length} such)`);
    return all.filter((i) => ids.has(i.instance_id));
  }
  const chosen = hasRecords(ledger) ? legacy : eligible;
  mkdirSync(phaseDir, { recursive: true });
  writeJsonAtomic(path.join(phaseDir, MEMBERSHIP_FILE), { instance_ids: chosen.map((i) => i.instance_id) } satisfies Membership);
  return [...chosen];
}

/**
 * Instances the next iteration not yet begun will add to the last begun one's (left out when that
 * one began, available now): written at each start for `rft status` ("iteration k will add X").
 */
export const JOINING_FILE = 'joining.json';
export const JoiningSchema = z.object({ iteration: z.number().int().nonnegative(), after: z.number().int().nonnegative(), instance_ids: z.array(z.string().min(1)) }).strict();
export type Joining = z.infer<typeof JoiningSchema>;

export function writeJoining(runDir: string, iterations: number, iterationDir: (k: number) => string, eligible: readonly Instance[]): Joining | null {
  let last = -1;
  while (last + 1 < iterations && readMembership(iterationDir(last + 1)) !== null) last += 1;
  const file = path.join(runDir, JOINING_FILE);
  let joining: Joining | null = null;
  if (last >= 0 && last + 1 < iterations) {
    const before = new Set(readMembership(iterationDir(last))!.instance_ids);
    const added = eligible.map((i) => i.instance_id).filter((id) => !before.has(id));
    if (added.length > 0) joining = { iteration: last + 1, after: last, instance_ids: added };
  }
  if (joining !== null || existsSync(file)) writeJsonAtomic(file, joining ?? { iteration: 0, after: 0, instance_ids: [] });
  return joining;
}

/** What joining.json says, or null when the iteration it names has begun (its own record says it then). */
export function readJoining(runDir: string, iterationDir: (k: number) => string): Joining | null {
  const file = path.join(runDir, JOINING_FILE);
  if (!existsSync(file)) return null;
  const parsed = JoiningSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
  if (!parsed.success) throw new Error(`${file}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  const j = parsed.data;
  if (j.instance_ids.length === 0 || readMembership(iterationDir(j.iteration)) !== null) return null;
  return j;
}
