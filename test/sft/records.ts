import { ACTIONS, type StateName, type StructuredState } from '../../src/agent/actions.js';
import { TrajectorySchema, type Trajectory, type TrajectoryStatus } from '../../src/agent/trajectory.js';
import type { ChatMessage } from '../../src/policy/types.js';
import { normalizePatch, patchHash } from '../../src/verify/patch.js';
import { VerdictSchema, verdictKey, type Outcome, type Verdict } from '../../src/verify/verdict.js';

/** Test records: schema-valid trajectories and verdicts built from a few numbers. */

export const SPEC_HASH = patchHash('an eval spec');

export const DEFAULT_STATES: StateName[] = ['SearchCode', 'IdentifyCode', 'DecideRelevance', 'PlanToCode', 'EditCode', 'PlanToCode'];

export interface CallSpec {
  state: StateName;
  /** Why the answer was invalid; the next call of the same state then carries a retry. */
  invalid?: string;
  /** Its tokens.per_call entry (at least 10: 10 of them are the completion). */
  tokens?: number;
  /** Its prompt replays an earlier valid action of the state (an assistant turn and the message answering it), before any retry. */
  history?: boolean;
}

export interface TrajectorySpec {
  instance_id: string;
  sample_index?: number;
  iteration?: number;
  protocol?: 'json' | 'tools';
  calls?: Array<StateName | CallSpec>;
  outcome?: TrajectoryStatus;
  patch?: string;
  encoding?: string;
}

export function patchFor(name: string): string {
  return `diff --git a/${name}.py b/${name}.py\n--- a/${name}.py\n+++ b/${name}.py\n@@ -1 +1 @@\n-old\n+${name}\n`;
}

/**
 * A trajectory whose calls look like the agent's: each state's system prompt and user message,
 * retry context after an invalid answer (assistant + user, or assistant tool call + tool message
 * with the tools protocol), and a completion shaped by the protocol.
 */
export function makeTrajectory(spec: TrajectorySpec): Trajectory {
  const protocol = spec.protocol ?? 'json';
  const sample = spec.sample_index ?? 0;
  const calls = (spec.calls ?? DEFAULT_STATES).map((c) => (typeof c === 'string' ? { state: c } : c));
  const perCall = calls.map((c, i) => c.tokens ?? 100 + i);
  let retry: ChatMessage[] = [];
  const records = calls.map((c, i) => {
    const structured = c.state !== 'EditCode';
    const replayed: ChatMessage[] = c.history ? [{ role: 'assistant', content: `{"earlier":${i}}` }, { role: 'user', content: `What the earlier action of call ${i} found` }] : [];
    const messages: ChatMessage[] = [
      { role: 'system', content: `Workflow step: ${c.state}` },
      { role: 'user', content: `Issue of ${spec.instance_id}, sample ${sample}, call ${i}` },
      ...replayed,
      ...retry,
    ];
    const completion: ChatMessage =
      protocol === 'tools' && structured
        ? {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: `call_${i}`, type: 'function', function: { name: ACTIONS[c.state as StructuredState].name, arguments: `{"call":${i}}` } }],
          }
        : { role: 'assistant', content: structured ? `{"call":${i}}` : `<replace>\ncall ${i}\n</replace>` };
    if (c.invalid !== undefined) {
      const text = `Your last reply was not a valid action: ${c.invalid}.`;
      retry =
        protocol === 'tools' && completion.role === 'assistant' && completion.tool_calls
          ? [...retry, completion, { role: 'tool', tool_call_id: completion.tool_calls[0]!.id, content: text }]
          : [...retry, completion, { role: 'user', content: text }];
    } else retry = [];
    return {
      state: c.state,
      messages,
      completion,
      usage: { prompt_tokens: perCall[i]! - 10, completion_tokens: 10 },
      invalid: c.invalid ?? null,
      retry: messages.length > 2 + replayed.length,
      latency_ms: 5,
    };
  });
  return TrajectorySchema.parse({
    run: 'test-run',
    iteration: spec.iteration ?? 0,
    instance_id: spec.instance_id,
    sample_index: sample,
    seed: 1000 + sample,
    model: 'm0',
    protocol,
    temperature: 1,
    calls: records,
    transitions: [],
    outcome: spec.outcome ?? { status: 'finished', reason: 'done' },
    patch: spec.patch ?? patchFor(`${spec.instance_id}_${sample}`),
    llm_calls: records.length,
    tokens: {
      encoding: spec.encoding ?? 'cl100k_base',
      prompt: perCall.reduce((a, b) => a + b - 10, 0),
      completion: 10 * perCall.length,
      max_example: Math.max(0, ...perCall),
      per_call: perCall,
    },
    usage: { prompt_tokens: perCall.reduce((a, b) => a + b - 10, 0), completion_tokens: 10 * perCall.length },
    started_at: '2025-01-01T00:00:00.000Z',
    duration_ms: 1000,
  });
}

/** The verdict of a patch under SPEC_HASH, with the fields each outcome requires. */
export function makeVerdict(instanceId: string, patch: string, outcome: Outcome): Verdict {
  const ran = outcome === 'resolved' || outcome === 'unresolved';
  return VerdictSchema.parse({
    instance_id: instanceId,
    patch_hash: patchHash(normalizePatch(patch)),
    spec_hash: SPEC_HASH,
    outcome,
    reason: ran || outcome === 'empty_patch' ? null : `${outcome} happened`,
    apply_method: ran || outcome === 'timeout' || outcome === 'error' ? 'git_apply' : null,
    test_exit_code: ran ? 0 : null,
    tests: {},
    report: ran ? { FAIL_TO_PASS: { success: [], failure: [] }, PASS_TO_PASS: { success: [], failure: [] } } : null,
    log_truncated: false,
    duration_ms: 10,
    created_at: '2025-01-01T01:00:00.000Z',
  });
}

/** The verdict cache key of a trajectory under SPEC_HASH (what the caller of poolFromRecords passes). */
export function keyOfTrajectory(t: Trajectory): string {
  return verdictKey(t.instance_id, patchHash(normalizePatch(t.patch)), SPEC_HASH);
}
