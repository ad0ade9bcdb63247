import { z } from 'zod';
import { ChatMessageSchema, UsageSchema } from '../policy/types.js';
import { STATES } from './actions.js';

export const StateNameSchema = z.enum(STATES);

/**
 * How every retry prompt begins (src/agent/run.ts). A retry call's messages replay each invalid
 * reply of the visit as an assistant turn answered by such a prompt (user or tool message); the
 * SFT stage finds the invalid replies of a line by it (src/sft/backends.ts) and never trains them.
 */
export const RETRY_PREFIX = 'Your last reply was not a valid action:';

/** One LLM call: what was sent, what came back, and whether the answer was usable. */
export const LlmCallSchema = z.object({
  state: StateNameSchema,
  /** The messages sent, in order. The SFT example of this call is messages + completion. */
  messages: z.array(ChatMessageSchema),
  completion: ChatMessageSchema,
  usage: UsageSchema,
  /** The answer was not a valid action; the next call of the state carries a retry message. */
  invalid: z.string().nullable(),
  /** This call answered a retry message. */
  retry: z.boolean(),
  latency_ms: z.number().nonnegative(),
});
export type LlmCall = z.infer<typeof LlmCallSchema>;

export const TransitionSchema = z.object({
  from: StateNameSchema,
  to: z.union([StateNameSchema, z.enum(['Finished', 'Rejected', 'Aborted'])]),
  trigger: z.string(),
});
export type Transition = z.infer<typeof TransitionSchema>;

/**
 * How the run ended. `error` carries whose fault it was: the model's (limits hit, retries
 * exhausted) or the infrastructure's (endpoint down after retries) — the latter is retried on
 * resume and never enters the data as a failure.
 */
export const TrajectoryStatusSchema = z.discriminatedUnion('status', [
  z.object({ status: z.literal('finished'), reason: z.string().nullable() }),
  z.object({ status: z.literal('rejected'), reason: z.string() }),
  z.object({ status: z.literal('error'), reason: z.string(), fault: z.enum(['model', 'infrastructure']) }),
]);
export type TrajectoryStatus = z.infer<typeof TrajectoryStatusSchema>;

export const TrajectorySchema = z.object({
  run: z.string(),
  iteration: z.number().int().nonnegative(),
  instance_id: z.string(),
  sample_index: z.number().int().nonnegative(),
  seed: z.number().int().nonnegative(),
  model: z.string(),
  protocol: z.enum(['json', 'tools']),
  temperature: z.number(),
  calls: z.array(LlmCallSchema),
  transitions: z.array(TransitionSchema),
  outcome: TrajectoryStatusSchema,
  /** Unified diff of the trajectory's edits against the base commit ('' when nothing changed). */
  patch: z.string(),
  llm_calls: z.number().int().nonnegative(),
  /** Tokens counted with js-tiktoken once, here: prompt of every call, completions, and the largest single example. */
  tokens: z.object({
    encoding: z.string(),
    prompt: z.number().int().nonnegative(),
    completion: z.number().int().nonnegative(),
    max_example: z.number().int().nonnegative(),
    per_call: z.array(z.number().int().nonnegative()),
  }),
  /** Usage as reported by the endpoint (summed over calls). */
  usage: UsageSchema,
  started_at: z.string(),
  duration_ms: z.number().nonnegative(),
});
export type Trajectory = z.infer<typeof TrajectorySchema>;
