import type { Node } from 'web-tree-sitter';
import { type Modifier, type Rewrite, children, ownNodes, pick, snippet } from './tree.js';

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
function comparisonOperators(node: Node): { start: number; end: number; op: string }[] {
  const ops: { start: number; end: number; op: string }[] = [];
  let current: { start: number; end: number; words: string[] } | null = null;
  for (const child of children(node)) {
    if (child.isNamed) {
      if (current) ops.push({ start: current.start, end: current.end, op: current.words.join(' ') });
      current = null;
    } else if (current) {
      current.end = child.endIndex;
      current.words.push(child.type);
    } else {
      current = { start: child.startIndex, end: child.endIndex, words: [child.type] };
    }
  }
  return ops;
}

/** `a < b` → `a <= b` or `a > b`, `==` ↔ `!=`, `in` ↔ `not in`, `is` ↔ `is not`. */
export const changeComparison: Modifier = {
  kind: 'change_comparison',
  rewrites(fn, rng) {
    const out: Rewrite[] = [];
    for (const node of ownNodes(fn)) {
      if (node.type !== 'comparison_operator') continue;
      for (const { start, end, op } of comparisonOperators(node)) {
        const choices = COMPARISON_SWAPS[op];
        if (!choices) continue;
        const text = pick(choices, rng);
        out.push({ replacements: [{ start, end, text }], note: `\`${op}\` → \`${text}\` in \`${snippet(node.text)}\`` });
      }
    }
    return out;
  },
};

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
export const changeArithmetic: Modifier = {
  kind: 'change_arithmetic',
  rewrites(fn, rng) {
    const out: Rewrite[] = [];
    for (const node of ownNodes(fn)) {
      const operator = node.type === 'binary_operator' || node.type === 'augmented_assignment' ? node.childForFieldName('operator') : null;
      if (!operator) continue;
      if (isStringy(node.childForFieldName('left')) || isStringy(node.childForFieldName('right'))) continue;
      const augmented = node.type === 'augmented_assignment';
      const op = augmented ? operator.type.slice(0, -1) : operator.type;
      const choices = ARITHMETIC_SWAPS[op];
      if (!choices) continue;
      const text = pick(choices, rng) + (augmented ? '=' : '');
      out.push({ replacements: [{ start: operator.startIndex, end: operator.endIndex, text }], note: `\`${operator.type}\` → \`${text}\` in \`${snippet(node.text)}\`` });
    }
    return out;
  },
};

/** `a and b` ↔ `a or b`. */
export const changeBoolean: Modifier = {
  kind: 'change_boolean',
  rewrites(fn) {
    const out: Rewrite[] = [];
    for (const node of ownNodes(fn)) {
      if (node.type !== 'boolean_operator') continue;
      const operator = node.childForFieldName('operator');
      if (!operator) continue;
      const text = operator.type === 'and' ? 'or' : 'and';
      out.push({ replacements: [{ start: operator.startIndex, end: operator.endIndex, text }], note: `\`${operator.type}\` → \`${text}\` in \`${snippet(node.text)}\`` });
    }
    return out;
  },
};

const NON_COMMUTATIVE = new Set(['-', '/', '//', '%', '**', '<<', '>>']);
const ORDERED_COMPARISONS = new Set(['<', '<=', '>', '>=']);

/** `a - b` → `b - a`, `a < b` → `b < a`: the operands of an operator whose order matters change places. */
export const swapOperands: Modifier = {
  kind: 'swap_operands',
  rewrites(fn) {
    const out: Rewrite[] = [];
    for (const node of ownNodes(fn)) {
      let left: Node | null = null;
      let right: Node | null = null;
      if (node.type === 'binary_operator' && NON_COMMUTATIVE.has(node.childForFieldName('operator')?.type ?? '')) {
        left = node.childForFieldName('left');
        right = node.childForFieldName('right');
        if (isStringy(left)) continue;
      } else if (node.type === 'comparison_operator' && node.namedChildCount === 2) {
        const ops = comparisonOperators(node);
        if (ops.length !== 1 || !ORDERED_COMPARISONS.has(ops[0]!.op)) continue;
        left = node.namedChild(0);
        right = node.namedChild(1);
      }
      if (!left || !right || left.text === right.text) continue;
      out.push({
        replacements: [
          { start: left.startIndex, end: left.endIndex, text: right.text },
          { start: right.startIndex, end: right.endIndex, text: left.text },
        ],
        note: `swapped the operands of \`${snippet(node.text)}\``,
      });
    }
    return out;
  },
};

/** `a + b + c` → `a + b`, `p and q and r` → `p and q`: the last link of a chain of one operator is dropped. */
export const breakChain: Modifier = {
  kind: 'break_chain',
  rewrites(fn) {
    const out: Rewrite[] = [];
    for (const node of ownNodes(fn)) {
      if (node.type !== 'binary_operator' && node.type !== 'boolean_operator') continue;
      const left = node.childForFieldName('left');
      if (!left || left.type !== node.type) continue;
      if (left.childForFieldName('operator')?.type !== node.childForFieldName('operator')?.type) continue;
      out.push({ replacements: [{ start: node.startIndex, end: node.endIndex, text: left.text }], note: `\`${snippet(node.text)}\` → \`${snippet(left.text)}\`` });
    }
    return out;
  },
};
