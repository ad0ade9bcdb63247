import { z } from 'zod';
import type { ToolSpec } from '../policy/types.js';

/**
 * The structured action each workflow state asks the model for (design §5, MoatlessTools v0.0.2
 * shape). One schema per state; its JSON Schema goes into the system prompt (json protocol) or
 * becomes the state's one tool (tools protocol). The schemas are strict: an unknown field is
 * an invalid action, answered with a retry message that names it.
 */

const scratchPad = z.string().describe('Your reasoning for this step');

export const SearchRequestSchema = z.strictObject({
  file_pattern: z.string().nullish().describe('Glob limiting the search to matching files, e.g. **/units.py'),
  query: z.string().nullish().describe('Free-text description of the code to find'),
  code_snippet: z.string().nullish().describe('Exact code to find (whitespace-insensitive)'),
  class_names: z.array(z.string()).default([]).describe('Class names to find'),
  function_names: z.array(z.string()).default([]).describe('Function or method names to find'),
});
export type SearchRequest = z.infer<typeof SearchRequestSchema>;

export const SearchActionSchema = z.strictObject({
  scratch_pad: scratchPad,
  search_requests: z.array(SearchRequestSchema).default([]).describe('One or more searches to run'),
  complete: z.boolean().default(false).describe('True when the relevant code has been found and no more search is needed'),
});

export const IdentifyActionSchema = z.strictObject({
  scratch_pad: scratchPad,
  identified_spans: z
    .array(z.strictObject({ file_path: z.string(), span_ids: z.array(z.string()) }))
    .nullish()
    .describe('The spans in the search results that are relevant to the issue'),
});

export const DecideActionSchema = z.strictObject({
  scratch_pad: scratchPad,
  relevant: z.boolean().describe('True if the file context holds code relevant to the issue'),
  complete: z.boolean().describe('True if the file context holds all the code needed to fix the issue'),
  search_suggestions: z.string().nullish().describe('Where to search next when the context is not complete'),
});

export const PlanActionSchema = z.strictObject({
  scratch_pad: scratchPad,
  action: z
    .enum(['modify', 'review', 'finish', 'reject'])
    .describe('modify: change one span; review: search for more code first; finish: the issue is fixed; reject: it cannot be fixed'),
  instructions: z.string().nullish().describe('What to change in the span (for modify)'),
  file_path: z.string().nullish().describe('File of the span to change (for modify)'),
  span_id: z.string().nullish().describe('Span to change (for modify)'),
  finish: z.string().nullish().describe('Why the issue is fixed (for finish)'),
  reject: z.string().nullish().describe('Why the issue cannot be fixed (for reject)'),
});

export const ClarifyActionSchema = z.strictObject({
  scratch_pad: scratchPad,
  start_line: z.number().int().describe('First line to change'),
  end_line: z.number().int().describe('Last line to change'),
  reject: z.string().nullish().describe('Why the change cannot be narrowed down'),
});

export const STATES = ['SearchCode', 'IdentifyCode', 'DecideRelevance', 'PlanToCode', 'ClarifyCodeChange', 'EditCode'] as const;
export type StateName = (typeof STATES)[number];

/** The action (tool) name each structured state answers with; EditCode answers in free text. */
export const ACTIONS = {
  SearchCode: { name: 'Search', schema: SearchActionSchema, description: 'Search the code base' },
  IdentifyCode: { name: 'Identify', schema: IdentifyActionSchema, description: 'Pick the relevant spans from the search results' },
  DecideRelevance: { name: 'Decide', schema: DecideActionSchema, description: 'Decide whether the file context is enough to fix the issue' },
  PlanToCode: { name: 'ApplyChange', schema: PlanActionSchema, description: 'Plan the next change, or finish, or reject' },
  ClarifyCodeChange: { name: 'LineNumberClarification', schema: ClarifyActionSchema, description: 'Narrow a large span down to the lines to change' },
} as const;
export type StructuredState = keyof typeof ACTIONS;

export type SearchAction = z.infer<typeof SearchActionSchema>;
export type IdentifyAction = z.infer<typeof IdentifyActionSchema>;
export type DecideAction = z.infer<typeof DecideActionSchema>;
export type PlanAction = z.infer<typeof PlanActionSchema>;
export type ClarifyAction = z.infer<typeof ClarifyActionSchema>;

/** The JSON Schema of a state's action, as shown to the model. */
export function actionJsonSchema(state: StructuredState): Record<string, unknown> {
  const { $schema: _ignored, ...schema } = z.toJSONSchema(ACTIONS[state].schema, { io: 'input' }) as Record<string, unknown>;
  return { title: ACTIONS[state].name, description: ACTIONS[state].description, ...schema };
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
  const structured: StructuredState = state;
  const { title: _title, description: _description, ...parameters } = actionJsonSchema(structured);
  return { type: 'function', function: { name: ACTIONS[structured].name, description: ACTIONS[structured].description, parameters } };
}
