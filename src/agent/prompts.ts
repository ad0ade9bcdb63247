import { actionJsonSchema, type StateName, type StructuredState } from './actions.js';

/**
 * The text the agent sends. Every system prompt starts with `Workflow step: <State>` so a reader
 * of the SFT data (or the simulated policy) can tell the states apart; user messages wrap their
 * parts in tags: <issue>, <file_context>, <search_results>, <instructions>, <search>.
 *
 * Code is shown as files of spans, each line prefixed with its number:
 *   <file path="pkg/mod.py">
 *   <span id="Class.method">
 *       12\t    def method(self):
 *   </span>
 *   </file>
 */

export interface RenderedSpan {
  id: string;
  /** 1-based first line of the span in its file. */
  startLine: number;
  lines: readonly string[];
}

export interface RenderedFile {
  path: string;
  spans: readonly RenderedSpan[];
}

export function renderFiles(files: readonly RenderedFile[]): string {
  return files
    .map((file) => {
      const spans = file.spans.map((span) => {
        const numbered = span.lines.map((line, i) => `${String(span.startLine + i).padStart(6)}\t${line}`);
        return [`<span id="${span.id}">`, ...numbered, '</span>'].join('\n');
      });
      return [`<file path="${file.path}">`, ...spans, '</file>'].join('\n');
    })
    .join('\n');
}

const ROLE =
  'You are an autonomous software engineer fixing an issue in a Python repository. You work in ' +
  'fixed steps; each reply is one action for the current step.';

const STEP_TEXT: Record<StateName, string> = {
  SearchCode:
    'Find the code that the issue is about. Ask for one or more searches: by class name, by function ' +
    'name, by an exact code snippet, or by a free-text query, optionally limited with a file pattern. ' +
    'Test files are not searched. Set complete to true once the file context already holds what is needed.',
  IdentifyCode:
    'Read the search results and list the spans that are relevant to the issue, by file path and span id. ' +
    'List none if nothing is relevant.',
  DecideRelevance:
    'Decide whether the file context is relevant to the issue, and whether it is complete: enough to ' +
    'write the fix. If it is not complete, suggest where to search next.',
  PlanToCode:
    'Plan the fix one change at a time. To change code, choose action modify with the file path and the ' +
    'span id of one span in the file context, and instructions saying what to change. Choose review to ' +
    'search for more code first, finish when the issue is fixed, reject if it cannot be fixed.',
  ClarifyCodeChange:
    'The span to change is long. Give the first and last line numbers of the part that needs to change.',
  EditCode:
    'Rewrite the code inside <search> following the instructions. Reply with the complete new code between ' +
    '<replace> and </replace>, keeping the indentation, and nothing else; or reply <reject>why</reject> if ' +
    'the instructions cannot be carried out on this code.',
};

/** The system prompt of a state; with the json protocol it carries the action's JSON Schema. */
export function systemPrompt(state: StateName, protocol: 'json' | 'tools'): string {
  const parts = [`Workflow step: ${state}`, '', ROLE, '', STEP_TEXT[state]];
  if (state !== 'EditCode' && protocol === 'json') {
    parts.push(
      '',
      'Reply with one JSON object that matches this JSON Schema, and nothing else:',
      JSON.stringify(actionJsonSchema(state as StructuredState)),
    );
  }
  return parts.join('\n');
}

export function issueBlock(problemStatement: string): string {
  return `<issue>\n${problemStatement.trim()}\n</issue>`;
}

export function fileContextBlock(files: readonly RenderedFile[]): string {
  return files.length === 0 ? '<file_context>\n(empty)\n</file_context>' : `<file_context>\n${renderFiles(files)}\n</file_context>`;
}

export function searchResultsBlock(files: readonly RenderedFile[]): string {
  return `<search_results>\n${renderFiles(files)}\n</search_results>`;
}

/** EditCode's user message: the instructions, the context and the exact code to rewrite. */
export function editRequest(instructions: string, context: readonly RenderedFile[], filePath: string, code: string): string {
  return [
    `<instructions>\n${instructions.trim()}\n</instructions>`,
    fileContextBlock(context),
    `<search file="${filePath}">\n${code}\n</search>`,
  ].join('\n\n');
}

/** Parses EditCode's free-text answer; null when it holds neither tag. */
export function parseEditAnswer(text: string): { kind: 'replace'; code: string } | { kind: 'reject'; reason: string } | null {
  const replace = /<replace>\n?([\s\S]*?)\n?(?:<\/replace>|$)/.exec(text);
  if (replace) return { kind: 'replace', code: replace[1]! };
  const reject = /<reject>([\s\S]*?)(?:<\/reject>|$)/.exec(text);
  if (reject) return { kind: 'reject', reason: reject[1]!.trim() };
  return null;
}
