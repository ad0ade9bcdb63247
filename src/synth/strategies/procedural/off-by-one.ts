import type { Node } from 'web-tree-sitter';
import { decimalValue, byOne } from './constants.js';
import { children, namedChildren, nodeModifier, pick, replacing, snippet } from './tree.js';

/** Off-by-one in a bound (SWE-smith's loop off-by-one): a `range(...)` limit or a slice bound moved by one. */

/** Expressions that bind tighter than `+`, so `x + 1` needs no parentheses around x. */
const ATOMS = new Set(['identifier', 'attribute', 'call', 'subscript', 'integer', 'parenthesized_expression']);

function shifted(bound: Node, rng: () => number): string {
  const value = decimalValue(bound);
  if (value !== null) return String(byOne(value, rng));
  const base = ATOMS.has(bound.type) ? bound.text : `(${bound.text})`;
  return `${base} ${pick(['+', '-'], rng)} 1`;
}

/** The start and stop of a slice (the expressions before the first and second colon); the step is left alone. */
function sliceBounds(slice: Node): Node[] {
  const bounds: Node[] = [];
  let colons = 0;
  for (const child of children(slice)) {
    if (child.type === ':') colons += 1;
    else if (child.isNamed && colons < 2 && child.type !== 'comment') bounds.push(child);
  }
  return bounds;
}

function isRangeCall(node: Node): boolean {
  return node.type === 'call' && node.childForFieldName('function')?.text === 'range';
}

export const offByOne = nodeModifier('off_by_one', (node, rng) => {
  let bounds: Node[] = [];
  if (isRangeCall(node)) {
    const args = namedChildren(node.childForFieldName('arguments')!).filter((a) => a.type !== 'keyword_argument' && a.type !== 'comment');
    // range(stop), range(start, stop), range(start, stop, step): never the step.
    if (!args.some((a) => a.type === 'list_splat')) bounds = args.slice(0, 2);
  } else if (node.type === 'slice') {
    bounds = sliceBounds(node);
  }
  return bounds.map((bound) => {
    const text = shifted(bound, rng);
    return replacing(bound, text, `bound \`${snippet(bound.text)}\` → \`${snippet(text)}\` in \`${snippet(node.text)}\``);
  });
});
