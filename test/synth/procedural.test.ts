import { beforeAll, describe, expect, it } from 'vitest';
import type { FunctionTarget } from '../../src/synth/candidate.js';
import { MODIFIERS, proceduralStrategy } from '../../src/synth/strategies/procedural/index.js';
import { createPythonParser, mutateFunction, type PythonParser } from '../../src/synth/strategies/procedural/tree.js';
import { mulberry32 } from '../../src/util/prng.js';
import type { RepoView } from '../../src/synth/strategy.js';
import type { Candidate } from '../../src/synth/candidate.js';
import { collect } from './collect.js';

// A module with one function exercising every construct a modifier looks for, between two others that must never change.
const SAMPLE = `import os


def before(a, b):
    return a - b < 3 and True


class Stats:
    def summarize(self, values, limit=10):
        """Sum the first values, skipping negatives."""
        total = 0
        count = 0
        for i in range(len(values)):
            if values[i] < 0:
                continue
            if i >= limit and not values:
                break
            total += values[i] * 2
            count = count + 1 + 0
            print(i, total)
        while count > 100:
            count -= 1
        if total == 0:
            result = None
        else:
            result = (total - count) / 2
        head = values[1:limit]
        result = max(result or 0, len(head))
        done = False
        return result


def after(x):
    return x[0:2] + 1
`;

const lines = SAMPLE.split('\n');
/** 1-based line of the first line containing `text`. */
const lineOf = (text: string) => lines.findIndex((l) => l.includes(text)) + 1;
const TARGET: FunctionTarget = { file: 'pkg/stats.py', name: 'Stats.summarize', start_line: lineOf('def summarize'), end_line: lineOf('return result') };
const outsideBefore = lines.slice(0, TARGET.start_line - 1).join('\n');
const outsideAfter = lines.slice(TARGET.end_line).join('\n');

let parser: PythonParser;
beforeAll(async () => {
  parser = await createPythonParser();
});

describe('procedural modifiers', () => {
  for (const modifier of MODIFIERS) {
    it(`${modifier.kind}: rewrites only the target, still parses, differs, and is deterministic under its seed`, () => {
      const out = mutateFunction(parser, SAMPLE, TARGET, modifier, mulberry32(7));
      expect(out.length).toBeGreaterThan(0);
      for (const rewrite of out) {
        expect(rewrite.text).not.toBe(SAMPLE);
        expect(rewrite.kind).toBe(modifier.kind);
        expect(rewrite.text.startsWith(outsideBefore + '\n')).toBe(true);
        expect(rewrite.text.endsWith('\n' + outsideAfter)).toBe(true);
        expect(parser.syntaxError(rewrite.text)).toBeNull();
      }
      expect(mutateFunction(parser, SAMPLE, TARGET, modifier, mulberry32(7))).toEqual(out);
    });
  }

  it('gives nothing for a function that is not there', () => {
    const missing = { ...TARGET, start_line: 2 };
    for (const modifier of MODIFIERS) expect(mutateFunction(parser, SAMPLE, missing, modifier, mulberry32(1))).toEqual([]);
  });

  it('makes the expected rewrites of small samples', () => {
    const text = 'def f(xs, n):\n    if n < len(xs):\n        return xs[0:n]\n    return xs\n';
    const target = { file: 'f.py', name: 'f', start_line: 1, end_line: 4 };
    const byKind = (kind: string) => mutateFunction(parser, text, target, MODIFIERS.find((m) => m.kind === kind)!, mulberry32(3)).map((r) => r.text);
    expect(byKind('invert_condition')).toEqual([text.replace('if n < len(xs):', 'if not (n < len(xs)):')]);
    expect(byKind('swap_operands')).toEqual([text.replace('n < len(xs)', 'len(xs) < n')]);
    expect(byKind('remove_conditional')).toEqual(['def f(xs, n):\n    return xs\n']);
    expect(byKind('add_guard')).toContain(text.replace('    if n <', '    if not xs:\n        return xs\n    if n <'));
    const bounds = byKind('off_by_one');
    expect(bounds).toHaveLength(2);
    expect(bounds.every((t) => /xs\[(1:n|0:n [+-] 1)\]/.test(t))).toBe(true);
  });

  it('finds a decorated function by its first decorator line too (co_firstlineno since Python 3.8)', () => {
    const text = 'class A:\n    @property\n    @other\n    def size(self):\n        return len(self.items) + 1\n';
    const modifier = MODIFIERS.find((m) => m.kind === 'change_arithmetic')!;
    const expected = [text.replace('+ 1', '- 1')];
    expect(mutateFunction(parser, text, { file: 'a.py', name: 'A.size', start_line: 2, end_line: 5 }, modifier, mulberry32(1)).map((r) => r.text)).toEqual(expected);
    expect(mutateFunction(parser, text, { file: 'a.py', name: 'A.size', start_line: 4, end_line: 5 }, modifier, mulberry32(1)).map((r) => r.text)).toEqual(expected);
  });

  it('checks a function with a string at column 0 against the whole file', () => {
    const text = 'class A:\n    def f(self, x):\n        s = """\ncolumn zero\n"""\n        return x + 1\n';
    const target = { file: 'f.py', name: 'A.f', start_line: 2, end_line: 6 };
    const out = mutateFunction(parser, text, target, MODIFIERS.find((m) => m.kind === 'change_arithmetic')!, mulberry32(3));
    expect(out.map((r) => r.text)).toEqual([text.replace('x + 1', 'x - 1')]);
  });

  it('skips a function whose rewrite would not parse, and a function in a file that already fails to parse outside it keeps its own checks', () => {
    const broken = 'def f(x):\n    return x + 1\n\ndef g(:\n    pass\n';
    const target = { file: 'f.py', name: 'f', start_line: 1, end_line: 2 };
    const out = mutateFunction(parser, broken, target, MODIFIERS.find((m) => m.kind === 'change_arithmetic')!, mulberry32(3));
    expect(out.map((r) => r.text)).toEqual([broken.replace('x + 1', 'x - 1')]);
  });
});

function repoOf(files: Record<string, string>): RepoView {
  return {
    readFile: async (path) => {
      const text = files[path];
      if (text === undefined) throw new Error(`no ${path}`);
      return text;
    },
    git: async () => {
      throw new Error('no history');
    },
  };
}

describe('the procedural strategy', () => {
  const targets: FunctionTarget[] = [
    { file: 'pkg/stats.py', name: 'before', start_line: lineOf('def before'), end_line: lineOf('def before') + 1 },
    TARGET,
    { file: 'pkg/stats.py', name: 'after', start_line: lineOf('def after'), end_line: lineOf('def after') + 1 },
    { file: 'pkg/missing.py', name: 'gone', start_line: 1, end_line: 2 },
  ];
  const repo = repoOf({ 'pkg/stats.py': SAMPLE });

  it('gives the same candidates in the same order for the same seed, and others for another seed', async () => {
    const a = await collect(proceduralStrategy.candidates({ repo, targets, seed: 5, limit: 12 }));
    const b = await collect(proceduralStrategy.candidates({ repo, targets, seed: 5, limit: 12 }));
    const c = await collect(proceduralStrategy.candidates({ repo, targets, seed: 6, limit: 12 }));
    expect(a).toHaveLength(12);
    expect(b).toEqual(a);
    expect(c.map((x) => x.description)).not.toEqual(a.map((x) => x.description));
  });

  it('spreads candidates over targets and kinds, never repeats a file, and stops at the limit', async () => {
    const all = await collect(proceduralStrategy.candidates({ repo, targets, seed: 1, limit: 40 }));
    expect(all).toHaveLength(40);
    // The first round reaches every target that has candidates.
    expect(new Set(all.slice(0, 3).map((c) => c.functions[0]!.name))).toEqual(new Set(['before', 'Stats.summarize', 'after']));
    const kinds = new Set(all.map((c) => c.kind));
    expect(kinds.size).toBeGreaterThanOrEqual(15);
    expect(new Set(all.map((c) => c.edits[0]!.after)).size).toBe(all.length);
    for (const c of all) {
      expect(c.strategy).toBe('procedural');
      expect(c.edits).toHaveLength(1);
      expect(c.edits[0]!.before).toBe(SAMPLE);
      expect(c.description).toContain(c.kind);
    }
  });

  it('yields nothing for no targets or a zero limit, and runs dry when every rewrite is used', async () => {
    expect(await collect(proceduralStrategy.candidates({ repo, targets: [], seed: 1, limit: 5 }))).toEqual([]);
    expect(await collect(proceduralStrategy.candidates({ repo, targets, seed: 1, limit: 0 }))).toEqual([]);
    const small = await collect(proceduralStrategy.candidates({ repo, targets: [targets[0]!], seed: 1, limit: 1000 }));
    expect(small.length).toBeGreaterThan(3);
    expect(small.length).toBeLessThan(20);
  });
});
