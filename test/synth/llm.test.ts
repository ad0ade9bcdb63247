import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimServer, type SimServer } from '../../src/doubles/server.js';
import { SIM_BASE_NAME } from '../../src/doubles/model.js';
import type { Candidate, FunctionTarget } from '../../src/synth/candidate.js';
import { failingFromLog, issuePrompt, observedError, outputFor, quotesPatch, templateIssue, writeIssueText } from '../../src/synth/issue-text.js';
import { fencedCode, llmRewriteStrategy, spliceAnswer } from '../../src/synth/strategies/llm-rewrite.js';
import { createPythonParser, dedent } from '../../src/synth/strategies/procedural/tree.js';
import type { ChatEndpoint, RepoView } from '../../src/synth/strategy.js';
import { collect } from './collect.js';

// The LLM-facing parts of synthesis against the SIMULATED policy, over HTTP as the real path talks to an endpoint.

const MODULE = `"""Tiny module."""


def clamp(value, low, high):
    if value < low:
        return low
    if value > high:
        return high
    return value


class Counter:
    def bump(self, by=1):
        self.count = self.count + by
        return self.count == 10
`;
const TARGETS: FunctionTarget[] = [
  { file: 'pkg/util.py', name: 'clamp', start_line: 4, end_line: 9 },
  { file: 'pkg/util.py', name: 'Counter.bump', start_line: 13, end_line: 15 },
];

const repo: RepoView = {
  readFile: async (path) => {
    if (path !== 'pkg/util.py') throw new Error(`no ${path}`);
    return MODULE;
  },
  git: async () => {
    throw new Error('no history');
  },
};

let server: SimServer;
let endpoint: ChatEndpoint;
beforeAll(async () => {
  server = await startSimServer({ models: [], tasks: [] });
  const client = new OpenAI({ baseURL: server.url, apiKey: 'EMPTY', maxRetries: 0 });
  endpoint = {
    async complete(messages, { seed, temperature }) {
      const response = await client.chat.completions.create({ model: SIM_BASE_NAME, messages: [...messages], seed, temperature, max_tokens: 2000 });
      return response.choices[0]?.message.content ?? '';
    },
  };
});
afterAll(async () => {
  await server.close();
});

describe('llm_rewrite', () => {
  it('gets one bug per function from the SIMULATED policy, spliced in place, and the same ones again for the same seed', async () => {
    const a = await collect(llmRewriteStrategy.candidates({ repo, targets: TARGETS, seed: 3, limit: 5, llm: endpoint }));
    expect(a.map((c) => c.functions[0]!.name).sort()).toEqual(['Counter.bump', 'clamp']);
    const parser = await createPythonParser();
    for (const c of a) {
      expect(c.strategy).toBe('llm_rewrite');
      const { before, after } = c.edits[0]!;
      expect(before).toBe(MODULE);
      expect(after).not.toBe(MODULE);
      expect(parser.syntaxError(after)).toBeNull();
      // Only the target's lines change.
      const t = c.functions[0]!;
      const b = before.split('\n');
      const f = after.split('\n');
      expect(f.slice(0, t.start_line - 1)).toEqual(b.slice(0, t.start_line - 1));
      expect(f.slice(t.end_line)).toEqual(b.slice(t.end_line));
    }
    expect(server.synthRequests.filter((r) => r.step === 'rewrite')).toHaveLength(2);
    const again = await collect(llmRewriteStrategy.candidates({ repo, targets: TARGETS, seed: 3, limit: 5, llm: endpoint }));
    expect(again).toEqual(a);
  });

  it('stops at the limit and yields nothing without an endpoint', async () => {
    expect(await collect(llmRewriteStrategy.candidates({ repo, targets: TARGETS, seed: 3, limit: 1, llm: endpoint }))).toHaveLength(1);
    expect(await collect(llmRewriteStrategy.candidates({ repo, targets: TARGETS, seed: 3, limit: 5 }))).toEqual([]);
  });

  it('re-indents a method answered at column 0 and rejects answers that are not one function of that name, or change nothing', async () => {
    const parser = await createPythonParser();
    const method = TARGETS[1]!;
    const good = '```python\ndef bump(self, by=1):\n    self.count = self.count - by\n    return self.count == 10\n```';
    expect(spliceAnswer(parser, MODULE, method, good)).toBe(MODULE.replace('self.count + by', 'self.count - by'));
    expect(spliceAnswer(parser, MODULE, method, 'no code here')).toBeNull();
    expect(spliceAnswer(parser, MODULE, method, '```python\ndef other(self):\n    return 1\n```')).toBeNull();
    expect(spliceAnswer(parser, MODULE, method, '```python\ndef bump(self, by=1):\n    return 1\n\ndef extra():\n    pass\n```')).toBeNull();
    expect(spliceAnswer(parser, MODULE, method, '```python\ndef bump(self, by=1):\n    return (\n```')).toBeNull();
    expect(spliceAnswer(parser, MODULE, method, '```\n    def bump(self, by=1):\n        self.count = self.count + by\n        return self.count == 10\n```')).toBeNull();
  });

  it('reads fenced code and dedents it', () => {
    expect(fencedCode('text\n```py\nx = 1\n```\nmore')).toBe('x = 1');
    expect(fencedCode('no fence')).toBeNull();
    expect(dedent('    a\n      b\n\n    c')).toBe('a\n  b\n\nc');
  });

  it('throws a clear error when the endpoint fails', async () => {
    const failing: ChatEndpoint = { complete: async () => Promise.reject(new Error('connection refused')) };
    await expect(collect(llmRewriteStrategy.candidates({ repo, targets: TARGETS, seed: 1, limit: 1, llm: failing }))).rejects.toThrow(/llm_rewrite: the policy endpoint failed on pkg\/util\.py:(clamp|Counter\.bump): connection refused/);
  });
});

const CANDIDATE: Candidate = {
  strategy: 'procedural',
  kind: 'change_comparison',
  functions: [TARGETS[0]!],
  edits: [{ path: 'pkg/util.py', before: MODULE, after: MODULE.replace('if value > high:', 'if value >= high:') }],
  description: 'x',
};
const GOLD = `diff --git a/pkg/util.py b/pkg/util.py
--- a/pkg/util.py
+++ b/pkg/util.py
@@ -6,3 +6,3 @@ def clamp(value, low, high):
         return low
-    if value >= high:
+    if value > high:
         return high
`;
const FAILING = [
  {
    id: 'tests/test_util.py::test_clamp_edge',
    output: 'def test_clamp_edge():\n>       assert clamp(5, 0, 5) == 5\nE       assert 4 == 5\nE        +  where 4 = clamp(5, 0, 5)\n\ntests/test_util.py:7: AssertionError',
  },
  { id: 'tests/test_util.py::test_clamp_high', output: 'Traceback (most recent call last):\n  File "pkg/util.py", line 7, in clamp\n    if value >= high:\nAssertionError: high bound not returned' },
];

describe('issue text', () => {
  it('without an endpoint, is a template naming the failing tests and their errors, leaving out output lines that quote the gold patch', async () => {
    const issue = await writeIssueText({ candidate: CANDIDATE, failing: FAILING, goldPatch: GOLD, repo: 'acme/util' });
    expect(issue.source).toBe('template');
    expect(issue.text).toContain('tests/test_util.py::test_clamp_edge');
    expect(issue.text).toContain('`tests/test_util.py::test_clamp_high`: AssertionError: high bound not returned');
    expect(issue.text).toContain('AssertionError: assert 4 == 5');
    expect(issue.text).toContain('acme/util');
    expect(quotesPatch(issue.text, GOLD)).toBe(false);
    // The traceback line of the second test quotes the buggy line: the template never shows it.
    expect(templateIssue('acme/util', [FAILING[1]!], GOLD)).not.toContain('value >= high');
  });

  it('is written by the SIMULATED policy from the failing tests, and the prompt holds neither the patch nor the bug', async () => {
    const before = server.synthRequests.length;
    const issue = await writeIssueText({ candidate: CANDIDATE, failing: FAILING, goldPatch: GOLD, repo: 'acme/util', llm: endpoint });
    expect(issue.source).toBe('llm');
    expect(issue.text).toContain('high bound not returned');
    expect(server.synthRequests.slice(before).map((r) => r.step)).toEqual(['issue']);
    const prompt = issuePrompt('acme/util', FAILING).map((m) => m.content).join('\n');
    expect(prompt).not.toContain('if value > high:');
    expect(prompt).not.toContain('diff --git');
    expect(prompt).toContain('test_clamp_edge');
    const again = await writeIssueText({ candidate: CANDIDATE, failing: FAILING, goldPatch: GOLD, repo: 'acme/util', llm: endpoint });
    expect(again).toEqual(issue);
  });

  it('falls back to the template when the written text quotes the gold patch, or the endpoint fails', async () => {
    const leaky: ChatEndpoint = { complete: async () => 'Clamp is wrong\n\nThe check `if value > high :` should be used instead.' };
    const leaked = await writeIssueText({ candidate: CANDIDATE, failing: FAILING, goldPatch: GOLD, repo: 'acme/util', llm: leaky });
    expect(leaked.source).toBe('template_after_leak');
    expect(leaked.text).toBe(templateIssue('acme/util', FAILING, GOLD));
    const broken: ChatEndpoint = { complete: async () => Promise.reject(new Error('503')) };
    expect((await writeIssueText({ candidate: CANDIDATE, failing: FAILING, goldPatch: GOLD, repo: 'acme/util', llm: broken })).source).toBe('template_after_error');
    const silent: ChatEndpoint = { complete: async () => '   ' };
    expect((await writeIssueText({ candidate: CANDIDATE, failing: FAILING, goldPatch: GOLD, repo: 'acme/util', llm: silent })).source).toBe('template_after_error');
  });

  it('counts only non-trivial patch lines as quotes, whitespace aside', () => {
    const patch = '--- a/x.py\n+++ b/x.py\n@@ -1,2 +1,2 @@\n-    return x\n+    total = compute(x)\n';
    expect(quotesPatch('it does return x somewhere', patch)).toBe(false);
    expect(quotesPatch('try total=compute( x )', patch)).toBe(true);
  });

  it('finds the error a test ended with', () => {
    expect(observedError(FAILING[0]!.output)).toBe('AssertionError: assert 4 == 5');
    expect(observedError('E   ValueError: bad\nsomething after')).toBe('ValueError: bad');
    expect(observedError('just text')).toBe('just text');
  });
});

describe('per-test output from a whole-run log', () => {
  const PYTEST = [
    '============================= FAILURES =============================',
    '____________________________ test_clamp_edge ____________________________',
    '    def test_clamp_edge():',
    '>       assert clamp(5, 0, 5) == 5',
    'E       assert 4 == 5',
    'tests/test_util.py:7: AssertionError',
    '____________________________ test_other ____________________________',
    'E       ValueError: nope',
    '=========================== short test summary info ===========================',
    'FAILED tests/test_util.py::test_clamp_edge - assert 4 == 5',
  ].join('\n');
  const DJANGO = [
    'test_ok (app.tests.T) ... ok',
    '======================================================================',
    'FAIL: test_slug (utils_tests.test_text.TestUtilsText)',
    '----------------------------------------------------------------------',
    'Traceback (most recent call last):',
    '  File "/testbed/tests/utils_tests/test_text.py", line 9, in test_slug',
    "AssertionError: 'a-b' != 'a--b'",
    '',
    '----------------------------------------------------------------------',
    'Ran 2 tests in 0.01s',
  ].join('\n');

  it('finds pytest and unittest failure sections by the test id', () => {
    expect(outputFor('tests/test_util.py::test_clamp_edge', PYTEST)).toBe('    def test_clamp_edge():\n>       assert clamp(5, 0, 5) == 5\nE       assert 4 == 5\ntests/test_util.py:7: AssertionError'.trim());
    expect(observedError(outputFor('tests/test_util.py::test_clamp_edge', PYTEST))).toBe('AssertionError: assert 4 == 5');
    const django = outputFor('test_slug (utils_tests.test_text.TestUtilsText)', DJANGO);
    expect(django.startsWith('Traceback (most recent call last):')).toBe(true);
    expect(observedError(django)).toBe("AssertionError: 'a-b' != 'a--b'");
    expect(outputFor('tests/test_util.py::test_missing', PYTEST)).toBe('');
  });

  it('falls back to the log tail for the first test when the runner printed no sections', () => {
    const failing = failingFromLog(['a::t1', 'a::t2'], 'collected 2 items\nsegfault\n');
    expect(failing).toEqual([
      { id: 'a::t1', output: 'collected 2 items\nsegfault' },
      { id: 'a::t2', output: '' },
    ]);
    expect(failingFromLog(['tests/test_util.py::test_clamp_edge'], PYTEST)[0]!.output).toContain('assert 4 == 5');
  });
});

describe('failure sections of similar names', () => {
  it('does not take the section of a test whose name only starts with the id', () => {
    const log = '___ test_a_2 ___\nE   KeyError: 2\n___ TestX.test_a ___\nE   KeyError: 1\n';
    expect(outputFor('t.py::TestX::test_a', log)).toBe('E   KeyError: 1');
  });
});
