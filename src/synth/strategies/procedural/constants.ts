import type { Node } from 'web-tree-sitter';
import { type Modifier, type Rewrite, ownNodes, pick, snippet } from './tree.js';

/** Constants (SWE-smith's change-constants family): a number moved by one, a boolean flipped. */

const DECIMAL = /^\d[\d_]*$/;

/** An integer literal written in decimal and its value, or null (hex, octal, huge). */
export function decimalValue(node: Node): number | null {
  if (node.type !== 'integer' || !DECIMAL.test(node.text)) return null;
  const value = Number(node.text.replace(/_/g, ''));
  return Number.isSafeInteger(value) ? value : null;
}

/** The integer one away from `value` (down only when it stays non-negative, so a literal stays a literal). */
export function byOne(value: number, rng: () => number): number {
  return value === 0 ? 1 : pick([value + 1, value - 1], rng);
}

/** `n` → `n ± 1` for a decimal integer literal in the function. */
export const changeConstant: Modifier = {
  kind: 'change_constant',
  rewrites(fn, rng) {
    const out: Rewrite[] = [];
    for (const node of ownNodes(fn)) {
      const value = decimalValue(node);
      if (value === null) continue;
      const text = String(byOne(value, rng));
      out.push({ replacements: [{ start: node.startIndex, end: node.endIndex, text }], note: `\`${node.text}\` → \`${text}\` in \`${snippet(node.parent?.text ?? node.text)}\`` });
    }
    return out;
  },
};

/** `True` ↔ `False`. */
export const flipBoolean: Modifier = {
  kind: 'flip_boolean',
  rewrites(fn) {
    const out: Rewrite[] = [];
    for (const node of ownNodes(fn)) {
      if (node.type !== 'true' && node.type !== 'false') continue;
      const text = node.type === 'true' ? 'False' : 'True';
      out.push({ replacements: [{ start: node.startIndex, end: node.endIndex, text }], note: `\`${node.text}\` → \`${text}\` in \`${snippet(node.parent?.text ?? node.text)}\`` });
    }
    return out;
  },
};
