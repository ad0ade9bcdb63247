import { createHash } from 'node:crypto';
import type { Candidate, FunctionTarget } from '../../candidate.js';
import type { RepoView, Strategy, StrategyInput } from '../../strategy.js';
import { seededRng, shuffled } from '../seeded.js';
import { swapArguments } from './arguments.js';
import { invertCondition, swapIfElse } from './conditions.js';
import { changeConstant, flipBoolean } from './constants.js';
import { addGuard, breakContinue, earlyReturn } from './control.js';
import { offByOne } from './off-by-one.js';
import { breakChain, changeArithmetic, changeBoolean, changeComparison, swapOperands } from './operators.js';
import { removeAssignment, removeCall, removeConditional, removeLoop } from './removal.js';
import { swapStatements } from './shuffle.js';
import { type Modifier, type Proposals, type PythonParser, type Rewrite, check, createPythonParser, proposeAll } from './tree.js';

/**
 * The procedural strategy (design §13, SWE-smith's syntax-tree rewrites): no LLM, no Docker, just
 * the repository's text. It visits targets in an order drawn from the seed, one candidate per
 * target per round (so a small limit still reaches many functions), and at each target takes the
 * kind used least so far among those that apply there (so the candidates spread over kinds too).
 */

/** Every modifier, one entry per kind. */
export const MODIFIERS: readonly Modifier[] = [
  invertCondition,
  swapIfElse,
  changeComparison,
  changeArithmetic,
  changeBoolean,
  swapOperands,
  breakChain,
  changeConstant,
  flipBoolean,
  offByOne,
  swapArguments,
  removeAssignment,
  removeCall,
  removeConditional,
  removeLoop,
  addGuard,
  earlyReturn,
  breakContinue,
  swapStatements,
];

/** What is left to try at one target: its proposals by kind, each list in the order drawn for it. */
interface TargetQueue {
  target: FunctionTarget;
  text: string;
  proposals: Proposals;
  byKind: Map<string, Rewrite[]>;
  /** Tie-break among kinds used equally often: an order drawn per target. */
  kindOrder: string[];
}

/** A file's text and the proposals for each of its targets, made in one parse when the first of them is visited. */
interface FileProposals {
  text: string;
  byTarget: Map<FunctionTarget, Proposals | null>;
}

async function proposeFile(parser: PythonParser, repo: RepoView, path: string, targets: readonly FunctionTarget[], seed: number): Promise<FileProposals | null> {
  // A file the image does not have (or cannot decode) just has no candidates.
  const text = await repo.readFile(path).catch(() => null);
  if (text === null) return null;
  const mine = targets.filter((t) => t.file === path);
  const proposals = proposeAll(parser, text, mine, MODIFIERS, (t) => targetRng(seed, t));
  return { text, byTarget: new Map(mine.map((t, i) => [t, proposals[i] ?? null])) };
}

const targetRng = (seed: number, t: FunctionTarget) => seededRng(seed, 'procedural', t.file, t.name, String(t.start_line));

function buildQueue(file: FileProposals, target: FunctionTarget, seed: number): TargetQueue | null {
  const proposals = file.byTarget.get(target);
  file.byTarget.delete(target);
  if (!proposals || proposals.rewrites.length === 0) return null;
  const rng = targetRng(seed, target);
  const byKind = new Map<string, Rewrite[]>();
  for (const { kind, rewrite } of proposals.rewrites) {
    const list = byKind.get(kind) ?? [];
    list.push(rewrite);
    byKind.set(kind, list);
  }
  for (const [kind, list] of byKind) byKind.set(kind, shuffled(list, rng));
  return { target, text: file.text, proposals, byKind, kindOrder: shuffled([...byKind.keys()], rng) };
}

export const proceduralStrategy: Strategy = {
  name: 'procedural',
  async *candidates({ repo, targets, seed, limit }: StrategyInput): AsyncIterable<Candidate> {
    if (limit <= 0 || targets.length === 0) return;
    const parser = await createPythonParser();
    const files = new Map<string, FileProposals | null>();
    const order = shuffled(targets, seededRng(seed, 'procedural', 'targets'));
    const queues = new Map<number, TargetQueue | null>();
    const used = new Map<string, number>();
    const seen = new Set<string>();
    let active = order.map((_, i) => i);
    let produced = 0;
    while (active.length > 0) {
      const still: number[] = [];
      for (const i of active) {
        if (!queues.has(i)) {
          const target = order[i]!;
          if (!files.has(target.file)) files.set(target.file, target.file.endsWith('.py') ? await proposeFile(parser, repo, target.file, targets, seed) : null);
          const file = files.get(target.file);
          queues.set(i, file ? buildQueue(file, target, seed) : null);
        }
        const queue = queues.get(i)!;
        const candidate = queue ? next(parser, queue, used, seen) : null;
        if (!candidate) {
          queues.set(i, null); // exhausted: free its text and proposals
          continue;
        }
        yield candidate;
        produced += 1;
        if (produced >= limit) return;
        still.push(i);
      }
      active = still;
    }
  },
};

/** The next candidate at one target: the least-used kind first; proposals that fail the check or repeat an earlier file are dropped. */
function next(parser: PythonParser, queue: TargetQueue, used: Map<string, number>, seen: Set<string>): Candidate | null {
  for (;;) {
    const kinds = queue.kindOrder.filter((k) => (queue.byKind.get(k)?.length ?? 0) > 0);
    if (kinds.length === 0) return null;
    const kind = kinds.reduce((best, k) => ((used.get(k) ?? 0) < (used.get(best) ?? 0) ? k : best));
    const rewrite = queue.byKind.get(kind)!.shift()!;
    const after = check(parser, queue.text, queue.target, queue.proposals, rewrite);
    if (after === null) continue;
    // The text around the function is the base's, so the function's new text identifies the file.
    const end = queue.proposals.end + after.length - queue.text.length;
    const key = createHash('sha256').update(`${queue.target.file}\u0000${queue.proposals.lineStart}\u0000${after.slice(queue.proposals.lineStart, end)}`).digest('hex');
    if (seen.has(key)) continue;
    seen.add(key);
    used.set(kind, (used.get(kind) ?? 0) + 1);
    const { target } = queue;
    return {
      strategy: 'procedural',
      kind,
      functions: [target],
      edits: [{ path: target.file, before: queue.text, after }],
      description: `${kind} in ${target.file}:${target.name}: ${rewrite.note}`,
    };
  }
}
