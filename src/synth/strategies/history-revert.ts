import type { Strategy } from '../strategy.js';

export const historyRevertStrategy: Strategy = {
  name: 'history_revert',
  // Filled in by the next commits; yields nothing until then.
  async *candidates() {},
};
