import type { Node, TreeCursor } from 'web-tree-sitter';
import { z } from 'zod';
import { rowAt } from '../util/rows.js';
import type { PythonSpanParser } from './python-spans.js';

/**
 * A small, conservative Python linter over the tree-sitter tree, standing in for the pylint run
 * SWE-Gym's moatless fork made after each edit (design §5: PlanToCode sees the lint errors the last
 * edit introduced). The host has no Python, so this reports the two pylint errors that a syntax tree
 * decides on its own:
 *
 * - E0602 undefined-variable: a name read somewhere in the file that nothing in the file binds (in
 *   any scope) and that is not a builtin.
 * - E0102 function-redefined: a function or class defined a second time in the same module or class
 *   body, both unconditional and undecorated, with nothing in between that mentions the name.
 *
 * The messages end up in training data, so a wrong report costs more than a missed one: whenever the
 * tree leaves room for doubt (syntax errors, star imports, code that creates names at run time,
 * reads guarded by `except NameError`, class-scope rules, Python 2 names) nothing is reported.
 */

export const LintMessageSchema = z.object({
  /** 1-based line of the offending name or definition. */
  line: z.number().int().positive(),
  /** pylint's message id, e.g. `E0602`. */
  code: z.string(),
  /** pylint's symbolic name, e.g. `undefined-variable`. */
  symbol: z.string(),
  message: z.string(),
});
export type LintMessage = z.infer<typeof LintMessageSchema>;

/** What Python 3 puts in `builtins` (3.8 to 3.13, union). */
const BUILTINS = [
  'ArithmeticError', 'AssertionError', 'AttributeError', 'BaseException', 'BaseExceptionGroup', 'BlockingIOError',
  'BrokenPipeError', 'BufferError', 'BytesWarning', 'ChildProcessError', 'ConnectionAbortedError', 'ConnectionError',
  'ConnectionRefusedError', 'ConnectionResetError', 'DeprecationWarning', 'EOFError', 'Ellipsis', 'EncodingWarning',
  'EnvironmentError', 'Exception', 'ExceptionGroup', 'False', 'FileExistsError', 'FileNotFoundError',
  'FloatingPointError', 'FutureWarning', 'GeneratorExit', 'IOError', 'ImportError', 'ImportWarning',
  'IndentationError', 'IndexError', 'InterruptedError', 'IsADirectoryError', 'KeyError', 'KeyboardInterrupt',
  'LookupError', 'MemoryError', 'ModuleNotFoundError', 'NameError', 'None', 'NotADirectoryError', 'NotImplemented',
  'NotImplementedError', 'OSError', 'OverflowError', 'PendingDeprecationWarning', 'PermissionError',
  'ProcessLookupError', 'PythonFinalizationError', 'RecursionError', 'ReferenceError', 'ResourceWarning',
  'RuntimeError', 'RuntimeWarning', 'StopAsyncIteration', 'StopIteration', 'SyntaxError', 'SyntaxWarning',
  'SystemError', 'SystemExit', 'TabError', 'TimeoutError', 'True', 'TypeError', 'UnboundLocalError',
  'UnicodeDecodeError', 'UnicodeEncodeError', 'UnicodeError', 'UnicodeTranslateError', 'UnicodeWarning',
  'UserWarning', 'ValueError', 'Warning', 'ZeroDivisionError',
  '__build_class__', '__debug__', '__doc__', '__import__', '__loader__', '__name__', '__package__', '__spec__',
  'abs', 'aiter', 'all', 'anext', 'any', 'ascii', 'bin', 'bool', 'breakpoint', 'bytearray', 'bytes', 'callable',
  'chr', 'classmethod', 'compile', 'complex', 'copyright', 'credits', 'delattr', 'dict', 'dir', 'divmod',
  'enumerate', 'eval', 'exec', 'exit', 'filter', 'float', 'format', 'frozenset', 'getattr', 'globals', 'hasattr',
  'hash', 'help', 'hex', 'id', 'input', 'int', 'isinstance', 'issubclass', 'iter', 'len', 'license', 'list',
  'locals', 'map', 'max', 'memoryview', 'min', 'next', 'object', 'oct', 'open', 'ord', 'pow', 'print', 'property',
  'quit', 'range', 'repr', 'reversed', 'round', 'set', 'setattr', 'slice', 'sorted', 'staticmethod', 'str', 'sum',
  'super', 'tuple', 'type', 'vars', 'zip',
];

/**
 * Names a module or class body has without binding them, plus names that exist only on some hosts or
 * under some setups. Treating the latter as bound trades a miss for never flagging working code:
 * `WindowsError` (Windows builtins), `_` (gettext.install puts it in builtins), and the Python 2
 * builtins, which old code uses behind version checks that a tree cannot evaluate.
 */
const IMPLICIT = [
  '__file__', '__builtins__', '__path__', '__cached__', '__annotations__', '__dict__', '__module__', '__qualname__',
  '__class__', 'WindowsError', '_',
  'unicode', 'basestring', 'long', 'xrange', 'raw_input', 'unichr', 'reduce', 'file', 'execfile', 'cmp', 'buffer',
  'apply', 'intern', 'coerce', 'reload', 'StandardError',
];

const KNOWN = new Set([...BUILTINS, ...IMPLICIT]);

/**
 * Reads of these mean the file can create names the tree cannot see (`globals()[name] = …`,
 * `exec(code)`, writing to the builtins module), so undefined names are not reported for it.
 */
const DYNAMIC_NAMES = new Set(['globals', 'exec', 'execfile', '__builtins__', '__builtin__', 'builtins']);

/** Exception names whose handler makes a `try` body's reads safe even when the name is undefined. */
const CATCHES_NAME_ERROR = /\b(NameError|Exception|BaseException)\b/;

/** Lists of targets: every element is itself a target. */
const TARGET_LISTS = new Set(['tuple_pattern', 'list_pattern', 'pattern_list', 'tuple', 'list', 'parenthesized_expression', 'expression_list', 'list_splat_pattern', 'list_splat', 'as_pattern_target']);

/** Parameter shapes whose `type` and `value` are expressions and whose other parts are names. */
const PARAMETER_SHAPES = new Set(['default_parameter', 'typed_default_parameter', 'typed_parameter']);

/**
 * How the identifiers below a node count. `read`: an expression (identifiers are reads unless the
 * node's shape says otherwise); `target`: an assignment target (identifiers bind, `a.b`/`a[i]` read
 * `a` and `i`); `bind`: every identifier binds; `skip`: no identifier counts; `parameters`: a
 * parameter list; `parameter`: one parameter with a default or annotation.
 */
type Mode = 'read' | 'target' | 'bind' | 'skip' | 'parameters' | 'parameter';

function named(node: Node): Node[] {
  return node.namedChildren.filter((child): child is Node => child !== null);
}

/** A node whose children the walk is in. */
interface Frame {
  type: string;
  mode: Mode;
  guarded: boolean;
  /** A try statement whose body probes for names (see probesForNames). */
  probes: boolean;
  /** Whether its children's modes depend on their field names. */
  byField: boolean;
  /** Named children seen so far. */
  index: number;
}

/** Moves the cursor past the current node's subtree: to the next sibling, else up until there is one. False at the end of the tree. */
function advance(cursor: TreeCursor, stack: Frame[]): boolean {
  while (stack.length > 0) {
    if (cursor.gotoNextSibling()) return true;
    cursor.gotoParent();
    stack.pop();
  }
  return false;
}

/**
 * One pass over the tree: every name the file binds, every name it reads, and what forbids reporting.
 * It walks with a cursor rather than node objects: a 7,000-line file has ~100,000 nodes, and a node
 * object per visit cost several times the parse.
 */
class NameCollector {
  readonly bound = new Set<string>();
  /** Unguarded reads: name → start offsets in the text. */
  readonly reads = new Map<string, number[]>();
  /** `from x import *`, `globals()`, `exec`, …: names can come from where the tree does not show. */
  opaque = false;
  /** Bodies of every class, for the redefinition check. */
  readonly classBodies: Node[] = [];

  constructor(private readonly text: string) {}

  /**
   * Walks the whole tree under the cursor. Iterative, with its own stack: code nested a few thousand
   * levels deep (which an edit may write) would overflow the call stack of a recursive walk.
   */
  walk(cursor: TreeCursor): void {
    const stack: Frame[] = [];
    let type = cursor.nodeType;
    let mode: Mode = 'read';
    let guarded = false;
    for (;;) {
      const frame = this.enter(cursor, type, mode, guarded);
      let more: boolean;
      if (frame && cursor.gotoFirstChild()) {
        stack.push(frame);
        more = true;
      } else {
        more = advance(cursor, stack);
      }
      while (more && !cursor.nodeIsNamed) more = advance(cursor, stack);
      if (!more) return;
      const parent = stack.at(-1)!;
      const field = parent.byField ? cursor.currentFieldName : null;
      type = cursor.nodeType;
      mode = childMode(parent.type, parent.mode, field, type, parent.index);
      guarded = parent.guarded || (parent.probes && field === 'body');
      parent.index += 1;
    }
  }

  /** Takes in the node under the cursor; returns how to walk its children, or null to skip them. */
  private enter(cursor: TreeCursor, type: string, mode: Mode, guarded: boolean): Frame | null {
    if (type === 'identifier') {
      this.identifier(cursor, mode, guarded);
      return null;
    }
    if (mode === 'skip' || NO_NAMES.has(type)) return null;
    let probes = false;
    if (mode === 'read') {
      if (IMPORTS.has(type)) {
        this.imports(cursor.currentNode);
        return null;
      }
      if (type === 'class_definition') {
        const body = cursor.currentNode.childForFieldName('body');
        if (body) this.classBodies.push(body);
      }
      probes = type === 'try_statement' && !guarded && probesForNames(cursor.currentNode);
    }
    // Field names cost a call into wasm per node; only some parents decide by them.
    return { type, mode, guarded, probes, byField: probes || mode === 'parameter' || FIELD_PARENTS.has(type), index: 0 };
  }

  private identifier(cursor: TreeCursor, mode: Mode, guarded: boolean): void {
    const start = cursor.startIndex;
    const name = this.text.slice(start, cursor.endIndex);
    if (mode === 'skip') return;
    if (mode !== 'read') {
      this.bound.add(name);
      return;
    }
    if (DYNAMIC_NAMES.has(name)) this.opaque = true;
    if (guarded) return;
    const starts = this.reads.get(name);
    if (starts) starts.push(start);
    else this.reads.set(name, [start]);
  }

  private imports(node: Node): void {
    const moduleName = node.childForFieldName('module_name');
    for (const child of named(node)) {
      if (child.type === 'wildcard_import') this.opaque = true;
      if (moduleName && child.equals(moduleName)) continue;
      if (child.type === 'aliased_import') {
        const alias = child.childForFieldName('alias');
        if (alias) this.bound.add(alias.text);
      } else if (child.type === 'dotted_name') {
        // `import a.b.c` binds `a`; `from m import x` binds `x`.
        const first = named(child)[0];
        if (first) this.bound.add(first.text);
        if (node.type === 'import_statement' && DYNAMIC_NAMES.has(child.text)) this.opaque = true;
      }
    }
  }
}

const IMPORTS = new Set(['import_statement', 'import_from_statement', 'future_import_statement']);

/** Nodes that never hold a name: not descended into. */
const NO_NAMES = new Set(['comment', 'string_start', 'string_content', 'string_end', 'escape_sequence', 'integer', 'float', 'true', 'false', 'none', 'ellipsis', 'type_conversion', 'pass_statement', 'break_statement', 'continue_statement', 'keyword_separator', 'positional_separator', 'wildcard_import', 'line_continuation']);

/** Parents whose children count by their field (see childMode). */
const FIELD_PARENTS = new Set(['attribute', 'keyword_argument', 'function_definition', 'class_definition', 'lambda', 'assignment', 'augmented_assignment', 'for_statement', 'for_in_clause', 'except_clause', 'named_expression', 'type_alias_statement']);

/** How a child of a node (of `parentType`, walked in `mode`) is walked. */
function childMode(parentType: string, mode: Mode, field: string | null, type: string, index: number): Mode {
  switch (mode) {
    case 'bind':
      return 'bind';
    case 'target':
      // `obj.attr = …`, `seq[i] = …`: the object and the index are reads.
      return TARGET_LISTS.has(parentType) ? 'target' : childMode(parentType, 'read', field, type, index);
    case 'parameters':
      // `*args`, `**kwargs`, Python 2 tuple parameters, and shapes not foreseen: their names are parameters.
      return PARAMETER_SHAPES.has(type) ? 'parameter' : 'bind';
    case 'parameter':
      return field === 'type' || field === 'value' ? 'read' : 'bind';
    default:
  }
  switch (parentType) {
    case 'attribute':
      // `x.y`: only `x` is a name; `y` is looked up on the object.
      return field === 'object' ? 'read' : 'skip';
    case 'member_type':
    case 'dotted_name':
      // `a.B` in an annotation, `a.b` outside imports and case patterns: the first part is a name.
      return index === 0 ? 'read' : 'skip';
    case 'keyword_argument':
      return field === 'name' ? 'skip' : 'read';
    case 'function_definition':
    case 'class_definition':
      if (field === 'name' || field === 'type_parameters') return 'bind';
      return type === 'parameters' ? 'parameters' : 'read';
    case 'lambda':
      return field === 'parameters' ? 'parameters' : 'read';
    case 'assignment':
    case 'augmented_assignment':
    case 'for_statement':
    case 'for_in_clause':
      return field === 'left' ? 'target' : 'read';
    case 'as_pattern_target':
    case 'delete_statement':
      return 'target';
    case 'except_clause':
      // Python 3's `except E as e` is an as_pattern; Python 2's `except E, e:` (which tree-sitter
      // accepts) gives the name as a second value, and older grammars put it in an alias field.
      return field === 'alias' || (index > 0 && type !== 'block') ? 'target' : 'read';
    case 'named_expression':
      return field === 'name' ? 'bind' : 'read';
    case 'global_statement':
    case 'nonlocal_statement':
      // Declares where a name lives; whether it is bound is up to the assignments. Counting it as
      // bound errs towards silence.
      return 'bind';
    case 'type_alias_statement':
      return field === 'left' ? 'bind' : 'read';
    default:
  }
  // Captures bind; class and value patterns read. Telling them apart needs the names' scope, so
  // every name in a pattern counts as bound: at worst an undefined class name is missed.
  return type === 'case_pattern' ? 'bind' : 'read';
}

/**
 * Whether a `try` catches NameError (or everything): a read inside its body is how code probes for a
 * name that may not exist, and pylint stays quiet there too.
 */
function probesForNames(tryStatement: Node): boolean {
  return named(tryStatement).some((clause) => {
    if (clause.type !== 'except_clause' && clause.type !== 'except_group_clause') return false;
    const value = clause.childForFieldName('value');
    if (!value) {
      // A bare `except:` catches everything; an `except X` whose type the grammar put elsewhere is read as text.
      const typed = named(clause).find((child) => child.type !== 'block' && child.type !== 'comment');
      return typed === undefined || CATCHES_NAME_ERROR.test(typed.text);
    }
    const caught = value.type === 'as_pattern' ? (named(value)[0] ?? value) : value;
    return CATCHES_NAME_ERROR.test(caught.text);
  });
}

const WORD = /[\p{L}\p{Nl}_][\p{L}\p{Nl}\p{Mn}\p{Mc}\p{Nd}\p{Pc}]*/gu;

/** E0102 over one block of statements: the module, or a class body. */
function redefinitions(statements: readonly Node[], inClass: boolean, messages: LintMessage[]): void {
  // name → where it was last defined, while nothing since has made a redefinition legitimate.
  const defined = new Map<string, { kind: 'function' | 'class'; row: number }>();
  for (const statement of statements) {
    const plain = statement.type === 'function_definition' || statement.type === 'class_definition';
    const name = plain ? statement.childForFieldName('name')?.text : undefined;
    if (name) {
      const kind = statement.type === 'function_definition' ? 'function' : 'class';
      const earlier = defined.get(name);
      // Names starting with `_` are pylint's "dummy" names, exempt from this check.
      if (earlier && earlier.kind === kind && !name.startsWith('_')) {
        const what = kind === 'class' ? 'class' : inClass ? 'method' : 'function';
        messages.push({ line: statement.startPosition.row + 1, code: 'E0102', symbol: 'function-redefined', message: `${what} '${name}' already defined at line ${earlier.row + 1}` });
      }
    }
    // Any mention of a defined name since its definition (a wrapper reading it, an assignment, a
    // conditional or decorated definition: overload, property setters, dispatch registration) may make
    // a second definition deliberate. Words of the text stand in for names: strings and comments
    // count too, which only errs towards silence.
    for (const word of statement.text.matchAll(WORD)) if (word[0] !== name) defined.delete(word[0]);
    if (name) defined.set(name, { kind: statement.type === 'function_definition' ? 'function' : 'class', row: statement.startPosition.row });
  }
}

/**
 * The lint messages of a Python file, sorted by line; null when the file does not parse (tree-sitter's
 * recovery would make names up). Pure: the same text gives the same messages.
 */
export function lintPython(text: string, parser: PythonSpanParser): LintMessage[] | null {
  // Every sample of an instance lints the same original files, and each edit's "after" is the next
  // edit's "before": a few recent results spare most of the work.
  const cached = recent.get(text);
  if (cached !== undefined) {
    recent.delete(text);
    recent.set(text, cached);
    return cached === null ? null : cached.map((m) => ({ ...m }));
  }
  const messages = lintTree(text, parser);
  recent.set(text, messages);
  if (recent.size > RECENT_LIMIT) recent.delete(recent.keys().next().value!);
  return messages === null ? null : messages.map((m) => ({ ...m }));
}

/** Texts linted lately (least recent first) and their messages. */
const recent = new Map<string, LintMessage[] | null>();
const RECENT_LIMIT = 32;

function lintTree(text: string, parser: PythonSpanParser): LintMessage[] | null {
  return parser.withTree(text, (root) => {
    if (root.hasError) return null;
    const messages: LintMessage[] = [];
    const names = new NameCollector(text);
    const cursor = root.walk();
    try {
      names.walk(cursor);
    } finally {
      cursor.delete();
    }
    if (!names.opaque) {
      const rowStarts = [0];
      for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) rowStarts.push(i + 1);
      for (const [name, starts] of names.reads) {
        if (names.bound.has(name) || KNOWN.has(name)) continue;
        for (const start of starts) messages.push({ line: rowAt(rowStarts, start) + 1, code: 'E0602', symbol: 'undefined-variable', message: `Undefined variable '${name}'` });
      }
    }
    redefinitions(named(root), false, messages);
    for (const body of names.classBodies) redefinitions(named(body), true, messages);
    return messages.sort(byPlace);
  });
}

/** By line, then code and text in code-point order (the same in every locale). */
function byPlace(a: LintMessage, b: LintMessage): number {
  return a.line - b.line || ordinal(a.code, b.code) || ordinal(a.message, b.message);
}

function ordinal(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** What identifies a message across an edit: its code and text, without line numbers (which the edit shifts). */
function messageKey(message: LintMessage): string {
  return `${message.code} ${message.message.replace(/\bline \d+/g, 'line')}`;
}

/**
 * The messages of `after` that `before` did not have, compared as multisets of (code, text without line
 * numbers): a name undefined twice before and three times after yields one message. Which occurrence is
 * "the new one" is a guess; those inside the edited lines (1-based, inclusive, in `after`) are taken first.
 */
export function newLintMessages(before: readonly LintMessage[], after: readonly LintMessage[], edited?: { start: number; end: number }): LintMessage[] {
  const remaining = new Map<string, number>();
  for (const message of before) remaining.set(messageKey(message), (remaining.get(messageKey(message)) ?? 0) + 1);
  const inEdit = (m: LintMessage) => edited !== undefined && m.line >= edited.start && m.line <= edited.end;
  // Old occurrences are matched against the ones outside the edit first, so the ones inside it are left over.
  const order = [...after].sort((a, b) => Number(inEdit(a)) - Number(inEdit(b)) || a.line - b.line);
  const fresh: LintMessage[] = [];
  for (const message of order) {
    const key = messageKey(message);
    const left = remaining.get(key) ?? 0;
    if (left > 0) remaining.set(key, left - 1);
    else fresh.push(message);
  }
  return fresh.sort(byPlace);
}
