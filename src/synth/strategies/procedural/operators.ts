import type { Node } from 'web-tree-sitter';
import { children, nodeModifier, pick, replacing, snippet, swapping } from './tree.js';

/** Operators (SWE-smith's change/flip/swap operator and break-chain families). */

const COMPARISON_SWAPS: Record<string, readonly string[]> = {
  '<': ['<=', '>'],
  '<=': ['<', '>='],
  '>': ['>=', '<'],
  '>=': ['>', '<='],
  '==': ['!='],
  '!=': ['=='],
  in: ['not in'],
  'not in': ['in'],
  is: ['is not'],
  'is not': ['is'],
};

/** The operators of a comparison chain, multi-word ones (`not in`, `is not`) as one span. */
function comparisonOperators(node: Node): { startIndex: number; endIndex: number; op: string }[] {
  const ops: { startIndex: number; endIndex: number; op: string }[] = [];
  let current: { startIndex: number; endIndex: number; words: string[] } | null = null;
  for (const child of children(node)) {
    if (child.isNamed) {
      if (current) ops.push({ startIndex: current.startIndex, endIndex: current.endIndex, op: current.words.join(' ') });
      current = null;
    } else if (current) {
      current.endIndex = child.endIndex;
      current.words.push(child.type);
    } else {
      current = { startIndex: child.startIndex, endIndex: child.endIndex, words: [child.type] };
    }
  }
  return ops;
}

const changed = (op: string, text: string, node: Node) => `\`${op}\` → \`${text}\` in \`${snippet(node.text)}\``;

/** `a < b` → `a <= b` or `a > b`, `==` ↔ `!=`, `in` ↔ `not in`, `is` ↔ `is not`. */
export const changeComparison = nodeModifier('change_comparison', (node, rng) => {
  if (node.type !== 'comparison_operator') return null;
  return comparisonOperators(node).flatMap((operator) => {
    const choices = COMPARISON_SWAPS[operator.op];
    if (!choices) return [];
    const text = pick(choices, rng);
    return [replacing(operator, text, changed(operator.op, text, node))];
  });
});

const ARITHMETIC_SWAPS: Record<string, readonly string[]> = {
  '+': ['-'],
  '-': ['+'],
  '*': ['/', '+'],
  '/': ['*', '//'],
  '//': ['/', '%'],
  '%': ['//'],
  '**': ['*'],
  '<<': ['>>'],
  '>>': ['<<'],
  '&': ['|'],
  '|': ['&'],
  '^': ['|'],
};

const isStringy = (node: Node | null) => node !== null && (node.type === 'string' || node.type === 'concatenated_string');

/** `a + b` → `a - b` (and the like), `x += 1` → `x -= 1`; never on string operands (`'%s' % x` is formatting, not arithmetic). */
export const changeArithmetic = nodeModifier('change_arithmetic', (node, rng) => {
  const operator = node.type === 'binary_operator' || node.type === 'augmented_assignment' ? node.childForFieldName('operator') : null;
  if (!operator) return null;
  if (isStringy(node.childForFieldName('left')) || isStringy(node.childForFieldName('right'))) return null;
  const augmented = node.type === 'augmented_assignment';
  const choices = ARITHMETIC_SWAPS[augmented ? operator.type.slice(0, -1) : operator.type];
  if (!choices) return null;
  const text = pick(choices, rng) + (augmented ? '=' : '');
  return replacing(operator, text, changed(operator.type, text, node));
});

/** `a and b` ↔ `a or b`. */
export const changeBoolean = nodeModifier('change_boolean', (node) => {
  const operator = node.type === 'boolean_operator' ? node.childForFieldName('operator') : null;
  if (!operator) return null;
  const text = operator.type === 'and' ? 'or' : 'and';
  return replacing(operator, text, changed(operator.type, text, node));
});

const NON_COMMUTATIVE = new Set(['-', '/', '//', '%', '**', '<<', '>>']);
const ORDERED_COMPARISONS = new Set(['<', '<=', '>', '>=']);

/** The two operands of `a - b` (an operator whose order matters) or of `a < b`, else null. */
function orderedOperands(node: Node): [Node, Node] | null {
  let left: Node | null = null;
  let right: Node | null = null;
  if (node.type === 'binary_operator' && NON_COMMUTATIVE.has(node.childForFieldName('operator')?.type ?? '')) {
    left = node.childForFieldName('left');
    right = node.childForFieldName('right');
    if (isStringy(left)) return null;
  } else if (node.type === 'comparison_operator' && node.namedChildCount === 2) {
    const ops = comparisonOperators(node);
    if (ops.length !== 1 || !ORDERED_COMPARISONS.has(ops[0]!.op)) return null;
    left = node.namedChild(0);
    right = node.namedChild(1);
  }
  return left && right && left.text !== right.text ? [left, right] : null;
}

/** `a - b` → `b - a`, `a < b` → `b < a`: the operands of an operator whose order matters change places. */
export const swapOperands = nodeModifier('swap_operands', (node) => {
  const operands = orderedOperands(node);
  return operands ? swapping(operands[0], operands[1], `swapped the operands of \`${snippet(node.text)}\``) : null;
});

/** `a + b + c` → `a + b`, `p and q and r` → `p and q`: the last link of a chain of one operator is dropped. */
export const breakChain = nodeModifier('break_chain', (node) => {
  if (node.type !== 'binary_operator' && node.type !== 'boolean_operator') return null;
  const left = node.childForFieldName('left');
  if (!left || left.type !== node.type) return null;
  if (left.childForFieldName('operator')?.type !== node.childForFieldName('operator')?.type) return null;
  return replacing(node, left.text, `\`${snippet(node.text)}\` → \`${snippet(left.text)}\``);
});
