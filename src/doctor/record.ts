import { z } from 'zod';

/**
 * What `rft doctor` reports: one result per check, each a line a person reads (what was
 * checked, what was found, how to fix it) and a record a program reads (`--json`).
 */

/** ok: ready; FAIL: the run would fail here; warn: it may, or this could not be checked. */
export const CheckStatusSchema = z.enum(['ok', 'FAIL', 'warn']);
export type CheckStatus = z.infer<typeof CheckStatusSchema>;

export const CheckResultSchema = z.strictObject({
  /** Which check (docker, tasks, images, endpoint, context, tokenizer, trainer, server, output, disk). */
  check: z.string().min(1),
  status: CheckStatusSchema,
  /** What was checked, e.g. `Docker engine unix:///var/run/docker.sock`. */
  what: z.string().min(1),
  /** What was found. */
  detail: z.string(),
  /** How to fix it (null when nothing needs fixing). */
  fix: z.string().nullable(),
});
export type CheckResult = z.infer<typeof CheckResultSchema>;

export const DoctorReportSchema = z.strictObject({
  recipe: z.string(),
  base_dir: z.string(),
  results: z.array(CheckResultSchema),
  failed: z.number().int().min(0),
  warned: z.number().int().min(0),
  duration_ms: z.number().min(0),
});
export type DoctorReport = z.infer<typeof DoctorReportSchema>;

export const ok = (check: string, what: string, detail: string): CheckResult => ({ check, status: 'ok', what, detail, fix: null });
export const fail = (check: string, what: string, detail: string, fix: string): CheckResult => ({ check, status: 'FAIL', what, detail, fix });
export const warn = (check: string, what: string, detail: string, fix: string | null = null): CheckResult => ({ check, status: 'warn', what, detail, fix });
