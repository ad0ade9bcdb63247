import type { Node } from 'web-tree-sitter';
import { decimalValue, byOne } from './constants.js';
import { type Modifier, type Rewrite, children, namedChildren, ownNodes, pick, snippet } from './tree.js';

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

export const offByOne: Modifier = {
  kind: 'off_by_one',
  rewrites(fn, rng) {
    const out: Rewrite[] = [];
    for (const node of ownNodes(fn)) {
      let bounds: Node[] = [];
      if (isRangeCall(node)) {
        const args = namedChildren(node.childForFieldName('arguments')!).filter((a) => a.type !== 'keyword_argument' && a.type !== 'comment');
        // range(stop), range(start, stop), range(start, stop, step): never the step.
        bounds = args.slice(0, 2);
        if (args.some((a) => a.type === 'list_splat')) bounds = [];
      } else if (node.type === 'slice') {
        bounds = sliceBounds(node);
      }
      for (const bound of bounds) {
        const text = shifted(bound, rng);
        out.push({ replacements: [{ start: bound.startIndex, end: bound.endIndex, text }], note: `bound \`${snippet(bound.text)}\` → \`${snippet(text)}\` in \`${snippet(node.text)}\`` });
      }
    }
    return out;
  },
};
