import type { Strategy } from '../strategy.js';
import { historyRevertStrategy } from './history-revert.js';
import { llmRewriteStrategy } from './llm-rewrite.js';
import { proceduralStrategy } from './procedural/index.js';

/** The bug strategies `rft tasks synth --strategies` chooses from (design §13), in their default order. */
export const STRATEGIES: readonly Strategy[] = [proceduralStrategy, llmRewriteStrategy, historyRevertStrategy];

export const STRATEGY_NAMES: readonly string[] = STRATEGIES.map((s) => s.name);

/** The strategy of that name; an unknown name is an error that lists the known ones. */
export function strategyByName(name: string): Strategy {
  const found = STRATEGIES.find((s) => s.name === name);
  if (!found) throw new Error(`unknown synthesis strategy "${name}" (known: ${STRATEGY_NAMES.join(', ')})`);
  return found;
}
