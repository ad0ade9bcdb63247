import { describe, expect, it } from 'vitest';
import { answerSynth, mutateFunctionText, synthStep } from '../../src/doubles/synth.js';
import { systemPrompt } from '../../src/agent/actions.js';
import { issuePrompt } from '../../src/synth/issue-text.js';
import { rewritePrompt } from '../../src/synth/strategies/llm-rewrite.js';
import { mulberry32 } from '../../src/util/prng.js';

// The SIMULATED policy's side of task synthesis, as pure functions.

const SOURCE = 'def f(a, b=1):\n    if a < b:\n        return True\n    return a + b';

describe('the SIMULATED synthesis answers', () => {
  it('recognise the two synthesis prompts and nothing else', () => {
    expect(synthStep(rewritePrompt('m.py', 'f', SOURCE))).toBe('rewrite');
    expect(synthStep(issuePrompt('acme/x', [{ id: 't', output: 'E   ValueError: x' }]))).toBe('issue');
    expect(synthStep([{ role: 'system', content: systemPrompt('SearchCode', 'json') }, { role: 'user', content: 'x' }])).toBeNull();
    expect(answerSynth([{ role: 'user', content: 'hi' }], 1)).toBeNull();
  });

  it('answer a rewrite with the function mutated once in its body, the same for the same seed, and other seeds reach other mutations', () => {
    const answers = new Set<string>();
    for (let seed = 0; seed < 20; seed++) {
      const answer = answerSynth(rewritePrompt('m.py', 'f', SOURCE), seed)!;
      expect(answer.step).toBe('rewrite');
      expect(answerSynth(rewritePrompt('m.py', 'f', SOURCE), seed)).toEqual(answer);
      const code = /```python\n([\s\S]*)\n```/.exec(answer.content)![1]!;
      expect(code.split('\n')[0]).toBe('def f(a, b=1):');
      expect(code).not.toBe(SOURCE);
      answers.add(code);
    }
    expect(answers.size).toBeGreaterThan(2);
  });

  it('leave a function with nothing to mutate unchanged, and answer an issue prompt from its errors', () => {
    expect(mutateFunctionText('def f():\n    pass', mulberry32(1))).toBe('def f():\n    pass');
    const issue = answerSynth(issuePrompt('acme/x', [{ id: 'tests/t.py::test_a', output: 'E   ValueError: bad input' }]), 0)!;
    expect(issue.step).toBe('issue');
    expect(issue.content).toContain('test_a: ValueError: bad input');
    expect(issue.content).toContain('acme/x');
  });
});
