import type { IssueInput } from './environment.js';
import { failingFromLog, writeIssueText } from './issue-text.js';
import type { Strategy } from './strategy.js';
import { STRATEGIES } from './strategies/index.js';

/** The bug strategies `--strategies` can name (src/synth/strategies, one module each). */
export async function loadStrategies(): Promise<readonly Strategy[]> {
  return STRATEGIES;
}

/**
 * The issue text (src/synth/issue-text.ts: the endpoint when given, else its template) from the
 * failing tests' sections of the first failing run's log. Durations and object addresses are blanked first: a resumed
 * run validates its interrupted candidate again, and the same seed must give the same task file.
 */
export async function writeIssue(input: IssueInput): Promise<{ text: string; source: string }> {
  const log = input.log.replace(/\b\d+(\.\d+)?s\b/g, '…s').replace(/\b0x[0-9a-fA-F]{6,}\b/g, '0x…');
  const issue = await writeIssueText({
    candidate: input.candidate,
    failing: failingFromLog(input.failing, log),
    goldPatch: input.gold,
    repo: input.repo,
    seed: input.seed,
    ...(input.llm ? { llm: input.llm } : {}),
  });
  return { text: issue.text, source: issue.source };
}
