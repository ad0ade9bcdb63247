import { z } from 'zod';

/**
 * SWE-bench stores FAIL_TO_PASS / PASS_TO_PASS as JSON-encoded strings, SWE-Gym as real lists;
 * both arrive here and leave as a list. A string that is not a JSON list is reported as such
 * (naming the field), never passed on as something else.
 */
const testIdList = (items: z.ZodArray<z.ZodString>) =>
  z.preprocess(
    (value, ctx) => {
      if (typeof value !== 'string') return value;
      let parsed: unknown;
      try {
        parsed = JSON.parse(value);
      } catch (err) {
        ctx.addIssue({
          code: 'custom',
          input: value,
          message: `is a string that is not valid JSON (expected a list of test ids, or a JSON-encoded list as in SWE-bench): ${shortReason(err)}`,
        });
        return z.NEVER;
      }
      if (!Array.isArray(parsed)) {
        ctx.addIssue({
          code: 'custom',
          input: value,
          message: `is a JSON-encoded ${parsed === null ? 'null' : typeof parsed}, expected a JSON-encoded list of test ids`,
        });
        return z.NEVER;
      }
      return parsed;
    },
    items,
  );

const testId = z.string().min(1, 'a test id must not be empty');

function shortReason(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const oneLine = message.replace(/\s+/g, ' ');
  return oneLine.length > 160 ? `${oneLine.slice(0, 157)}...` : oneLine;
}

/** What an instance id may look like: it names images, files and ledger records, so no slashes or spaces. */
export const INSTANCE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * Where a synthesized task came from (`rft tasks synth`, src/synth): which strategy made the bug,
 * in which function, validated by how many test runs, from which source instance's environment,
 * and who wrote its issue text. Absent on tasks from datasets.
 */
export const SynthProvenanceSchema = z.object({
  strategy: z.string().min(1),
  kind: z.string().min(1),
  file: z.string().min(1),
  function: z.string().min(1),
  validation_runs: z.number().int().nonnegative(),
  source_instance: z.string().min(1),
  issue_text_source: z.string().min(1),
  seed: z.number().int(),
});
export type SynthProvenance = z.infer<typeof SynthProvenanceSchema>;

/** One task instance in the SWE-bench format (SWE-Gym and SWE-bench encodings accepted). */
export const InstanceSchema = z.object({
  /** Upper case occurs (Project-MONAI__MONAI-3042). */
  instance_id: z
    .string()
    .min(1)
    .regex(INSTANCE_ID_PATTERN, 'must be letters, digits, ".", "_" or "-" (e.g. django__django-11099)'),
  repo: z.string().regex(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/, 'must be owner/name (e.g. getmoto/moto)'),
  base_commit: z.string().regex(/^[0-9a-fA-F]{7,40}$/, 'must be a commit hash (7 to 40 hex digits)'),
  problem_statement: z.string(),
  hints_text: z.string().nullish().transform((v) => v ?? ''),
  patch: z.string().default(''),
  test_patch: z.string(),
  /** Tests the gold patch makes pass; an instance without one cannot tell a fix from no change. */
  FAIL_TO_PASS: testIdList(z.array(testId).min(1, 'must list at least one test (the tests the fix makes pass)')),
  PASS_TO_PASS: testIdList(z.array(testId)),
  version: z.union([z.string(), z.number()]).nullish().transform((v) => (v == null ? null : String(v))),
  created_at: z.string().nullish().transform((v) => v ?? null),
  environment_setup_commit: z.string().nullish().transform((v) => v ?? null),
  /** Optional per-instance test command; the verifier appends the test files the test patch touches. */
  test_cmd: z.string().nullish().transform((v) => v ?? null),
  synth: SynthProvenanceSchema.optional(),
});
// Unknown fields (SWE-bench carries a few more) are kept out rather than rejected: z.object strips them.

export type Instance = z.infer<typeof InstanceSchema>;
