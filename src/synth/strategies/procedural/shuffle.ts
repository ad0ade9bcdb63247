import type { Node } from 'web-tree-sitter';
import { type Modifier, type Rewrite, docstring, isBlock, snippet, statements, swapping } from './tree.js';

/** Order (SWE-smith's shuffle family): two neighbouring simple statements of a block change places. */

const SIMPLE = new Set(['expression_statement', 'assert_statement', 'delete_statement']);

export const swapStatements: Modifier = {
  kind: 'swap_statements',
  rewrites({ fn, nodes }) {
    const out: Rewrite[] = [];
    const doc = docstring(fn);
    for (const block of nodes.filter(isBlock)) {
      const all = statements(block).filter((s) => doc === null || s.id !== doc.id);
      for (let i = 0; i + 1 < all.length; i++) {
        const a: Node = all[i]!;
        const b: Node = all[i + 1]!;
        // Neighbours on their own lines (same indentation, so their texts swap as they are).
        if (!SIMPLE.has(a.type) || !SIMPLE.has(b.type) || a.text === b.text) continue;
        if (a.endPosition.row >= b.startPosition.row) continue;
        out.push(swapping(a, b, `swapped \`${snippet(a.text, 30)}\` and \`${snippet(b.text, 30)}\``));
      }
    }
    return out;
  },
};
