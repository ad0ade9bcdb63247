import { z } from 'zod';
import { FunctionTargetSchema } from './candidate.js';
import { RejectionSchema } from './judge.js';

/**
 * The synth ledger (`<out>.ledger.jsonl`, append-only, fsync'd per record): what a killed run
 * resumes from. Its first record per environment is the test→function map; then one record per
 * candidate, in the order the strategies made them. The task file is always written from here,
 * so an interrupted run and an uninterrupted one write the same file.
 */
export const SettingsRecordSchema = z.object({
  type: z.literal('settings'),
  /** Everything that decides which tasks come out; a resume with other settings is refused. */
  fingerprint: z.string(),
});

export const TraceRecordSchema = z.object({
  type: z.literal('trace'),
  env: z.string(),
  /** The tests that passed in the traced run and in a plain one: the only tests a task may list. */
  pass_before: z.array(z.string()),
  /** Test id → its file and the indexes (into `functions`) of the functions it executed. */
  tests: z.record(z.string(), z.object({ file: z.string(), functions: z.array(z.number().int().nonnegative()) })),
  functions: z.array(FunctionTargetSchema),
  seconds: z.number().nonnegative(),
});
export type TraceRecord = z.infer<typeof TraceRecordSchema>;

export const CandidateRecordSchema = z.object({
  type: z.literal('candidate'),
  env: z.string(),
  /** Position among the environment's candidates (strategies in --strategies order, each in its own order). */
  index: z.number().int().nonnegative(),
  strategy: z.string(),
  kind: z.string(),
  key: z.string(),
  seconds: z.number().nonnegative(),
  test_runs: z.number().int().nonnegative(),
  outcome: z.union([z.object({ valid: z.literal(true), instance: z.record(z.string(), z.unknown()) }), z.object({ valid: z.literal(false), reason: RejectionSchema, detail: z.string() })]),
});
export type CandidateRecord = z.infer<typeof CandidateRecordSchema>;

export const EnvDoneRecordSchema = z.object({ type: z.literal('env_done'), env: z.string(), error: z.string().nullable() });

export const SynthRecordSchema = z.discriminatedUnion('type', [SettingsRecordSchema, TraceRecordSchema, CandidateRecordSchema, EnvDoneRecordSchema]);
export type SynthRecord = z.infer<typeof SynthRecordSchema>;

/** A ledger written with other settings than the run now asked for. */
export class SynthResumeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SynthResumeError';
  }
}
