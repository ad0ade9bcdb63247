import { clarifyCodeChange } from './clarify.js';
import { decideRelevance } from './decide.js';
import { editCode } from './edit.js';
import { identifyCode } from './identify.js';
import { planToCode } from './plan.js';
import { searchCode } from './search.js';
import type { AnyState, StateName } from './state.js';

/** Every state module by name. */
export const STATE_MODULES: Record<StateName, AnyState> = {
  SearchCode: searchCode as AnyState,
  IdentifyCode: identifyCode as AnyState,
  DecideRelevance: decideRelevance as AnyState,
  PlanToCode: planToCode as AnyState,
  ClarifyCodeChange: clarifyCodeChange as AnyState,
  EditCode: editCode as AnyState,
};
