import type { IssueInput } from './environment.js';

/**
 * The issue text when no writer is wired in: the failing tests by name, nothing from the fix or
 * the log (a log carries timings, and the same seed must give the same task file).
 */
export async function templateIssueText(input: IssueInput): Promise<{ text: string; source: string }> {
  const shown = input.failing.slice(0, 10);
  const more = input.failing.length > shown.length ? `\n- … and ${input.failing.length - shown.length} more` : '';
  return {
    text: `Tests that used to pass now fail in ${input.repo}\n\nThese tests fail on the current code:\n${shown.map((id) => `- ${id}`).join('\n')}${more}\n\nThey passed before; the code they exercise has a bug. Find and fix it without changing the tests.\n`,
    source: 'template',
  };
}
