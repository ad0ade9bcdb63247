import { z } from 'zod';
import type { ChatMessage } from '../../policy/types.js';
import { fileContextBlock, composeSystemPrompt } from '../prompts.js';
import { boundedTokenCount } from '../tokens.js';
import { jsonSchemaOf } from './action-schema.js';
import { currentLines, type ActionSpec, type Handled, type Reply, type State, type StateContext } from './state.js';

export const ClarifyActionSchema = z.strictObject({
  scratch_pad: z.string().describe('Your reasoning for this step'),
  start_line: z.number().int().describe('First line to change'),
  end_line: z.number().int().describe('Last line to change'),
  reject: z.union([z.boolean(), z.string()]).nullish().describe('true, or a reason, when the change cannot be narrowed down'),
});
export type ClarifyAction = z.infer<typeof ClarifyActionSchema>;

/** Ranges shorter than this are widened (within the span), so the edit sees some surroundings. */
const MIN_LINES = 4;

const STEP = [
  'The span to change is long. Give the first and last line numbers of the part that needs to change;',
  'the range must lie inside the span and be much smaller than it. Reject if the change cannot be narrowed down.',
];

export interface ClarifyView {
  system: string;
  instructions: string;
  path: string;
  spanId: string;
  startLine: number;
  lines: string[];
}

export const CLARIFY_ACTION = { name: 'LineNumberClarification', description: 'Narrow a large span down to the lines to change', schema: ClarifyActionSchema } satisfies ActionSpec;

export const clarifyCodeChange: State<ClarifyView, ClarifyAction> = {
  name: 'ClarifyCodeChange',
  action: CLARIFY_ACTION,
  system: (protocol) => composeSystemPrompt('ClarifyCodeChange', STEP, jsonSchemaOf(CLARIFY_ACTION), protocol),
  keepsHistory: false,

  view(ctx) {
    const change = ctx.memory.pending!;
    return {
      system: clarifyCodeChange.system(ctx.agent.protocol),
      instructions: change.instructions,
      path: change.filePath,
      spanId: change.spanId,
      startLine: change.startLine,
      lines: currentLines(ctx, change.filePath).slice(change.startLine - 1, change.endLine),
    };
  },

  prompt(view: ClarifyView): ChatMessage[] {
    const context = fileContextBlock({ files: [{ path: view.path, spans: [{ id: view.spanId, startLine: view.startLine, lines: view.lines }] }], dropped: 0, budget: 0, tokens: 0 });
    return [
      { role: 'system', content: view.system },
      { role: 'user', content: `<instructions>\n${view.instructions}\n</instructions>\n\n${context}` },
    ];
  },

  handle({ action }: Reply<ClarifyAction>, ctx: StateContext): Handled {
    const change = ctx.memory.pending!;
    const reject = typeof action.reject === 'string' ? action.reject.trim() : action.reject === true ? 'no reason given' : '';
    if (reject) {
      ctx.memory.pending = null;
      return { kind: 'next', trigger: 'reject', summary: 'clarify rejected', message: `The change to ${change.filePath}:${change.spanId} was given up: ${reject}` };
    }
    const { start_line: start, end_line: end } = action;
    if (start < change.startLine || end > change.endLine || end < start) {
      return { kind: 'retry', message: `start_line and end_line must lie within ${change.startLine}-${change.endLine}, start first` };
    }
    const lines = currentLines(ctx, change.filePath);
    const tokens = boundedTokenCount(lines.slice(start - 1, end).join('\n'));
    if (tokens > ctx.agent.clarify_above_tokens) {
      return { kind: 'retry', message: `lines ${start}-${end} hold ${tokens} tokens; choose a range of at most ${ctx.agent.clarify_above_tokens}` };
    }
    let [from, to] = [start, end];
    while (to - from + 1 < MIN_LINES && (from > change.startLine || to < change.endLine)) {
      if (from > change.startLine) from--;
      if (to - from + 1 < MIN_LINES && to < change.endLine) to++;
    }
    ctx.memory.pending = { ...change, startLine: from, endLine: to };
    return { kind: 'next', trigger: 'edit', summary: `lines ${from}-${to}${from !== start || to !== end ? ` (asked ${start}-${end})` : ''}` };
  },
};
