import { beforeAll, describe, expect, it } from 'vitest';
import { LintMessageSchema, lintPython, newLintMessages, type LintMessage } from '../../src/agent/lint.js';
import { PythonSpanParser } from '../../src/agent/python-spans.js';

let parser: PythonSpanParser;
beforeAll(async () => {
  parser = await PythonSpanParser.create();
});

/** The messages as `line code message`, validated against the schema on the way. */
function lint(text: string): string[] | null {
  const messages = lintPython(text, parser);
  return messages === null ? null : messages.map((m) => LintMessageSchema.parse(m)).map((m) => `${m.line} ${m.code} ${m.message}`);
}

const py = (...lines: string[]) => lines.join('\n') + '\n';

describe('lint: E0602 undefined-variable', () => {
  it('stays quiet on every way Python binds a name', () => {
    const text = py(
      'import os, os.path as osp',
      'import xml.etree.ElementTree',
      'from collections import OrderedDict, defaultdict as dd',
      'from . import sibling',
      'from .pkg import (a1, a2 as b2)',
      'plain = 1',
      'first, (second, third), *rest = range(5)',
      '[lst1, lst2] = 1, 2',
      'counter = 0',
      'counter += 1',
      'aug_only += 1',
      'annotated: int = 3',
      'declared_only: str',
      'for loop_var, (inner_a, inner_b) in []:',
      '    pass',
      'else:',
      '    pass',
      'with open(__file__) as handle, open(os.devnull) as (wa, wb):',
      '    pass',
      'try:',
      '    pass',
      'except (ValueError, KeyError) as caught:',
      '    print(caught)',
      'try:',
      '    pass',
      'except* OSError as group:',
      '    print(group)',
      'def func(p1, p2: int, p3=1, p4: str = "", *args, kw_only, kw2=2, **kwargs) -> "Fwd":',
      '    global glob',
      '    glob = p1',
      '    def inner():',
      '        nonlocal p1',
      '        return p1, p2, p3, p4, args, kw_only, kw2, kwargs',
      '    return inner',
      'async def coro(*, key):',
      '    async with ctx() as managed:',
      '        async for item in managed:',
      '            await item',
      '    return [y for x in key for y in x if y], {k: v for k, v in key}, {s for s in key}, (g for g in key)',
      'def ctx(): pass',
      'class Klass(OrderedDict, metaclass=type):',
      '    attr = 1',
      '    def method(self):',
      '        return self.attr, __class__, super()',
      'square = lambda n, *more, scale=2, **opts: n * scale + len(more) + len(opts)',
      'if (walrus := len(rest)) > 1:',
      '    print(walrus)',
      'match plain:',
      '    case [1, *tail]:',
      '        print(tail)',
      '    case {"k": value, **others}:',
      '        print(value, others)',
      '    case Klass(attr=captured) as whole if captured:',
      '        print(whole)',
      '    case str() | bytes():',
      '        pass',
      '    case other:',
      '        print(other)',
      'gone = 1',
      'del gone',
      'type Alias[T] = list[T]',
      'def generic[U](x: U) -> U: return x',
      'print(__name__, __doc__, __spec__, __loader__, __package__, __path__, __debug__, __file__)',
      'print(sibling, a1, b2, dd, osp, xml, first, second, third, lst1, lst2, counter, aug_only, annotated, declared_only)',
      'print(loop_var, inner_a, inner_b, handle, wa, wb, func, coro, square, glob, Alias, generic, len, isinstance, NotImplemented, Ellipsis, ExceptionGroup)',
    );
    expect(lint(text)).toEqual([]);
    // The same file with one unbound read: the quiet above is not the linter giving up on the file.
    expect(lint(text + 'print(unbound_canary)\n')).toEqual([`${text.split('\n').length} E0602 Undefined variable 'unbound_canary'`]);
  });

  it('reports each read of a name bound nowhere in the file, on its line', () => {
    const text = py(
      'import os',
      '',
      'def load(path):',
      '    data = read_text(path)',
      '    return parse(data, strict=STRICT)',
      '',
      'class Config:',
      '    def get(self, key):',
      '        return self.values.get(key, missing)',
      'print(read_text)',
    );
    expect(lint(text)).toEqual([
      "4 E0602 Undefined variable 'read_text'",
      "5 E0602 Undefined variable 'STRICT'",
      "5 E0602 Undefined variable 'parse'",
      "9 E0602 Undefined variable 'missing'",
      "10 E0602 Undefined variable 'read_text'",
    ]);
  });

  it('finds undefined names in every expression position: defaults, annotations, decorators, bases, f-strings, subscripts of targets', () => {
    const text = py(
      '@decorator_x',
      'def f(a=default_x, b: AnnotationX = 1) -> ReturnX:',
      '    a[index_x] = b',
      '    obj_x.attr = 1',
      '    return f"{a!r:>{width_x}} {b=}"',
      'class K(BaseX, metaclass=MetaX):',
      '    pass',
      'value: TypeX = [n for n in range(3) if n > limit_x]',
    );
    expect(lint(text)).toEqual([
      "1 E0602 Undefined variable 'decorator_x'",
      "2 E0602 Undefined variable 'AnnotationX'",
      "2 E0602 Undefined variable 'ReturnX'",
      "2 E0602 Undefined variable 'default_x'",
      "3 E0602 Undefined variable 'index_x'",
      "4 E0602 Undefined variable 'obj_x'",
      "5 E0602 Undefined variable 'width_x'",
      "6 E0602 Undefined variable 'BaseX'",
      "6 E0602 Undefined variable 'MetaX'",
      "8 E0602 Undefined variable 'TypeX'",
      "8 E0602 Undefined variable 'limit_x'",
    ]);
  });

  it('never counts attribute names, keyword argument names, import paths or string contents as reads', () => {
    const text = py(
      'import os.path',
      'from pkg.sub import thing',
      'print(os.path.join, thing.not_a_name.deeper)',
      'thing(keyword_only=1, **{"k": 2})',
      's = "undefined_in_string" + \'also_undefined\' + """doc undefined_doc"""',
      '# undefined_in_comment',
      'x: os.PathLike = thing',
    );
    expect(lint(text)).toEqual([]);
  });

  it('treats a class body\'s names as bound everywhere, though methods cannot see them (a miss, never a false report)', () => {
    const text = py('class A:', '    limit = 3', '    def over(self, n):', '        return n > limit');
    expect(lint(text)).toEqual([]);
  });

  it('global and nonlocal declarations, del targets and Python 2 except targets count as bindings; del obj.attr reads obj', () => {
    expect(lint(py('def f():', '    global declared_g', '    return declared_g'))).toEqual([]);
    expect(lint(py('def f():', '    def g():', '        nonlocal declared_n', '        return declared_n'))).toEqual([]);
    expect(lint(py('del only_deleted', 'print(only_deleted)'))).toEqual([]);
    expect(lint(py('del holder_x.attr, seq_x[key_x]'))).toEqual([
      "1 E0602 Undefined variable 'holder_x'",
      "1 E0602 Undefined variable 'key_x'",
      "1 E0602 Undefined variable 'seq_x'",
    ]);
    expect(lint(py('try:', '    pass', 'except ValueError, err:', '    print(err)'))).toEqual([]);
  });

  it('a name bound in any scope counts as bound in all of them', () => {
    const text = py('def a():', '    local = 1', '    return local', 'def b():', '    return local');
    expect(lint(text)).toEqual([]);
  });

  it('reports nothing for a file with a star import, or code that can make names at run time', () => {
    expect(lint(py('from os.path import *', 'print(join(undefined_a))'))).toEqual([]);
    expect(lint(py('globals()["made"] = 1', 'print(made)'))).toEqual([]);
    expect(lint(py('exec("made = 1")', 'print(made)'))).toEqual([]);
    expect(lint(py('import builtins', 'builtins.made = 1', 'print(made)'))).toEqual([]);
    expect(lint(py('__builtins__["made"] = 1', 'print(made)'))).toEqual([]);
    // The control: the same read without them is reported.
    expect(lint(py('print(made)'))).toEqual(["1 E0602 Undefined variable 'made'"]);
  });

  it('stays quiet on reads probed by try/except NameError (or a handler catching everything)', () => {
    expect(lint(py('try:', '    maybe_a', 'except NameError:', '    pass'))).toEqual([]);
    expect(lint(py('try:', '    maybe_b()', 'except (ImportError, NameError) as e:', '    pass'))).toEqual([]);
    expect(lint(py('try:', '    maybe_c()', 'except:', '    pass'))).toEqual([]);
    expect(lint(py('try:', '    maybe_d()', 'except Exception:', '    pass'))).toEqual([]);
    // Only the try body is probed: the handler itself and narrower handlers are not.
    expect(lint(py('try:', '    maybe_e()', 'except KeyError:', '    handler_x()'))).toEqual([
      "2 E0602 Undefined variable 'maybe_e'",
      "4 E0602 Undefined variable 'handler_x'",
    ]);
  });

  it('knows Python 3 builtins and treats Python 2 names and `_` as known', () => {
    expect(lint(py('print(len, breakpoint, aiter, anext, ModuleNotFoundError, TimeoutError, copyright, exit)'))).toEqual([]);
    expect(lint(py('print(unicode, basestring, xrange, _("text"), WindowsError)'))).toEqual([]);
    expect(lint(py('reveal_type(1)'))).toEqual(["1 E0602 Undefined variable 'reveal_type'"]);
  });

  it('counts lines the same in CRLF files', () => {
    expect(lint('import os\r\n\r\ndef f():\r\n    return os.sep + crlf_x\r\n')).toEqual(["4 E0602 Undefined variable 'crlf_x'"]);
  });

  it('lints code nested thousands of levels deep without overflowing the stack', () => {
    expect(lint(`x = ${'['.repeat(20_000)}deep_y${']'.repeat(20_000)}\n`)).toEqual(["1 E0602 Undefined variable 'deep_y'"]);
  });

  it('returns null for a file that does not parse (tree-sitter would make names up)', () => {
    expect(lintPython(py('def broken(:', '    return nowhere'), parser)).toBeNull();
    expect(lintPython('', parser)).toEqual([]);
  });
});

describe('lint: E0102 function-redefined', () => {
  it('reports a second unconditional, undecorated definition in the module or one class body', () => {
    const text = py(
      'def dup():',
      '    return 1',
      '',
      'def dup():',
      '    return 2',
      '',
      'class Twice:',
      '    def m(self):',
      '        pass',
      '    def m(self):',
      '        pass',
      '',
      'class Twice:',
      '    pass',
    );
    expect(lint(text)).toEqual([
      "4 E0102 function 'dup' already defined at line 1",
      "10 E0102 method 'm' already defined at line 8",
      "13 E0102 class 'Twice' already defined at line 7",
    ]);
  });

  it('stays quiet where a second definition can be deliberate', () => {
    const text = py(
      'from typing import overload',
      '@overload',
      'def over(x: int) -> int: ...',
      '@overload',
      'def over(x: str) -> str: ...',
      'def over(x): return x',
      'class P:',
      '    @property',
      '    def v(self): return 1',
      '    @v.setter',
      '    def v(self, value): pass',
      'def cond(): pass',
      'if True:',
      '    def cond(): pass',
      'try:',
      '    def trying(): pass',
      'except ImportError:',
      '    def trying(): pass',
      'def wrapped(): pass',
      'original = wrapped',
      'def wrapped(): return original()',
      'def _private(): pass',
      'def _private(): pass',
      'def mixed(): pass',
      'class mixed: pass',
      'def nested():',
      '    def helper(): pass',
      '    def helper(): pass',
    );
    expect(lint(text)).toEqual([]);
  });
});

describe('lint: the messages an edit introduced', () => {
  const message = (line: number, name: string): LintMessage => ({ line, code: 'E0602', symbol: 'undefined-variable', message: `Undefined variable '${name}'` });

  it('compares as multisets of (code, text), so messages that only moved are not new', () => {
    const before = [message(3, 'a'), message(10, 'b')];
    const after = [message(5, 'a'), message(12, 'b'), message(14, 'c')];
    expect(newLintMessages(before, after)).toEqual([message(14, 'c')]);
  });

  it('one more occurrence of the same message is one new message, preferably the one inside the edit', () => {
    const before = [message(3, 'a'), message(30, 'a')];
    const after = [message(3, 'a'), message(8, 'a'), message(20, 'a')];
    expect(newLintMessages(before, after, { start: 7, end: 9 })).toEqual([message(8, 'a')]);
    expect(newLintMessages(before, after, { start: 19, end: 21 })).toEqual([message(20, 'a')]);
    expect(newLintMessages(before, after, { start: 1, end: 4 })).toEqual([message(3, 'a')]);
    expect(newLintMessages([message(3, 'a')], after, { start: 7, end: 9 })).toEqual([message(8, 'a'), message(20, 'a')]);
  });

  it('a fixed error is not reported, and an unchanged file has nothing new', () => {
    expect(newLintMessages([message(3, 'a')], [])).toEqual([]);
    expect(newLintMessages([message(3, 'a')], [message(3, 'a')])).toEqual([]);
  });

  it('a redefinition whose first line moved is not new', () => {
    const before = lintPython(py('def f(): pass', 'def f(): pass'), parser)!;
    const after = lintPython(py('import os', '', 'def f(): pass', 'def f(): return os'), parser)!;
    expect(before).toHaveLength(1);
    expect(after).toEqual([{ line: 4, code: 'E0102', symbol: 'function-redefined', message: "function 'f' already defined at line 3" }]);
    expect(newLintMessages(before, after)).toEqual([]);
  });

  it('end to end on two versions of a file: only the name the edit introduced', () => {
    const before = py('def f(x):', '    return helper(x)', '', 'def g(y):', '    return y');
    const after = py('def f(x):', '    return helper(x)', '', 'def g(y):', '    return helper(y) + z');
    const fresh = newLintMessages(lintPython(before, parser)!, lintPython(after, parser)!, { start: 4, end: 5 });
    expect(fresh.map((m) => `${m.line} ${m.message}`)).toEqual(["5 Undefined variable 'helper'", "5 Undefined variable 'z'"]);
  });
});
