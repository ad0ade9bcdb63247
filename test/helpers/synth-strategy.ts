import type { Candidate } from '../../src/synth/candidate.js';
import type { Strategy, StrategyInput } from '../../src/synth/strategy.js';

/**
 * A tiny bug strategy for the pipeline's tests (the real ones live in src/synth/strategies): in
 * each target function, in order, the first line holding one of a few operators gets it swapped.
 * `extra` candidates come first, so a test can put a candidate of its own making in front.
 */
const SWAPS: readonly [RegExp, string][] = [
  [/ == /, ' != '],
  [/ \+ /, ' - '],
  [/ < /, ' >= '],
  [/\bnot /, ''],
  [/ in /, ' not in '],
];

export function swapStrategy(extra: (input: StrategyInput) => Promise<Candidate[]> = async () => []): Strategy {
  return {
    name: 'swap',
    async *candidates(input: StrategyInput): AsyncIterable<Candidate> {
      let made = 0;
      for (const candidate of await extra(input)) {
        if (made++ >= input.limit) return;
        yield candidate;
      }
      for (const target of input.targets) {
        if (made >= input.limit) return;
        const text = await input.repo.readFile(target.file);
        const lines = text.split('\n');
        for (let i = target.start_line; i < target.end_line && i < lines.length; i++) {
          const swap = SWAPS.find(([pattern]) => pattern.test(lines[i]!));
          if (!swap) continue;
          const changed = [...lines];
          changed[i] = lines[i]!.replace(swap[0], swap[1]);
          made++;
          yield {
            strategy: 'swap',
            kind: `swap_${swap[1].trim() || 'not'}`,
            functions: [target],
            edits: [{ path: target.file, before: text, after: changed.join('\n') }],
            description: `line ${i + 1} of ${target.name}`,
          };
          break;
        }
      }
    },
  };
}
