import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PythonSpanParser, SpanSchema, type Span } from '../../src/agent/python-spans.js';

const REPOS = path.resolve(import.meta.dirname, '../fixtures/minigym/repos');

let parser: PythonSpanParser;
beforeAll(async () => {
  parser = await PythonSpanParser.create();
});

/** A line-numbered view of the spans, to compare with expectations at a glance. */
function layout(spans: readonly Span[]): string[] {
  return spans.map((s) => `${s.id} ${s.kind} ${s.startLine}-${s.endLine}`);
}

function textOf(text: string, span: Span | undefined): string {
  expect(span).toBeDefined();
  return text
    .split('\n')
    .slice(span!.startLine - 1, span!.endLine)
    .join('\n');
}

function byId(spans: readonly Span[], id: string): Span | undefined {
  return spans.find((s) => s.id === id);
}

/** Sorted, non-overlapping, unique ids, and every non-blank line in exactly one span. */
function expectPartition(text: string, spans: readonly Span[]): void {
  const lines = text.split('\n');
  expect(new Set(spans.map((s) => s.id)).size).toBe(spans.length);
  spans.forEach((span, i) => {
    expect(SpanSchema.parse(span)).toEqual(span);
    expect(span.startLine).toBeGreaterThanOrEqual(1);
    expect(span.endLine).toBeGreaterThanOrEqual(span.startLine);
    expect(span.endLine).toBeLessThanOrEqual(lines.length);
    if (i > 0) expect(span.startLine, `${span.id} overlaps ${spans[i - 1]!.id}`).toBeGreaterThan(spans[i - 1]!.endLine);
  });
  lines.forEach((line, row) => {
    if (line.trim() === '') return;
    const owners = spans.filter((s) => s.startLine <= row + 1 && row + 1 <= s.endLine).map((s) => s.id);
    expect(owners, `line ${row + 1}: ${line}`).toHaveLength(1);
  });
}

const SHAPES = `#!/usr/bin/env python
"""Shapes, for the span tests."""
from __future__ import annotations

import os
# a comment between imports
import sys

VERSION = "1.0"
import json

# --- helpers ---

@functools.lru_cache(maxsize=None)
@other
def cached(x):
    def inner():
        return x
    return inner()


# Comment directly above Shape
@dataclass(frozen=True)
class Shape:
    """A shape."""

    sides: int = 0

    # comment above area
    @property
    def area(self):
        return 0

    @area.setter
    def area(self, value):
        pass

    class Meta:
        ordering = ["sides"]

        def describe(self):
            return "meta"

    async def fetch(self):
        await self.load()

    label = property(lambda self: "shape")
    # still part of the class

async def main():
    pass

def cached(y):
    return y

if __name__ == '__main__':
    main()
# eof comment
`;

describe('PythonSpanParser', () => {
  it('splits a module into moatless-style spans', () => {
    const spans = parser.parse(SHAPES);
    expect(layout(spans)).toEqual([
      'impl module_code 1-2',
      'imports imports 3-7',
      'impl:2 module_code 9-9',
      'imports:2 imports 10-10',
      'cached function 12-19',
      'Shape class 22-27',
      'Shape.area method 29-32',
      'Shape.area:2 method 34-36',
      'Shape.Meta class 38-39',
      'Shape.Meta.describe method 41-42',
      'Shape.fetch method 44-45',
      'Shape:2 class 47-48',
      'main function 50-51',
      'cached:2 function 53-54',
      'impl:3 module_code 56-58',
    ]);
    expectPartition(SHAPES, spans);
  });

  it('starts a decorated definition at its first decorator, stacked decorators with arguments included', () => {
    const text = textOf(SHAPES, byId(parser.parse(SHAPES), 'cached'));
    expect(text).toBe(
      ['# --- helpers ---', '', '@functools.lru_cache(maxsize=None)', '@other', 'def cached(x):', '    def inner():', '        return x', '    return inner()'].join('\n'),
    );
  });

  it('gives nested functions no span of their own', () => {
    const ids = parser.parse(SHAPES).map((s) => s.id);
    expect(ids.some((id) => id.includes('inner'))).toBe(false);
  });

  it('keeps a class span to its header, docstring and fields, without its methods', () => {
    const text = textOf(SHAPES, byId(parser.parse(SHAPES), 'Shape'));
    expect(text).toBe(['# Comment directly above Shape', '@dataclass(frozen=True)', 'class Shape:', '    """A shape."""', '', '    sides: int = 0'].join('\n'));
    expect(text).not.toContain('def ');
  });

  it('attaches a comment directly above a method to the method', () => {
    expect(textOf(SHAPES, byId(parser.parse(SHAPES), 'Shape.area')).split('\n')[0]).toBe('    # comment above area');
  });

  it('numbers a property setter and a redefined function as duplicates', () => {
    const spans = parser.parse(SHAPES);
    expect(textOf(SHAPES, byId(spans, 'Shape.area:2'))).toContain('@area.setter');
    expect(textOf(SHAPES, byId(spans, 'cached:2'))).toBe('def cached(y):\n    return y');
  });

  it('handles nested classes and their methods', () => {
    const text = `class Outer:
    """Outer doc."""

    class Inner:
        flag = True

        def method(self):
            return 1

        class Deeper:
            def leaf(self):
                pass

    def after(self):
        return 2
`;
    const spans = parser.parse(text);
    expect(layout(spans)).toEqual([
      'Outer class 1-2',
      'Outer.Inner class 4-5',
      'Outer.Inner.method method 7-8',
      'Outer.Inner.Deeper class 10-10',
      'Outer.Inner.Deeper.leaf method 11-12',
      'Outer.after method 14-15',
    ]);
    expectPartition(text, spans);
  });

  it('treats async def like def, at module level and in classes', () => {
    const text = `async def fetch(url):
    return await get(url)


class Client:
    @staticmethod
    async def close():
        pass
`;
    expect(layout(parser.parse(text))).toEqual(['fetch function 1-2', 'Client class 5-5', 'Client.close method 6-8']);
  });

  it('puts module constants and the __main__ block into impl spans, one per run of statements', () => {
    const text = `"""Doc."""
A = 1
B = [
    2,
]

def f():
    pass

if __name__ == '__main__':
    f()
`;
    const spans = parser.parse(text);
    expect(layout(spans)).toEqual(['impl module_code 1-5', 'f function 7-8', 'impl:2 module_code 10-11']);
    expect(textOf(text, byId(spans, 'impl:2'))).toBe("if __name__ == '__main__':\n    f()");
  });

  it('splits imports interrupted by code and keeps contiguous imports with comments together', () => {
    const text = `import a
from b import (
    c,
    d,
)
# why e
import e
try:
    import f
except ImportError:
    f = None
from g import h
`;
    expect(layout(parser.parse(text))).toEqual(['imports imports 1-7', 'impl module_code 8-11', 'imports:2 imports 12-12']);
  });

  it('keeps a comment indented into the previous block with that block', () => {
    const text = `def first():
    return 1
    # the end of first

# about second
def second():
    return 2
`;
    const spans = parser.parse(text);
    expect(layout(spans)).toEqual(['first function 1-3', 'second function 5-7']);
  });

  it('still yields spans for a file with syntax errors, and never throws', () => {
    const text = `import os

def good():
    return 1

def broken(:
    return 2

class Fine:
    def m(self):
        return )(

x = = 3

def after():
    pass
`;
    const spans = parser.parse(text);
    const ids = spans.map((s) => s.id);
    expect(ids).toEqual(expect.arrayContaining(['imports', 'good', 'Fine', 'Fine.m', 'after']));
    expect(byId(spans, 'good')).toMatchObject({ startLine: 3, endLine: 4 });
    expect(byId(spans, 'after')).toMatchObject({ startLine: 15, endLine: 16 });
    expectPartition(text, spans);

    for (const garbage of ['def (', ')))\n(((', 'class :\n  def\n', '\u0000\u0001', 'x = """unterminated\n\ndef f(): pass\n']) {
      expect(() => expectPartition(garbage, parser.parse(garbage))).not.toThrow();
    }
  });

  it('returns nothing for an empty file and one module_code span for comments only', () => {
    expect(parser.parse('')).toEqual([]);
    expect(parser.parse('\n  \n')).toEqual([]);
    expect(parser.parse('\n# just\n# comments\n\n')).toEqual([{ id: 'impl', kind: 'module_code', startLine: 2, endLine: 3 }]);
  });

  it('gives CRLF files the same spans as LF files', () => {
    expect(parser.parse(SHAPES.replace(/\n/g, '\r\n'))).toEqual(parser.parse(SHAPES));
  });

  it('is reusable: parsing one file does not affect the next', () => {
    const first = parser.parse(SHAPES);
    parser.parse('class Other:\n    pass\n');
    expect(parser.parse(SHAPES)).toEqual(first);
  });

  describe('covers every non-blank line exactly once on the bundled repos', () => {
    const files = readdirSync(REPOS, { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.py'))
      .sort();

    it('finds the bundled Python files', () => {
      expect(files.length).toBeGreaterThan(30);
    });

    it.each(files)('%s', (file) => {
      const text = readFileSync(path.join(REPOS, file), 'utf8');
      const spans = parser.parse(text);
      expect(spans.length).toBeGreaterThan(0);
      expectPartition(text, spans);
    });
  });
});
