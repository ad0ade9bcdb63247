import type { Node } from 'web-tree-sitter';
import { type Modifier, type Rewrite, indentAt, isBlock, replacing, snippet, statementLines, statements } from './tree.js';

/** Removal (SWE-smith's remove assignments/conditionals/loops family): a statement of the function is dropped. */

/** Drops one statement per rewrite; the only statement of a block becomes `pass`, so the block stays a block. */
function removing(kind: string, matches: (statement: Node) => boolean): Modifier {
  return {
    kind,
    rewrites({ fn, nodes, text }) {
      const out: Rewrite[] = [];
      for (const block of nodes.filter(isBlock)) {
        const all = statements(block);
        for (const statement of all) {
          if (!matches(statement)) continue;
          const note = `removed \`${snippet(statement.text)}\``;
          if (all.length === 1) {
            out.push(replacing(statement, 'pass', note));
            continue;
          }
          const lines = statementLines(text, statement);
          if (lines && indentAt(text, statement) !== '') out.push({ replacements: [lines], note });
        }
      }
      return out;
    },
  };
}

const expressionOf = (statement: Node): Node | null => (statement.type === 'expression_statement' && statement.namedChildCount === 1 ? statement.namedChild(0) : null);

export const removeAssignment = removing('remove_assignment', (s) => {
  const inner = expressionOf(s);
  return inner !== null && (inner.type === 'assignment' || inner.type === 'augmented_assignment');
});

export const removeCall = removing('remove_call', (s) => {
  const inner = expressionOf(s);
  return inner !== null && (inner.type === 'call' || (inner.type === 'await' && inner.namedChild(0)?.type === 'call'));
});

export const removeConditional = removing('remove_conditional', (s) => s.type === 'if_statement');

export const removeLoop = removing('remove_loop', (s) => s.type === 'for_statement' || s.type === 'while_statement');
