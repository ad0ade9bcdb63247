import type { IssueInput } from './environment.js';
import { templateIssueText } from './issue-template.js';
import type { Strategy } from './strategy.js';
import { STRATEGIES } from './strategies/index.js';

/**
 * The bug strategies `--strategies` can name (src/synth/strategies, one module each) and the
 * issue-text writer (a template until the LLM writer is wired in).
 */
export async function loadStrategies(): Promise<readonly Strategy[]> {
  return STRATEGIES;
}

export async function writeIssue(input: IssueInput): Promise<{ text: string; source: string }> {
  return templateIssueText(input);
}
