import type { z } from 'zod';
import type { ChatMessage, ToolSpec } from '../policy/types.js';
import { parseAction, type ParsedAction } from './parse-action.js';
import { jsonSchemaOf } from './states/action-schema.js';
import { CLARIFY_ACTION, ClarifyActionSchema, type ClarifyAction } from './states/clarify.js';
import { DECIDE_ACTION, DecideActionSchema, type DecideAction } from './states/decide.js';
import { IDENTIFY_ACTION, IdentifyActionSchema, type IdentifyAction } from './states/identify.js';
import { STATE_MODULES } from './states/index.js';
import { PLAN_ACTION, PlanActionSchema, type PlanAction } from './states/plan.js';
import { SEARCH_ACTION, SearchActionSchema, SearchRequestSchema, type SearchAction, type SearchRequest } from './states/search.js';
import type { ActionSpec, StateName } from './states/state.js';

/**
 * The registry of actions, for readers outside the workflow (the SFT writer rebuilds an
 * example's tools with it; the SIMULATED policy names the actions). The schemas themselves live
 * with their states in states/.
 */

export const STATES = ['SearchCode', 'IdentifyCode', 'DecideRelevance', 'PlanToCode', 'ClarifyCodeChange', 'EditCode'] as const satisfies readonly StateName[];
export type { StateName };
export type StructuredState = Exclude<StateName, 'EditCode'>;

export const ACTIONS = {
  SearchCode: SEARCH_ACTION,
  IdentifyCode: IDENTIFY_ACTION,
  DecideRelevance: DECIDE_ACTION,
  PlanToCode: PLAN_ACTION,
  ClarifyCodeChange: CLARIFY_ACTION,
} as const satisfies Record<StructuredState, ActionSpec>;

export { ClarifyActionSchema, DecideActionSchema, IdentifyActionSchema, PlanActionSchema, SearchActionSchema, SearchRequestSchema };
export type { ClarifyAction, DecideAction, IdentifyAction, PlanAction, SearchAction, SearchRequest };

/** A state's system prompt. */
export function systemPrompt(state: StateName, protocol: 'json' | 'tools'): string {
  return STATE_MODULES[state].system(protocol);
}

/** The JSON Schema of a state's action, as shown to the model. */
export function actionJsonSchema(state: StructuredState): Record<string, unknown> {
  return jsonSchemaOf(ACTIONS[state]);
}

/** EditCode's free-text answer: `<replace>new code</replace>` or `<reject>why</reject>`. */
export type EditAnswer = { kind: 'replace'; code: string } | { kind: 'reject'; reason: string };

/**
 * The one tool a state offers under the tools protocol: the action's JSON Schema (without its
 * title and description) as parameters, the action's name and description around it. EditCode
 * answers in free text and has none. SFT data rebuilds the tools of an example with this too.
 */
export function toolForState(state: StateName): ToolSpec | null {
  if (state === 'EditCode') return null;
  const { title: _title, description: _description, ...parameters } = actionJsonSchema(state);
  return { type: 'function', function: { name: ACTIONS[state].name, description: ACTIONS[state].description, parameters } };
}

/** A reply read as the action of a given state (parseAction with that state's spec), typed by state. */
export function parseActionOf<S extends StructuredState>(
  state: S,
  message: Extract<ChatMessage, { role: 'assistant' }>,
  protocol: 'json' | 'tools',
): ParsedAction<z.infer<(typeof ACTIONS)[S]['schema']>> {
  return parseAction(ACTIONS[state] as ActionSpec, message, protocol) as ParsedAction<z.infer<(typeof ACTIONS)[S]['schema']>>;
}
