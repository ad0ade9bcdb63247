import type { Node } from 'web-tree-sitter';
import { nodeModifier, replacing, snippet, swapping } from './tree.js';

/** Conditions (SWE-smith's "invert if/else" family): negate a test, or swap what the two branches do. */

const CONDITIONED = new Set(['if_statement', 'elif_clause', 'while_statement']);

function conditionOf(node: Node): Node | null {
  if (CONDITIONED.has(node.type)) return node.childForFieldName('condition');
  // `a if c else b`: the condition is the middle operand.
  if (node.type === 'conditional_expression') return node.namedChild(1);
  return null;
}

/** `if c:` → `if not (c):`; a test that is already `not x` loses its `not` instead. */
export const invertCondition = nodeModifier('invert_condition', (node) => {
  const condition = conditionOf(node);
  if (!condition) return null;
  const argument = condition.type === 'not_operator' ? condition.childForFieldName('argument') : null;
  return replacing(condition, argument ? argument.text : `not (${condition.text})`, `negated \`${snippet(condition.text)}\``);
});

/** `if c: A else: B` → `if c: B else: A` (no elif: the two bodies sit at one indentation, so their texts swap as they are). */
export const swapIfElse = nodeModifier('swap_if_else', (node) => {
  if (node.type !== 'if_statement') return null;
  const alternatives = node.childrenForFieldName('alternative').filter((c): c is Node => c !== null);
  if (alternatives.length !== 1 || alternatives[0]!.type !== 'else_clause') return null;
  const then = node.childForFieldName('consequence');
  const otherwise = alternatives[0]!.childForFieldName('body');
  if (!then || !otherwise || then.text === otherwise.text) return null;
  // A body on the header's own line (`if c: x`) has no indentation to keep; leave those be.
  if (then.startPosition.row === node.startPosition.row || otherwise.startPosition.row === alternatives[0]!.startPosition.row) return null;
  return swapping(then, otherwise, `swapped the branches of \`if ${snippet(node.childForFieldName('condition')?.text ?? '')}\``);
});
