import type { Node } from 'web-tree-sitter';
import { namedChildren, nodeModifier, snippet, swapping } from './tree.js';

/** Arguments (SWE-smith's swap family): two neighbouring positional arguments of a call change places. */

const NOT_POSITIONAL = new Set(['keyword_argument', 'list_splat', 'dictionary_splat', 'comment']);

export const swapArguments = nodeModifier('swap_arguments', (node, rng) => {
  const list = node.type === 'call' ? node.childForFieldName('arguments') : null;
  if (!list || list.type !== 'argument_list') return null;
  // Positional arguments come first; stop at the first keyword or splat.
  const positional: Node[] = [];
  for (const arg of namedChildren(list)) {
    if (NOT_POSITIONAL.has(arg.type)) break;
    positional.push(arg);
  }
  const pairs: [Node, Node][] = [];
  for (let i = 0; i + 1 < positional.length; i++) if (positional[i]!.text !== positional[i + 1]!.text) pairs.push([positional[i]!, positional[i + 1]!]);
  if (pairs.length === 0) return null;
  const [a, b] = pairs[Math.floor(rng() * pairs.length)]!;
  return swapping(a, b, `swapped \`${snippet(a.text, 30)}\` and \`${snippet(b.text, 30)}\` in \`${snippet(node.text)}\``);
});
