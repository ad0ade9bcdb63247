import type { Node } from 'web-tree-sitter';
import { PythonSpanParser } from '../../../agent/python-spans.js';
import type { FunctionTarget } from '../../candidate.js';

/**
 * What every procedural modifier shares (design §13): the Python grammar (the agent's loader, so
 * one copy of it is ever loaded), finding a target function in a file's syntax tree, and turning a
 * modifier's text replacements into a rewritten file that is kept only when it still parses,
 * differs from the original and changes nothing outside the function.
 */

/** Replace text[start, end) with `text` (indices as tree-sitter reports them: UTF-16 code units). */
export interface Replacement {
  start: number;
  end: number;
  text: string;
}

/** One way a modifier breaks a function: non-overlapping replacements inside it, and a one-line note for people. */
export interface Rewrite {
  replacements: Replacement[];
  note: string;
}

/**
 * A modifier: every rewrite of one kind it can make in the function, in source order. Pure; `rng`
 * only picks among equally valid choices at a site (which operator to put instead, which neighbour
 * to swap with), so the same function and generator give the same rewrites.
 */
export interface Modifier {
  readonly kind: string;
  rewrites(site: FunctionSite, rng: () => number): Rewrite[];
}

/** A function as modifiers see it: its node, the whole file it was parsed from, and its own nodes (walked once, shared by all modifiers). */
export interface FunctionSite {
  fn: Node;
  text: string;
  /** ownNodes(fn): walking the tree crosses into wasm per node, so it is done once per function. */
  nodes: Node[];
}

/** A loaded Python parser; create it once and share it (trees live in wasm memory and are freed per call). */
export type PythonParser = PythonSpanParser;
export const createPythonParser = (): Promise<PythonParser> => PythonSpanParser.create();

export function namedChildren(node: Node): Node[] {
  return node.namedChildren.filter((child): child is Node => child !== null);
}

export function children(node: Node): Node[] {
  return node.children.filter((child): child is Node => child !== null);
}

/** The function_definition whose `def` (or first decorator) is on the target's first line (a target names one function per line). */
export function findFunction(root: Node, target: FunctionTarget): Node | null {
  const row = target.start_line - 1;
  let node = root;
  // Descend through the one child that spans the row; never walks the rest of the file.
  for (;;) {
    let next: Node | null = null;
    for (const child of children(node)) {
      if (child.startPosition.row > row) break;
      if (child.endPosition.row < row) continue;
      // A node that ends at column 0 of the row ends on the line before it.
      if (child.endPosition.row === row && child.endPosition.column === 0 && child.startPosition.row < row) continue;
      if (child.type === 'function_definition' && child.startPosition.row === row) return child;
      // Python 3.8+ reports a decorated function's co_firstlineno at its first decorator.
      if (child.type === 'decorated_definition' && child.startPosition.row === row) {
        const definition = child.childForFieldName('definition');
        return definition?.type === 'function_definition' ? definition : null;
      }
      next = child;
      break;
    }
    if (!next) return null;
    node = next;
  }
}

/** The statements of a block, comments aside. */
export function statements(block: Node): Node[] {
  return namedChildren(block).filter((child) => child.type !== 'comment');
}

/** The leading whitespace of the line the node starts on. */
export function indentAt(text: string, node: Node): string {
  const lineStart = text.lastIndexOf('\n', node.startIndex - 1) + 1;
  return /^[ \t]*/.exec(text.slice(lineStart))![0];
}

/** Sorted, non-overlapping replacements applied to the text. */
export function applyReplacements(text: string, replacements: readonly Replacement[]): string {
  const sorted = [...replacements].sort((a, b) => a.start - b.start);
  let out = '';
  let at = 0;
  for (const r of sorted) {
    if (r.start < at) throw new Error(`overlapping replacements at ${r.start}`);
    out += text.slice(at, r.start) + r.text;
    at = r.end;
  }
  return out + text.slice(at);
}

/** A modifier's rewrite of one file, already checked. */
export interface RewrittenFile {
  kind: string;
  note: string;
  text: string;
}

/** The rewrites modifiers propose for one function, before the (costlier) check of each. */
export interface Proposals {
  /** The function's extent in the original text... */
  start: number;
  end: number;
  /** ...and the start of the line its `def` is on. */
  lineStart: number;
  /** The original already failed to parse somewhere (then only the function itself must parse). */
  originalError: boolean;
  rewrites: { kind: string; rewrite: Rewrite }[];
}

/**
 * One parse of the file; every modifier's rewrites of each target function (null for a target
 * not found). Parsing is the cost here (a 4,000-line module takes ~0.1 s in wasm), so a file is
 * parsed once for all its targets.
 */
export function proposeAll(
  parser: PythonParser,
  text: string,
  targets: readonly FunctionTarget[],
  modifiers: readonly Modifier[],
  rngFor: (target: FunctionTarget) => () => number,
): (Proposals | null)[] {
  return (
    parser.withTree(text, (root) =>
      targets.map((target) => {
        const fn = findFunction(root, target);
        if (!fn) return null;
        const rng = rngFor(target);
        const site: FunctionSite = { fn, text, nodes: ownNodes(fn) };
        const rewrites = modifiers.flatMap((modifier) => modifier.rewrites(site, rng).map((rewrite) => ({ kind: modifier.kind, rewrite })));
        const lineStart = text.lastIndexOf('\n', fn.startIndex - 1) + 1;
        return { start: fn.startIndex, end: fn.endIndex, lineStart, originalError: root.hasError, rewrites };
      }),
    ) ?? targets.map(() => null)
  );
}

/** One target's proposals (see proposeAll). */
export function propose(parser: PythonParser, text: string, target: FunctionTarget, modifiers: readonly Modifier[], rng: () => number): Proposals | null {
  return proposeAll(parser, text, [target], modifiers, () => rng)[0] ?? null;
}

/** Removes the indentation every non-blank line shares (and trailing whitespace). */
export function dedent(code: string): string {
  const lines = code.replace(/\s+$/, '').split('\n');
  const indents = lines.filter((l) => l.trim() !== '').map((l) => /^[ \t]*/.exec(l)![0]);
  let common = indents[0] ?? '';
  for (const indent of indents) while (!indent.startsWith(common)) common = common.slice(0, -1);
  return lines.map((l) => (l.startsWith(common) ? l.slice(common.length) : l.trimStart())).join('\n');
}

/**
 * Whether the rewritten function parses. The rest of the file is unchanged, so a function that
 * parses on its own as exactly one definition (dedented) parses in place: only the function is
 * parsed, not the file. A function whose lines do not share the def's indentation (a multi-line
 * string at column 0) is checked by parsing the whole file.
 */
function functionParses(parser: PythonParser, after: string, target: FunctionTarget, proposals: Proposals, end: number): boolean {
  const code = dedent(after.slice(proposals.lineStart, end));
  if (/^[ \t]/.test(code)) {
    return (
      parser.withTree(after, (root) => {
        if (!proposals.originalError) return !root.hasError;
        const fn = findFunction(root, target);
        return fn !== null && !fn.hasError;
      }) ?? false
    );
  }
  return (
    parser.withTree(code, (root) => {
      if (root.hasError) return false;
      const top = namedChildren(root).filter((n) => n.type !== 'comment');
      return top.length === 1 && top[0]!.type === 'function_definition';
    }) ?? false
  );
}

/**
 * The rewritten file, or null unless the function still parses (no ERROR or MISSING node) as one
 * definition, the file differs from the original, and the text before the function's `def` and
 * after its last line is unchanged.
 */
export function check(parser: PythonParser, text: string, target: FunctionTarget, proposals: Proposals, rewrite: Rewrite): string | null {
  if (rewrite.replacements.some((r) => r.start < proposals.start || r.end > proposals.end)) return null;
  // Replacements inside the function leave the text around it as it was; no need to compare it.
  const after = applyReplacements(text, rewrite.replacements);
  if (after === text) return null;
  const end = proposals.end + after.length - text.length;
  return functionParses(parser, after, target, proposals, end) ? after : null;
}

/** Every checked rewrite one modifier makes in the target function. Pure over (text, target, rng). */
export function mutateFunction(parser: PythonParser, text: string, target: FunctionTarget, modifier: Modifier, rng: () => number): RewrittenFile[] {
  const proposals = propose(parser, text, target, [modifier], rng);
  if (!proposals) return [];
  const out: RewrittenFile[] = [];
  for (const { kind, rewrite } of proposals.rewrites) {
    const after = check(parser, text, target, proposals, rewrite);
    if (after !== null) out.push({ kind, note: rewrite.note, text: after });
  }
  return out;
}

/** The function's body block (null for a malformed definition). */
export function bodyOf(fn: Node): Node | null {
  return fn.childForFieldName('body');
}

/**
 * Nodes of the function that belong to it and not to a nested function or class (a bug put in a
 * nested definition would run only when that is called, which the test map does not see).
 */
export function ownNodes(fn: Node): Node[] {
  const body = bodyOf(fn);
  if (!body) return [];
  const out: Node[] = [];
  const stack = [body];
  while (stack.length > 0) {
    const current = stack.pop()!;
    out.push(current);
    const kids = children(current);
    for (let i = kids.length - 1; i >= 0; i--) {
      const kid = kids[i]!;
      if (kid.type === 'function_definition' || kid.type === 'class_definition' || kid.type === 'decorated_definition' || kid.type === 'lambda') continue;
      stack.push(kid);
    }
  }
  return out;
}

/** A block of statements (a body of the function or of its if/for/while/with/try). */
export const isBlock = (node: Node) => node.type === 'block';

/** A short single-line rendering of code for notes. */
export function snippet(code: string, max = 60): string {
  const flat = code.slice(0, max * 4).replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** A uniform pick from a non-empty list. */
export function pick<T>(items: readonly T[], rng: () => number): T {
  return items[Math.floor(rng() * items.length)]!;
}

/** The function's docstring statement, when its body starts with one. */
export function docstring(fn: Node): Node | null {
  const body = bodyOf(fn);
  const first = body ? statements(body)[0] : undefined;
  if (first?.type === 'expression_statement' && first.namedChildCount === 1 && first.namedChild(0)?.type === 'string') return first;
  return null;
}

/**
 * The whole lines a statement occupies (indentation through the newline), or null when other code
 * shares them (`a = 1; b = 2`), where a line-level edit would take that code along.
 */
export function statementLines(text: string, node: Node): Replacement | null {
  const start = text.lastIndexOf('\n', node.startIndex - 1) + 1;
  if (text.slice(start, node.startIndex).trim() !== '') return null;
  const newline = text.indexOf('\n', node.endIndex);
  const end = newline < 0 ? text.length : newline + 1;
  const rest = text.slice(node.endIndex, end).trim();
  if (rest !== '' && !rest.startsWith('#')) return null;
  return { start, end, text: '' };
}

/**
 * A modifier that looks at each of the function's own nodes by itself: `at` gives the rewrites
 * made at one node (null or [] for none), in source order.
 */
export function nodeModifier(kind: string, at: (node: Node, rng: () => number, site: FunctionSite) => Rewrite | Rewrite[] | null): Modifier {
  return {
    kind,
    rewrites: (site, rng) =>
      site.nodes.flatMap((node) => {
        const found = at(node, rng, site);
        return found === null ? [] : Array.isArray(found) ? found : [found];
      }),
  };
}

/** A rewrite putting `text` where `node` (or any span) was. */
export function replacing(span: { startIndex: number; endIndex: number }, text: string, note: string): Rewrite {
  return { replacements: [{ start: span.startIndex, end: span.endIndex, text }], note };
}

/** A rewrite exchanging the texts of two non-overlapping spans. */
export function swapping(a: Node, b: Node, note: string): Rewrite {
  return {
    replacements: [
      { start: a.startIndex, end: a.endIndex, text: b.text },
      { start: b.startIndex, end: b.endIndex, text: a.text },
    ],
    note,
  };
}
