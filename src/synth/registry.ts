import type { IssueInput } from './environment.js';
import { templateIssueText } from './issue-template.js';
import type { Strategy } from './strategy.js';

/**
 * The bug strategies `--strategies` can name, and the issue-text writer. The strategies live in
 * src/synth/strategies (one module each); until that branch is merged only the names are known.
 */
export const STRATEGY_NAMES = ['procedural', 'llm_rewrite', 'history_revert'] as const;

export async function loadStrategies(): Promise<readonly Strategy[]> {
  return [];
}

export async function writeIssue(input: IssueInput): Promise<{ text: string; source: string }> {
  return templateIssueText(input);
}
