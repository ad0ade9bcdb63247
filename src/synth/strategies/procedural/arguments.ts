import type { Node } from 'web-tree-sitter';
import { type Modifier, type Rewrite, namedChildren, ownNodes, snippet } from './tree.js';

/** Arguments (SWE-smith's swap family): two neighbouring positional arguments of a call change places. */

const POSITIONAL_EXCLUDED = new Set(['keyword_argument', 'list_splat', 'dictionary_splat', 'comment']);

export const swapArguments: Modifier = {
  kind: 'swap_arguments',
  rewrites(fn, rng) {
    const out: Rewrite[] = [];
    for (const node of ownNodes(fn)) {
      if (node.type !== 'call') continue;
      const list = node.childForFieldName('arguments');
      if (!list || list.type !== 'argument_list') continue;
      const args = namedChildren(list);
      // Positional arguments come first; stop at the first keyword or splat.
      const positional: Node[] = [];
      for (const arg of args) {
        if (POSITIONAL_EXCLUDED.has(arg.type)) break;
        positional.push(arg);
      }
      const pairs: [Node, Node][] = [];
      for (let i = 0; i + 1 < positional.length; i++) if (positional[i]!.text !== positional[i + 1]!.text) pairs.push([positional[i]!, positional[i + 1]!]);
      if (pairs.length === 0) continue;
      const [a, b] = pairs[Math.floor(rng() * pairs.length)]!;
      out.push({
        replacements: [
          { start: a.startIndex, end: a.endIndex, text: b.text },
          { start: b.startIndex, end: b.endIndex, text: a.text },
        ],
        note: `swapped \`${snippet(a.text, 30)}\` and \`${snippet(b.text, 30)}\` in \`${snippet(node.text)}\``,
      });
    }
    return out;
  },
};
