import { createRequire } from 'node:module';
import { Language, Parser, type Node } from 'web-tree-sitter';
import { z } from 'zod';

/**
 * Splits a Python file into moatless-style spans (design §5) with tree-sitter, so the agent can
 * name code by `Class.method` instead of by line numbers.
 *
 * - `imports`: module-level import statements, one span per contiguous run (`imports`, `imports:2`…).
 * - `impl`, `impl:2`…: every other contiguous run of module-level statements (docstring, constants,
 *   `if __name__ == '__main__':` blocks, `try:` imports, …), kind `module_code`.
 * - `name`: a module-level function (nested functions belong to it), kind `function`.
 * - `Name`: a class header — decorators, `class` line(s), docstring and the class-level statements
 *   before the first method or nested class — kind `class`. Methods are `Name.method` (kind
 *   `method`), nested classes `Name.Inner` with methods `Name.Inner.method`. Class-level statements
 *   that come after a method get continuation spans of the class (`Name:2`, kind `class`), as
 *   moatless did.
 * - Decorators belong to their definition. A repeated id gets a suffix: `name:2`, `name:3`.
 *
 * Spans are sorted and never overlap, and every non-blank line of the file is in exactly one span:
 * comment lines no statement covers (comments above a definition, section comments between
 * definitions) join the next span; comments after the last span join the last one. Syntax errors
 * never throw: tree-sitter recovers, and whatever it could not place still lands in a span.
 */

export const SpanSchema = z.object({
  id: z.string(),
  kind: z.enum(['imports', 'module_code', 'class', 'function', 'method']),
  /** 1-based, inclusive. */
  startLine: z.number().int(),
  /** 1-based, inclusive. */
  endLine: z.number().int(),
});
export type Span = z.infer<typeof SpanSchema>;
export type SpanKind = Span['kind'];

/** A span with what name lookups and rendering need beyond the id. */
export interface SpanDetail extends Span {
  /**
   * The qualified name without the duplicate suffix: `imports`, `impl`, `func`, `Class`,
   * `Outer.Inner`, `Class.method`.
   */
  name: string;
  /** The id of the header span of the enclosing class (for methods, nested classes and continuations). */
  parentId: string | null;
  /** True for a class span that continues a class after its methods (not its header). */
  continuation: boolean;
}

let languagePromise: Promise<Language> | undefined;

function loadLanguage(): Promise<Language> {
  languagePromise ??= (async () => {
    await Parser.init();
    const wasm = createRequire(import.meta.url).resolve('tree-sitter-python/tree-sitter-python.wasm');
    return Language.load(wasm);
  })();
  // A failed load (missing wasm) must not poison later attempts.
  languagePromise.catch(() => {
    languagePromise = undefined;
  });
  return languagePromise;
}

const IMPORT_TYPES = new Set(['import_statement', 'import_from_statement', 'future_import_statement']);

/** The part of the file one unit of structure covers, before comments are attached. */
interface Unit {
  start: number; // 0-based row
  end: number; // 0-based row, inclusive
  /** Units with the same group key that follow each other merge into one span. */
  group: string;
  kind: SpanKind;
  name: string;
  /** Group key of the enclosing class's header unit. */
  parentGroup: string | null;
  continuation: boolean;
}

function lastRow(node: Node): number {
  const { row, column } = node.endPosition;
  return column === 0 && row > node.startPosition.row ? row - 1 : row;
}

function definitionOf(node: Node): Node | null {
  if (node.type === 'function_definition' || node.type === 'class_definition') return node;
  if (node.type === 'decorated_definition') {
    const inner = node.childForFieldName('definition');
    if (inner && (inner.type === 'function_definition' || inner.type === 'class_definition')) return inner;
  }
  return null;
}

function namedChildren(node: Node): Node[] {
  return node.namedChildren.filter((child): child is Node => child !== null);
}

function children(node: Node): Node[] {
  return node.children.filter((child): child is Node => child !== null);
}

class UnitCollector {
  readonly units: Unit[] = [];
  private groups = 0;

  private newGroup(prefix: string): string {
    this.groups += 1;
    return `${prefix}#${this.groups}`;
  }

  private add(node: Node, start: Node, unit: Omit<Unit, 'start' | 'end'>): void {
    this.units.push({ ...unit, start: start.startPosition.row, end: Math.max(lastRow(node), start.startPosition.row) });
  }

  module(root: Node): void {
    for (const child of namedChildren(root)) this.moduleStatement(child);
  }

  private moduleStatement(node: Node): void {
    if (node.type === 'comment') return;
    if (node.type === 'ERROR') {
      // Recovery left a fragment: keep the definitions it still recognised, the rest is module code.
      const inner = namedChildren(node);
      if (inner.length === 0) this.add(node, node, this.moduleCode());
      for (const child of inner) this.moduleStatement(child);
      return;
    }
    if (IMPORT_TYPES.has(node.type)) {
      this.add(node, node, { group: 'imports', kind: 'imports', name: 'imports', parentGroup: null, continuation: false });
      return;
    }
    const definition = definitionOf(node);
    const name = definition?.childForFieldName('name')?.text;
    if (definition && name) {
      if (definition.type === 'class_definition') this.klass(node, definition, name, null);
      else this.add(node, node, { group: this.newGroup('def'), kind: 'function', name, parentGroup: null, continuation: false });
      return;
    }
    this.add(node, node, this.moduleCode());
  }

  private moduleCode(): Omit<Unit, 'start' | 'end'> {
    return { group: 'impl', kind: 'module_code', name: 'impl', parentGroup: null, continuation: false };
  }

  /** `outer` is the decorated definition when there is one (the span starts at its first decorator). */
  private klass(outer: Node, definition: Node, name: string, parentGroup: string | null): void {
    const group = this.newGroup('class');
    const colon = children(definition).find((child) => child.type === ':');
    const headerEnd = colon ? colon.endPosition.row : (definition.childForFieldName('name')?.endPosition.row ?? outer.startPosition.row);
    const header: Unit = {
      start: outer.startPosition.row,
      end: headerEnd,
      group,
      kind: 'class',
      name,
      parentGroup,
      continuation: false,
    };
    this.units.push(header);
    const body = definition.childForFieldName('body');
    if (!body) {
      header.end = Math.max(header.end, lastRow(definition));
      return;
    }
    let seenMember = false;
    let continuation: string | null = null;
    for (const child of namedChildren(body)) {
      if (child.type === 'comment') continue;
      const inner = definitionOf(child);
      const innerName = inner?.childForFieldName('name')?.text;
      if (inner && innerName) {
        seenMember = true;
        continuation = null;
        const qualified = `${name}.${innerName}`;
        if (inner.type === 'class_definition') this.klass(child, inner, qualified, group);
        else this.add(child, child, { group: this.newGroup('def'), kind: 'method', name: qualified, parentGroup: group, continuation: false });
      } else if (!seenMember) {
        header.end = Math.max(header.end, lastRow(child));
      } else {
        continuation ??= this.newGroup('cont');
        this.add(child, child, { group: continuation, kind: 'class', name, parentGroup: group, continuation: true });
      }
    }
  }
}

interface Draft {
  start: number;
  end: number;
  unit: Unit;
}

function indentOf(line: string): number {
  return line.length - line.trimStart().length;
}

function isBlank(line: string): boolean {
  return line.trim().length === 0;
}

export class PythonSpanParser {
  private constructor(private readonly parser: Parser) {}

  static async create(): Promise<PythonSpanParser> {
    const language = await loadLanguage();
    const parser = new Parser();
    parser.setLanguage(language);
    return new PythonSpanParser(parser);
  }

  /** The spans of a Python file, sorted by line. Never throws on bad syntax. */
  parse(text: string): Span[] {
    return this.parseDetailed(text).map(({ id, kind, startLine, endLine }) => ({ id, kind, startLine, endLine }));
  }

  /**
   * Where the text fails to parse as Python ("line 12: unexpected `)`"), or null when it parses.
   * tree-sitter recovers from errors, so the first ERROR or MISSING node is the one reported.
   */
  syntaxError(text: string): string | null {
    return this.withTree(text, (root) => {
      if (!root.hasError) return null;
      const stack = [root];
      while (stack.length > 0) {
        const node = stack.pop()!;
        if (node.isMissing) return `line ${node.startPosition.row + 1}: missing \`${node.type}\``;
        if (node.type === 'ERROR') {
          const lines = node.text.split('\n');
          const first = lines.findIndex((l) => l.trim() !== '');
          if (first < 0) return `line ${node.startPosition.row + 1}: unexpected end of the code`;
          return `line ${node.startPosition.row + first + 1}: cannot parse \`${lines[first]!.trim().slice(0, 60)}\``;
        }
        if (!node.hasError) continue;
        for (let i = node.childCount - 1; i >= 0; i--) {
          const child = node.child(i);
          if (child) stack.push(child);
        }
      }
      return 'the code has a syntax error';
    });
  }

  /**
   * Runs `read` over the syntax tree of the text and frees the tree afterwards (trees live in wasm
   * memory, which the garbage collector does not see). The nodes must not escape `read`.
   */
  withTree<T>(text: string, read: (root: Node) => T): T | null {
    const tree = this.parser.parse(text);
    if (!tree) return null;
    try {
      return read(tree.rootNode);
    } finally {
      tree.delete();
    }
  }

  parseDetailed(text: string): SpanDetail[] {
    const lines = text.split('\n');
    const collector = new UnitCollector();
    const tree = this.parser.parse(text);
    if (tree) {
      try {
        collector.module(tree.rootNode);
      } finally {
        tree.delete();
      }
    }
    const units = collector.units.slice().sort((a, b) => a.start - b.start || a.end - b.end);

    // Merge: a unit overlapping the previous span (error recovery, statements sharing a line)
    // joins it; neighbouring units of one group (imports, module code, a continuation) too.
    const drafts: Draft[] = [];
    for (const unit of units) {
      const previous = drafts.at(-1);
      if (previous && (unit.start <= previous.end || unit.group === previous.unit.group)) {
        previous.end = Math.max(previous.end, unit.end);
      } else {
        drafts.push({ start: unit.start, end: unit.end, unit });
      }
    }

    // Attach the non-blank lines no statement covers (comments) to the next span, or the last one.
    const lastContent = lines.findLastIndex((line) => !isBlank(line));
    if (drafts.length === 0) {
      if (lastContent < 0) return [];
      const firstContent = lines.findIndex((line) => !isBlank(line));
      drafts.push({ start: firstContent, end: lastContent, unit: { ...moduleCodeUnit() } });
    }
    // A comment indented deeper than the next span's first line still belongs to the block above
    // it (the tail of a method or class), so it stays with the previous span.
    let previous: Draft | undefined;
    for (const draft of drafts) {
      const nextIndent = indentOf(lines[draft.start] ?? '');
      for (let row = previous ? previous.end + 1 : 0; row < draft.start; row++) {
        const line = lines[row] ?? '';
        if (isBlank(line)) continue;
        if (previous && indentOf(line) > nextIndent) {
          previous.end = row;
          continue;
        }
        draft.start = row;
        break;
      }
      previous = draft;
    }
    const last = drafts.at(-1)!;
    last.end = Math.max(last.end, lastContent);

    // Ids: the qualified name, suffixed `:n` for the n-th span with the same name.
    const seen = new Map<string, number>();
    const groupIds = new Map<string, string>();
    const spans: SpanDetail[] = [];
    for (const draft of drafts) {
      const base = draft.unit.name;
      const count = (seen.get(base) ?? 0) + 1;
      seen.set(base, count);
      const id = count === 1 ? base : `${base}:${count}`;
      if (!draft.unit.continuation) groupIds.set(draft.unit.group, id);
      spans.push({
        id,
        kind: draft.unit.kind,
        startLine: draft.start + 1,
        endLine: draft.end + 1,
        name: base,
        parentId: draft.unit.parentGroup === null ? null : (groupIds.get(draft.unit.parentGroup) ?? null),
        continuation: draft.unit.continuation,
      });
    }
    return spans;
  }
}

function moduleCodeUnit(): Unit {
  return { start: 0, end: 0, group: 'impl', kind: 'module_code', name: 'impl', parentGroup: null, continuation: false };
}
