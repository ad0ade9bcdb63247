import type { LoadedRecipe } from '../recipe/load.js';
import { formatResult, runDoctor } from './run.js';

/** The fast checks failed: the run would stop later (after sampling, at the trainer), so it does not start. */
export class NotReadyError extends Error {
  constructor(readonly lines: string[]) {
    // The first failure leads (it is the line a log or a terminal shows first), the others follow.
    const [first, ...rest] = lines.map((line) => line.replace(/^FAIL\s+/, ''));
    super([`not starting: ${first}`, ...rest, `(${lines.length} check(s) failed; \`rft doctor <recipe>\` runs them all)`].join('\n'));
    this.name = 'NotReadyError';
  }
}

/**
 * rft run's checks before the first LLM call: Docker, task files, tokenizer folder, trainer
 * command, and (when asked: a run not started yet) that the endpoint accepts a connection. A FAIL stops with the doctor's lines; a warning is passed on.
 */
export async function assertReady(loaded: LoadedRecipe, options: { runsDir: string; checkEndpoint: boolean; warn: (message: string) => void }): Promise<void> {
  const report = await runDoctor({ loaded, runsDir: options.runsDir, fast: true, skipEndpoint: !options.checkEndpoint });
  for (const result of report.results) if (result.status === 'warn') options.warn(formatResult(result).replace(/^warn\s+/, ''));
  const failed = report.results.filter((r) => r.status === 'FAIL');
  if (failed.length > 0) throw new NotReadyError(failed.map(formatResult));
}
