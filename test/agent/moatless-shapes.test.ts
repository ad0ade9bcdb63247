import { describe, expect, it } from 'vitest';
import { prepareInstance } from '../../src/agent/instance-workspace.js';
import { runTrajectory } from '../../src/agent/run.js';
import type { PolicyRequest } from '../../src/policy/types.js';
import { AgentSchema } from '../../src/recipe/schema.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import { verifyPatch } from '../../src/verify/run.js';
import { buildEvalSpec } from '../../src/verify/spec.js';
import { minigymInstance } from '../helpers/minigym.js';
import { ScriptedPolicy } from '../helpers/scripted-policy.js';
import { bundledVerifyContext } from '../helpers/verify-context.js';

/**
 * A model trained on SWE-Gym's moatless trajectories answers in moatless's own shapes: the flat
 * search of its few-shot examples, Identify without span_ids, Decision without `complete`, extra
 * keys in ApplyChange, `reject: false`, a review to finish. The agent takes each as moatless did
 * and the run ends in a patch that resolves the bundled task (verified in Docker).
 */

const RUN = `moatless-shapes-${process.pid}`;

const j = (value: unknown) => () => JSON.stringify(value, null, 2);
const OLD = 'return value / self.factor - self.offset';
const NEW = 'return (value - self.offset) / self.factor';
/** EditCode's answer: the code in <search> with the fix (or a broken version of it) applied. */
const edit = (replacement: string) => (request: PolicyRequest) => {
  const user = request.messages.filter((m) => m.role === 'user')[0]!.content!;
  const code = /<search file="[^"]*">\n([\s\S]*?)\n<\/search>/.exec(user)![1]!;
  expect(code).toContain(OLD);
  return `<replace>\n${code.replace(OLD, replacement)}\n`;
};

describe('answers in moatless\'s own shapes', () => {
  it('run a bundled task to a resolved patch', async () => {
    const instance = minigymInstance('minigym__unitkit-101');
    const docker = await connectEngine();
    const ctx = bundledVerifyContext(docker, RUN);
    const prepared = await prepareInstance(docker, ctx.imageFor(instance), ctx.labels);
    const policy = new ScriptedPolicy([
      // SearchCode, flat form; nothing found is a retry in the same visit.
      j({ scratch_pad: 'Look for the temperature class.', class_name: 'TemperatureScaleThatIsNotThere' }),
      j({ scratch_pad: 'The conversion into a unit.', file_pattern: 'unitkit/units.py', function_name: 'from_base' }),
      // IdentifyCode without span_ids: every span of that file the search showed.
      j({ scratch_pad: 'from_base is the culprit.', identified_spans: [{ file_path: 'unitkit/units.py' }] }),
      // DecideRelevance without complete (false): search again.
      j({ scratch_pad: 'Relevant; to_base may matter too.', relevant: true }),
      j({ scratch_pad: 'The inverse conversion.', file_pattern: 'unitkit/units.py', function_names: ['to_base'] }),
      j({ scratch_pad: 'to_base for reference.', identified_spans: [{ file_path: 'unitkit/units.py', span_ids: ['Unit.to_base'] }] }),
      // A second relevant decision plans, complete or not.
      j({ scratch_pad: 'Enough.', relevant: true }),
      // ApplyChange with extra keys (moatless allowed them).
      j({ scratch_pad: 'Undo the offset first.', action: 'modify', file_path: 'unitkit/units.py', span_id: 'Unit.from_base', instructions: 'Subtract the offset before dividing.', thoughts: 'inverse of to_base', confidence: 0.9 }),
      // ClarifyCodeChange with reject: false and a one-line range (widened).
      j({ scratch_pad: 'The return line.', start_line: 49, end_line: 49, reject: false }),
      // EditCode: broken code is bounced with the parse error, then the fix.
      edit('return (value - self.offset / self.factor'),
      edit(NEW),
      // PlanToCode: review after the change finishes (finish_on_review).
      j({ scratch_pad: 'Done; please review.', action: 'review', instructions: 'Check the conversion.' }),
    ], 'scripted-moatless');
    const t = await runTrajectory({
      ids: { run: RUN, iteration: 0, instance_id: instance.instance_id, sample_index: 0 },
      seed: 1,
      instance,
      ...prepared,
      policy,
      agent: AgentSchema.parse({ clarify_above_tokens: 20 }),
      sampling: { temperature: 1, top_p: 1 },
    });
    expect(t.transitions.map((x) => `${x.from}>${x.to}`)).toEqual([
      'SearchCode>IdentifyCode',
      'IdentifyCode>DecideRelevance',
      'DecideRelevance>SearchCode',
      'SearchCode>IdentifyCode',
      'IdentifyCode>DecideRelevance',
      'DecideRelevance>PlanToCode',
      'PlanToCode>ClarifyCodeChange',
      'ClarifyCodeChange>EditCode',
      'EditCode>PlanToCode',
      'PlanToCode>Finished',
    ]);
    expect(t.calls.map((c) => c.invalid).filter(Boolean)).toEqual([expect.stringMatching(/found nothing/), expect.stringMatching(/^the new code does not parse \(line \d+: cannot parse `/)]);
    expect(t.outcome).toEqual({ status: 'finished', reason: 'Check the conversion.' });
    // The widened range: EditCode was shown the whole three-line span.
    expect(policy.requests[9]!.messages[1]!.content).toMatch(/<search file="unitkit\/units.py">\n    def from_base\(self, value\):\n[\s\S]*self.offset\n<\/search>/);
    expect(t.patch).toContain(`+        ${NEW}`);
    const { verdict } = await verifyPatch(ctx, instance, buildEvalSpec(instance, { timeout_s: 60 }), t.patch);
    expect(verdict.outcome).toBe('resolved');
  }, 300_000);
});
