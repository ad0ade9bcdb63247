import { z } from 'zod';
import type { ChatMessage } from '../../policy/types.js';
import { truncate } from '../parse-action.js';
import { fileContextBlock, issueBlock, renderWithin, searchResultsBlock, composeSystemPrompt, type Budgeted } from '../prompts.js';
import { jsonSchemaOf } from './action-schema.js';
import { addToContext, type ActionSpec, type Handled, type Reply, type State, type StateContext } from './state.js';

export const IdentifyActionSchema = z.strictObject({
  scratch_pad: z.string().describe('Your reasoning for this step'),
  identified_spans: z
    .array(z.strictObject({ file_path: z.string(), span_ids: z.array(z.string()).default([]) }))
    .nullish()
    .describe('The spans in the search results that are relevant to the issue (without span_ids: every span of that file the search showed)'),
});
export type IdentifyAction = z.infer<typeof IdentifyActionSchema>;

const STEP = [
  'Read the search results and list the spans that are relevant to the issue, by file path and span id.',
  'List none if nothing is relevant. The file context shows what you have identified before.',
];

export interface IdentifyView {
  system: string;
  issue: string;
  context: Budgeted;
  results: Budgeted;
}

export const IDENTIFY_ACTION = { name: 'Identify', description: 'Pick the relevant spans from the search results', schema: IdentifyActionSchema } satisfies ActionSpec;

export const identifyCode: State<IdentifyView, IdentifyAction> = {
  name: 'IdentifyCode',
  action: IDENTIFY_ACTION,
  system: (protocol) => composeSystemPrompt('IdentifyCode', STEP, jsonSchemaOf(IDENTIFY_ACTION), protocol),
  keepsHistory: false,

  view(ctx) {
    const read = (p: string) => ctx.workspace.read(p);
    // Hits come best first: the lowest-ranked are given up first, so they go first in the list.
    const ranked = (ctx.memory.lastSearch?.hits ?? []).flatMap((h) => h.spanIds.map((spanId) => ({ path: h.filePath, spanId })));
    return {
      system: identifyCode.system(ctx.agent.protocol),
      issue: issueBlock(ctx.instance.problem_statement),
      context: renderWithin(ctx.index, read, ctx.memory.context, ctx.agent.file_context_tokens),
      results: renderWithin(ctx.index, read, ranked.reverse(), ctx.agent.search_results_tokens),
    };
  },

  prompt(view: IdentifyView): ChatMessage[] {
    return [
      { role: 'system', content: view.system },
      { role: 'user', content: `${view.issue}\n\n${fileContextBlock(view.context)}\n\n${searchResultsBlock(view.results)}` },
    ];
  },

  handle({ action }: Reply<IdentifyAction>, ctx: StateContext): Handled {
    const hits = ctx.memory.lastSearch?.hits ?? [];
    const shown = new Map(hits.map((h) => [h.filePath, h.spanIds]));
    const spans: [string, string][] = [];
    for (const entry of action.identified_spans ?? []) {
      const file = ctx.index.file(entry.file_path);
      // Only files the search showed: spans of any other file (a test file, say) stay out of the context.
      if (!file || !shown.has(file.path)) {
        return { kind: 'retry', message: `file ${truncate(entry.file_path, 120)} is not in the search results; they are ${[...shown.keys()].join(', ')}` };
      }
      const ids = entry.span_ids.length > 0 ? entry.span_ids : shown.get(file.path)!;
      const known = ctx.index.details(file.path);
      for (const id of ids) {
        if (!known.some((s) => s.id === id)) {
          return { kind: 'retry', message: `unknown span ${truncate(id, 80)} in ${file.path}; its spans are ${known.map((s) => s.id).slice(0, 30).join(', ')}` };
        }
        // The index's own spelling of the path: `./a.py` and `a.py` are one file of the context.
        spans.push([file.path, id]);
      }
    }
    if (spans.length === 0) {
      return { kind: 'next', trigger: 'none', summary: 'nothing relevant identified', message: 'Nothing in the last search results was relevant. Search elsewhere.' };
    }
    for (const [path, id] of spans) addToContext(ctx.memory, path, id);
    return { kind: 'next', trigger: 'identified', summary: `identified ${spans.map(([p, id]) => `${p}:${id}`).join(', ')}` };
  },
};
