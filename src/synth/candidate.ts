import { z } from 'zod';

/**
 * The records task synthesis passes between its steps (design §13): where a bug may go (a function
 * some passing test executes), and a candidate bug (whole-file edits, so a strategy that rewrites a
 * syntax tree and one that reverts a commit hand the validator the same shape).
 */

/** A function the tracer saw a passing test execute; `name` is qualified (`Class.method`, `outer.<locals>.inner` as Python's __qualname__). */
export const FunctionTargetSchema = z.object({
  /** Path relative to the repository root (/testbed), POSIX separators. */
  file: z.string().min(1),
  name: z.string().min(1),
  /** 1-based line of the `def` (decorators excluded), as Python's code object reports co_firstlineno... */
  start_line: z.number().int().positive(),
  /** ...and the last line of its body, inclusive. */
  end_line: z.number().int().positive(),
});
export type FunctionTarget = z.infer<typeof FunctionTargetSchema>;

/** One file a candidate changes: its text before and after (UTF-8). */
export const FileEditSchema = z.object({
  path: z.string().min(1),
  before: z.string(),
  after: z.string(),
});
export type FileEdit = z.infer<typeof FileEditSchema>;

/** A candidate bug, before validation. */
export const CandidateSchema = z.object({
  /** The strategy module that made it: `procedural`, `llm_rewrite`, `history_revert`. */
  strategy: z.string().min(1),
  /** What kind of change within the strategy (e.g. `invert_condition`, `off_by_one_constant`, a commit hash). */
  kind: z.string().min(1),
  /** The functions it changes (the validator runs only the tests that execute them). */
  functions: z.array(FunctionTargetSchema).min(1),
  edits: z.array(FileEditSchema).min(1),
  /** One line for people: what was changed. Never shown to the policy as the issue text. */
  description: z.string(),
});
export type Candidate = z.infer<typeof CandidateSchema>;
