import type { Strategy } from '../strategy.js';

export const llmRewriteStrategy: Strategy = {
  name: 'llm_rewrite',
  // Filled in by the next commits; yields nothing until then.
  async *candidates() {},
};
