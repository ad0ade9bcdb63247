import { z } from 'zod';

/**
 * SWE-bench stores FAIL_TO_PASS / PASS_TO_PASS as JSON-encoded strings, SWE-Gym as real lists;
 * both arrive here and leave as a list.
 */
const TestIdList = z.preprocess(
  (value) => {
    if (typeof value !== 'string') return value;
    try {
      return JSON.parse(value);
    } catch {
      return value; // left as a string so the array check below reports it
    }
  },
  z.array(z.string().min(1)),
);

/** One task instance in the SWE-bench format (SWE-Gym and SWE-bench encodings accepted). */
export const InstanceSchema = z.object({
  instance_id: z.string().min(1),
  repo: z.string().min(1),
  base_commit: z.string().min(1),
  problem_statement: z.string(),
  hints_text: z.string().nullish().transform((v) => v ?? ''),
  patch: z.string().default(''),
  test_patch: z.string(),
  FAIL_TO_PASS: TestIdList,
  PASS_TO_PASS: TestIdList,
  version: z.union([z.string(), z.number()]).nullish().transform((v) => (v == null ? null : String(v))),
  created_at: z.string().nullish().transform((v) => v ?? null),
  environment_setup_commit: z.string().nullish().transform((v) => v ?? null),
  /** Optional per-instance test command; the verifier appends the test files the test patch touches. */
  test_cmd: z.string().nullish().transform((v) => v ?? null),
});
// Unknown fields (SWE-bench carries a few more) are kept out rather than rejected: z.object strips them.

export type Instance = z.infer<typeof InstanceSchema>;
