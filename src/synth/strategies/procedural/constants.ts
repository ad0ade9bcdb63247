import type { Node } from 'web-tree-sitter';
import { nodeModifier, pick, replacing, snippet } from './tree.js';

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

const inContext = (node: Node, text: string) => `\`${node.text}\` → \`${text}\` in \`${snippet(node.parent?.text ?? node.text)}\``;

/** `n` → `n ± 1` for a decimal integer literal in the function. */
export const changeConstant = nodeModifier('change_constant', (node, rng) => {
  const value = decimalValue(node);
  if (value === null) return null;
  const text = String(byOne(value, rng));
  return replacing(node, text, inContext(node, text));
});

/** `True` ↔ `False`. */
export const flipBoolean = nodeModifier('flip_boolean', (node) => {
  if (node.type !== 'true' && node.type !== 'false') return null;
  const text = node.type === 'true' ? 'False' : 'True';
  return replacing(node, text, inContext(node, text));
});
