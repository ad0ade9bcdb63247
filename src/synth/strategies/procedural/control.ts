import type { Node } from 'web-tree-sitter';
import { type Modifier, type Rewrite, bodyOf, nodeModifier, replacing, docstring, indentAt, namedChildren, snippet, statementLines, statements } from './tree.js';

/** Control flow: a guard or an early return that skips the rest of the function, a loop's `break` and `continue` exchanged. */

/** Plain parameter names (`x`, `x=1`, `x: int`, `x: int = 1`), without self/cls and the splats. */
function parameterNames(fn: Node): string[] {
  const parameters = fn.childForFieldName('parameters');
  if (!parameters) return [];
  const names: string[] = [];
  for (const p of namedChildren(parameters)) {
    const name = p.type === 'identifier' ? p : ['default_parameter', 'typed_parameter', 'typed_default_parameter'].includes(p.type) ? (p.childForFieldName('name') ?? p.namedChild(0)) : null;
    if (name?.type === 'identifier' && name.text !== 'self' && name.text !== 'cls') names.push(name.text);
  }
  return names;
}

const returnsValue = (nodes: readonly Node[]) => nodes.some((n) => n.type === 'return_statement' && n.namedChildCount > 0);

/** The first statement after the docstring, where a guard goes (null for a body of a docstring alone). */
function firstCodeStatement(fn: Node): Node | null {
  const body = bodyOf(fn);
  if (!body) return null;
  const doc = docstring(fn);
  return statements(body).find((s) => doc === null || s.id !== doc.id) ?? null;
}

/** `if not x: return x` inserted before the body's first statement: an empty or falsy argument now short-circuits. */
export const addGuard: Modifier = {
  kind: 'add_guard',
  rewrites({ fn, nodes, text }) {
    const first = firstCodeStatement(fn);
    if (!first || first.startPosition.row === fn.startPosition.row) return [];
    const indent = indentAt(text, first);
    const unit = indent.includes('\t') ? '\t' : '    ';
    const value = returnsValue(nodes);
    return parameterNames(fn).map((name) => ({
      replacements: [{ start: first.startIndex, end: first.startIndex, text: `if not ${name}:\n${indent}${unit}return${value ? ` ${name}` : ''}\n${indent}` }],
      note: `guard \`if not ${name}: return${value ? ` ${name}` : ''}\` at the top`,
    }));
  },
};

/**
 * A body that ends in `return v` gets `return v` right after an earlier assignment to `v` in the
 * body, so the work between them is skipped.
 */
export const earlyReturn: Modifier = {
  kind: 'early_return',
  rewrites({ fn, nodes, text }) {
    const body = bodyOf(fn);
    if (!body) return [];
    const all = statements(body);
    const last = all.at(-1);
    const returned = last?.type === 'return_statement' ? last.namedChild(0) : null;
    if (!returned || returned.type !== 'identifier') return [];
    const out: Rewrite[] = [];
    for (let i = 0; i + 2 < all.length; i++) {
      const statement = all[i]!;
      const assignment = statement.type === 'expression_statement' ? statement.namedChild(0) : null;
      if (assignment?.type !== 'assignment' && assignment?.type !== 'augmented_assignment') continue;
      if (assignment.childForFieldName('left')?.text !== returned.text) continue;
      const lines = statementLines(text, statement);
      if (!lines) continue;
      out.push({
        replacements: [{ start: lines.end, end: lines.end, text: `${indentAt(text, statement)}return ${returned.text}\n` }],
        note: `returns \`${returned.text}\` right after \`${snippet(statement.text)}\``,
      });
    }
    return out;
  },
};

/** `break` ↔ `continue` in the function's own loops. */
export const breakContinue = nodeModifier('break_continue', (node) => {
  if (node.type !== 'break_statement' && node.type !== 'continue_statement') return null;
  const text = node.type === 'break_statement' ? 'continue' : 'break';
  return replacing(node, text, `\`${node.text}\` → \`${text}\``);
});
