import { beforeAll, describe, expect, it } from 'vitest';
import { CodeIndex } from '../../src/agent/code-index.js';
import { PythonSpanParser } from '../../src/agent/python-spans.js';
import { runTrajectory, type AgentSettings } from '../../src/agent/run.js';
import { PolicyInfraError, type PolicyClient } from '../../src/policy/types.js';
import { AgentSchema } from '../../src/recipe/schema.js';
import type { Instance } from '../../src/tasks/instance.js';
import { ScriptedPolicy, type ScriptedAnswer } from '../helpers/scripted-policy.js';

const FILES = new Map<string, string>([
  ['calc/__init__.py', ''],
  ['calc/ops.py', 'import math\n\n\ndef add(a, b):\n    """Sum of a and b."""\n    return a - b\n\n\nclass Scale:\n    def __init__(self, k):\n        self.k = k\n\n    def apply(self, x):\n        return x * self.k\n'],
  ['tests/test_ops.py', 'from calc.ops import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n'],
]);

const INSTANCE: Instance = {
  instance_id: 'demo__calc-1',
  repo: 'demo/calc',
  base_commit: 'abcdef0',
  problem_statement: 'add(1, 2) returns -1 instead of 3.',
  hints_text: '',
  patch: '',
  test_patch: '',
  FAIL_TO_PASS: ['tests/test_ops.py::test_add'],
  PASS_TO_PASS: [],
  version: null,
  created_at: null,
  environment_setup_commit: null,
  test_cmd: null,
};

const j = (value: unknown) => JSON.stringify(value);
const SEARCH = j({ scratch_pad: 'find add', search_requests: [{ function_names: ['add'] }], complete: false });
const IDENTIFY = j({ scratch_pad: 'this one', identified_spans: [{ file_path: 'calc/ops.py', span_ids: ['add'] }] });
const DECIDE = j({ scratch_pad: 'enough', relevant: true, complete: true });
const MODIFY = j({ scratch_pad: 'fix', action: 'modify', file_path: 'calc/ops.py', span_id: 'add', instructions: 'Return the sum.' });
const EDIT = '<replace>\ndef add(a, b):\n    """Sum of a and b."""\n    return a + b\n';
const FINISH = j({ scratch_pad: 'done', action: 'finish', finish: 'add returns the sum' });

let index: CodeIndex;
let parser: PythonSpanParser;

beforeAll(async () => {
  parser = await PythonSpanParser.create();
  index = await CodeIndex.build(FILES, parser);
});

function run(answers: ScriptedAnswer[], agent: Partial<AgentSettings> = {}, seed = 7) {
  const policy = new ScriptedPolicy(answers);
  const trajectory = runTrajectory({
    ids: { run: 'r', iteration: 0, instance_id: INSTANCE.instance_id, sample_index: 0 },
    seed,
    instance: INSTANCE,
    files: FILES,
    index,
    parser,
    policy,
    agent: { ...AgentSchema.parse({}), ...agent },
    sampling: { temperature: 1, top_p: 1 },
  });
  return { policy, trajectory };
}

const EXPECTED_PATCH = [
  'diff --git a/calc/ops.py b/calc/ops.py',
  '--- a/calc/ops.py',
  '+++ b/calc/ops.py',
  '@@ -3,7 +3,7 @@',
  ' ',
  ' def add(a, b):',
  '     """Sum of a and b."""',
  '-    return a - b',
  '+    return a + b',
  ' ',
  ' ',
  ' class Scale:',
  '',
].join('\n');

describe('workflow: the happy path', () => {
  it('walks search → identify → decide → plan → edit → plan → finished and produces a git patch', async () => {
    const { policy, trajectory } = run([SEARCH, IDENTIFY, DECIDE, MODIFY, EDIT, FINISH]);
    const t = await trajectory;
    expect(t.outcome).toEqual({ status: 'finished', reason: 'add returns the sum' });
    expect(t.transitions.map((x) => `${x.from}>${x.to}`)).toEqual([
      'SearchCode>IdentifyCode',
      'IdentifyCode>DecideRelevance',
      'DecideRelevance>PlanToCode',
      'PlanToCode>EditCode',
      'EditCode>PlanToCode',
      'PlanToCode>Finished',
    ]);
    expect(t.patch).toBe(EXPECTED_PATCH);
    expect(t.llm_calls).toBe(6);
    expect(t.calls.every((c) => c.invalid === null && !c.retry)).toBe(true);
    expect(t.tokens.per_call).toHaveLength(6);
    expect(t.tokens.max_example).toBe(Math.max(...t.tokens.per_call));
    expect(t.usage).toEqual({ prompt_tokens: 600, completion_tokens: 120 });
    // JSON protocol: the schema is in the system prompt and a JSON object is asked for.
    expect(policy.requests[0]!.json).toBe(true);
    expect(policy.requests[0]!.messages[0]!.content).toMatch(/^Workflow step: SearchCode\n[\s\S]*"title":"Search"/);
    // EditCode stops at </replace>, sees the exact code and asks in free text.
    expect(policy.requests[4]!.stop).toEqual(['</replace>']);
    expect(policy.requests[4]!.messages[1]!.content).toContain('<search file="calc/ops.py">\ndef add(a, b):');
    // The second PlanToCode visit: the issue first, the first action (all fields, schema order),
    // then the diff it led to and the CURRENT file context in the last user message.
    const plan2 = policy.requests[5]!.messages;
    expect(plan2.map((m) => m.role)).toEqual(['system', 'user', 'assistant', 'user']);
    expect(plan2[1]!.content).toMatch(/^<issue>/);
    expect(plan2[1]!.content).not.toContain('<file_context>');
    expect(plan2[2]).toEqual({
      role: 'assistant',
      content: JSON.stringify({ scratch_pad: 'fix', action: 'modify', instructions: 'Return the sum.', file_path: 'calc/ops.py', span_id: 'add', finish: null, reject: null }, null, 2),
    });
    expect(plan2[3]!.content).toMatch(/^Applied the change to calc\/ops.py:add\.\n\n<diff>\n[\s\S]*\+    return a \+ b[\s\S]*<\/diff>\n\n<file_context>\n[\s\S]*     6\t    return a \+ b\n/);
  });

  it('seeds each call from the trajectory seed, the same way every time', async () => {
    const script = [SEARCH, IDENTIFY, DECIDE, MODIFY, EDIT, FINISH];
    const first = run(script, {}, 11);
    const second = run(script, {}, 11);
    const other = run(script, {}, 12);
    const [a, b] = [await first.trajectory, await second.trajectory];
    await other.trajectory;
    const seeds = first.policy.requests.map((r) => r.seed);
    expect(new Set(seeds).size).toBe(seeds.length);
    expect(second.policy.requests.map((r) => r.seed)).toEqual(seeds);
    expect(other.policy.requests.map((r) => r.seed)).not.toEqual(seeds);
    const strip = (t: typeof a) => ({ ...t, started_at: '', duration_ms: 0, calls: t.calls.map((c) => ({ ...c, latency_ms: 0 })) });
    expect(JSON.stringify(strip(a))).toBe(JSON.stringify(strip(b)));
  });

  it('works with the tools protocol: one tool per state, history as tool calls', async () => {
    const { policy, trajectory } = run(
      [
        { tool: 'Search', args: JSON.parse(SEARCH) },
        { tool: 'Identify', args: JSON.parse(IDENTIFY) },
        { tool: 'Decide', args: JSON.parse(DECIDE) },
        { tool: 'ApplyChange', args: JSON.parse(MODIFY) },
        EDIT,
        { tool: 'ApplyChange', args: JSON.parse(FINISH) },
      ],
      { protocol: 'tools' },
    );
    const t = await trajectory;
    expect(t.outcome.status).toBe('finished');
    expect(t.patch).toBe(EXPECTED_PATCH);
    expect(policy.requests[0]!.tools?.[0]?.function.name).toBe('Search');
    expect(policy.requests[0]!.json).toBeUndefined();
    expect(policy.requests[0]!.messages[0]!.content).not.toContain('"title"');
    expect(policy.requests[4]!.tools).toBeUndefined();
    expect(policy.requests[5]!.messages[2]).toMatchObject({ role: 'assistant', content: null, tool_calls: [{ function: { name: 'ApplyChange' } }] });
    expect(policy.requests[5]!.messages[3]).toMatchObject({ role: 'tool', tool_call_id: 'call_4' });
  });
});

describe('workflow: retries and limits', () => {
  it('an invalid action gets a retry message naming the problem, then the run goes on', async () => {
    const { policy, trajectory } = run(['not json at all', j({ scratch_pad: 'x', search_requests: [{ function_names: ['add'] }], bogus: 1 }), SEARCH, IDENTIFY, DECIDE, MODIFY, EDIT, FINISH]);
    const t = await trajectory;
    expect(t.outcome.status).toBe('finished');
    expect(t.calls[0]!.invalid).toMatch(/not valid JSON/);
    expect(t.calls[1]!.invalid).toMatch(/unknown field\(s\) bogus/);
    expect(t.calls[1]!.retry).toBe(true);
    expect(t.calls[2]!.retry).toBe(true);
    expect(t.calls[3]!.retry).toBe(false);
    const retryMessages = policy.requests[2]!.messages.slice(-4);
    expect(retryMessages.map((m) => m.role)).toEqual(['assistant', 'user', 'assistant', 'user']);
    expect(retryMessages[1]!.content).toMatch(/^Your last reply was not a valid action: the reply is not valid JSON/);
  });

  it('a third invalid action in a row aborts the run as the model\'s fault', async () => {
    const t = await run(['{}', '[]', '{"scratch_pad": 1}']).trajectory;
    expect(t.outcome).toMatchObject({ status: 'error', fault: 'model', reason: expect.stringContaining('3 invalid actions in a row') });
    expect(t.llm_calls).toBe(3);
    expect(t.transitions.at(-1)?.to).toBe('Aborted');
  });

  it('names every kind of wrong action', async () => {
    const wrong = [
      [j({ scratch_pad: 'x', search_requests: [{ file_pattern: '*.py' }] }), /search_requests\.0: .*at least one of/],
      [j({ scratch_pad: 'x', search_requests: [], complete: false }), /at least one search request/],
      [j({ scratch_pad: 'x', search_requests: [], complete: true }), /file context is empty/],
    ] as const;
    for (const [answer, problem] of wrong) {
      const t = await run([answer, SEARCH, IDENTIFY, DECIDE, MODIFY, EDIT, FINISH]).trajectory;
      expect(t.calls[0]!.invalid).toMatch(problem);
    }
    const identify = await run([SEARCH, j({ scratch_pad: 'x', identified_spans: [{ file_path: 'calc/ops.py', span_ids: ['nope'] }] }), IDENTIFY, DECIDE, MODIFY, EDIT, FINISH]).trajectory;
    expect(identify.calls[1]!.invalid).toMatch(/unknown span nope in calc\/ops\.py; its spans are .*add/);
    const missing = await run([SEARCH, IDENTIFY, DECIDE, j({ scratch_pad: 'x', action: 'modify', span_id: 'add', instructions: 'x' }), MODIFY, EDIT, FINISH]).trajectory;
    expect(missing.calls[3]!.invalid).toMatch(/missing field file_path/);
    const edit = await run([SEARCH, IDENTIFY, DECIDE, MODIFY, 'I would change the minus to a plus.', EDIT, FINISH]).trajectory;
    expect(edit.calls[4]!.invalid).toMatch(/neither <replace>/);
    expect(edit.outcome.status).toBe('finished');
  });

  it('refuses paths outside the repository, absolute paths, .git and test files, and writes nothing', async () => {
    for (const [filePath, problem] of [
      ['../../etc/passwd', /leaves the repository/],
      ['/etc/passwd', /is absolute/],
      ['.git/config', /inside \.git/],
      ['tests/test_ops.py', /is a test file/],
      ['calc/nope.py', /not in the repository/],
    ] as const) {
      const bad = j({ scratch_pad: 'x', action: 'modify', file_path: filePath, span_id: 'add', instructions: 'x' });
      const t = await run([SEARCH, IDENTIFY, DECIDE, bad, bad, bad]).trajectory;
      expect({ filePath, invalid: t.calls[3]!.invalid }).toEqual({ filePath, invalid: expect.stringMatching(problem) });
      expect(t.patch).toBe('');
      expect(t.outcome).toMatchObject({ status: 'error', fault: 'model' });
    }
  });

  it('a span above the clarify threshold goes through ClarifyCodeChange', async () => {
    const clarify = j({ scratch_pad: 'only the return', start_line: 6, end_line: 6 });
    const t = await run([SEARCH, IDENTIFY, DECIDE, MODIFY, clarify, '<replace>\n    return a + b\n', FINISH], { clarify_above_tokens: 5 }).trajectory;
    expect(t.transitions.map((x) => x.to)).toContain('ClarifyCodeChange');
    expect(t.patch).toContain('+    return a + b');
    const outOfSpan = await run([SEARCH, IDENTIFY, DECIDE, MODIFY, j({ scratch_pad: 'x', start_line: 1, end_line: 40 }), clarify, '<replace>\n    return a + b\n', FINISH], { clarify_above_tokens: 5 }).trajectory;
    expect(outOfSpan.calls[4]!.invalid).toMatch(/must lie within 4-6/);
  });

  it('stops at the transition limit, the visit limit and the token budget', async () => {
    const none = j({ scratch_pad: 'x', identified_spans: [] });
    const limited = await run([SEARCH, none, SEARCH, none, SEARCH, none], { max_transitions: 4 }).trajectory;
    expect(limited.outcome).toMatchObject({ status: 'error', fault: 'model', reason: 'reached 4 transitions without finishing' });
    expect(limited.llm_calls).toBe(4);
    const review = j({ scratch_pad: 'x', action: 'review', instructions: 'more' });
    const visits = await run([SEARCH, IDENTIFY, DECIDE, review, j({ scratch_pad: 'x', search_requests: [], complete: true }), review, j({ scratch_pad: 'x', search_requests: [], complete: true }), review], { visit_limits: { PlanToCode: 2 }, finish_on_review: false }).trajectory;
    expect(visits.outcome).toMatchObject({ status: 'error', reason: 'PlanToCode visited more than 2 times' });
    const budget = await run([SEARCH, IDENTIFY, DECIDE], { token_budget: 250 }).trajectory;
    expect(budget.outcome).toMatchObject({ status: 'error', fault: 'model', reason: expect.stringContaining('over the budget of 250') });
  });

  it('an endpoint that keeps failing ends the run as an infrastructure error', async () => {
    const failing: PolicyClient = {
      model: 'down',
      complete: async () => {
        throw new PolicyInfraError('http://127.0.0.1:1/v1: connection failed after retries', null);
      },
    };
    const t = await runTrajectory({
      ids: { run: 'r', iteration: 0, instance_id: INSTANCE.instance_id, sample_index: 0 },
      seed: 1,
      instance: INSTANCE,
      files: FILES,
      index,
      parser,
      policy: failing,
      agent: AgentSchema.parse({}),
      sampling: { temperature: 1, top_p: 1 },
    });
    expect(t.outcome).toEqual({ status: 'error', fault: 'infrastructure', reason: 'http://127.0.0.1:1/v1: connection failed after retries' });
  });

  it('reject ends the run as rejected', async () => {
    const t = await run([SEARCH, IDENTIFY, DECIDE, j({ scratch_pad: 'x', action: 'reject', reject: 'not a bug' })]).trajectory;
    expect(t.outcome).toEqual({ status: 'rejected', reason: 'not a bug' });
  });
});

describe('workflow: context after edits', () => {
  it('a missing required field is reported as missing', async () => {
    const t = await run([SEARCH, IDENTIFY, DECIDE, j({ scratch_pad: 'x', file_path: 'calc/ops.py' }), MODIFY, EDIT, FINISH]).trajectory;
    expect(t.calls[3]!.invalid).toMatch(/^missing field action/);
  });

  it('a function the edit adds joins the file context shown to the next PlanToCode', async () => {
    const addHelper = '<replace>\ndef add(a, b):\n    """Sum of a and b."""\n    return _plus(a, b)\n\n\ndef _plus(a, b):\n    return a + b\n';
    const { policy, trajectory } = run([SEARCH, IDENTIFY, DECIDE, MODIFY, addHelper, FINISH]);
    const t = await trajectory;
    expect(t.outcome.status).toBe('finished');
    expect(policy.requests[5]!.messages.at(-1)!.content).toContain('<span id="_plus">');
  });
});

describe('workflow: lint errors after an edit', () => {
  const UNDEFINED = '<replace>\ndef add(a, b):\n    """Sum of a and b."""\n    return a + bb\n';

  it('an edit that reads an undefined name shows it to the next PlanToCode, after the diff', async () => {
    const { policy, trajectory } = run([SEARCH, IDENTIFY, DECIDE, MODIFY, UNDEFINED, FINISH]);
    expect((await trajectory).outcome.status).toBe('finished');
    const message = policy.requests[5]!.messages.at(-1)!.content!;
    expect(message).toMatch(/^Applied the change to calc\/ops.py:add\.\n\n<diff>\n[\s\S]*\+    return a \+ bb\n[\s\S]*<\/diff>\n\n<lint_errors>\ncalc\/ops\.py:6: E0602 undefined-variable: Undefined variable 'bb'\n<\/lint_errors>\n\n<file_context>/);
  });

  it('a clean edit, or agent.lint false, shows no lint block', async () => {
    const clean = run([SEARCH, IDENTIFY, DECIDE, MODIFY, EDIT, FINISH]);
    await clean.trajectory;
    expect(clean.policy.requests[5]!.messages.at(-1)!.content).toMatch(/<\/diff>\n\n<file_context>/);
    expect(clean.policy.requests[5]!.messages.at(-1)!.content).not.toContain('<lint_errors>');
    const off = run([SEARCH, IDENTIFY, DECIDE, MODIFY, UNDEFINED, FINISH], { lint: false });
    await off.trajectory;
    expect(off.policy.requests[5]!.messages.at(-1)!.content).toContain('+    return a + bb');
    expect(off.policy.requests[5]!.messages.at(-1)!.content).not.toContain('<lint_errors>');
  });
});
