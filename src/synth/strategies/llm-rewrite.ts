import type { Candidate, FunctionTarget } from '../candidate.js';
import type { ChatEndpoint, ChatMessage, RepoView, Strategy, StrategyInput } from '../strategy.js';
import { check, createPythonParser, dedent, findFunction, namedChildren, type Proposals, type PythonParser } from './procedural/tree.js';
import { seededRng, shuffled } from './seeded.js';

/**
 * The LLM rewrite strategy (design §13, SWE-smith's LM rewrite): the recipe's policy endpoint is
 * shown one function and asked to put a plausible bug in it; the answer's code block replaces the
 * function. Kept only when the answer is one function of the same name that parses in place and
 * differs from the original. Without an endpoint it proposes nothing.
 */

/** The system prompt's first line; the SIMULATED policy recognises the request by it. */
export const REWRITE_HEADER = 'Synthesis step: reintroduce a bug';

/** Longer functions do not come back whole within a 2,000-token completion; they are skipped. */
export const MAX_FUNCTION_CHARS = 6000;

/** Targets tried at most per candidate asked for: a model that keeps answering badly cannot run through every target. */
export const ATTEMPTS_PER_CANDIDATE = 3;

export const REWRITE_TEMPERATURE = 0.8;

const SYSTEM = `${REWRITE_HEADER}
You help build training tasks for software engineering agents. You are given one Python function
from a repository. Rewrite it so that it contains one subtle, plausible bug of the kind a developer
could introduce by mistake (a wrong condition, an off-by-one bound, a missed case, a wrong operator,
a forgotten step). The function must still be valid Python, keep its name and signature, and
must not announce the bug: no comments about it, no renamed identifiers.
Answer with the whole rewritten function in a single \`\`\`python code block and nothing else.`;

/** The prompt for one function (its source dedented, so a method reads like a function). */
export function rewritePrompt(path: string, name: string, source: string): ChatMessage[] {
  return [
    { role: 'system', content: SYSTEM },
    { role: 'user', content: `File: ${path}\nFunction: ${name}\n\n\`\`\`python\n${source}\n\`\`\`` },
  ];
}

/** The code of the first fenced block of an answer (any language tag), or null. */
export function fencedCode(answer: string): string | null {
  const match = /```[\w+-]*[^\S\n]*\n([\s\S]*?)\n?```/.exec(answer);
  return match ? match[1]! : null;
}

/** A target function as the prompt shows it (dedented from its `def` line), with where it sits in the file. */
export interface FunctionSource {
  source: string;
  indent: string;
  proposals: Proposals;
}

/** Each target's source, from one parse of the file (null for a target not found). */
export function functionSources(parser: PythonParser, text: string, targets: readonly FunctionTarget[]): (FunctionSource | null)[] {
  return (
    parser.withTree(text, (root) =>
      targets.map((target) => {
        const fn = findFunction(root, target);
        if (!fn) return null;
        const lineStart = text.lastIndexOf('\n', fn.startIndex - 1) + 1;
        const indent = text.slice(lineStart, fn.startIndex);
        if (indent.trim() !== '') return null; // `class A: def f(): ...` on one line: nothing sensible to splice
        return {
          source: dedent(text.slice(lineStart, fn.endIndex)),
          indent,
          proposals: { start: fn.startIndex, end: fn.endIndex, lineStart, originalError: root.hasError, rewrites: [] },
        };
      }),
    ) ?? targets.map(() => null)
  );
}

/** True when the code is exactly one function definition called `name` (no extra definitions or statements). */
function isOneFunction(parser: PythonParser, code: string, name: string): boolean {
  return (
    parser.withTree(code, (root) => {
      if (root.hasError) return false;
      const top = namedChildren(root).filter((n) => n.type !== 'comment');
      const def = top.length === 1 ? top[0]! : null;
      return def?.type === 'function_definition' && def.childForFieldName('name')?.text === name;
    }) ?? false
  );
}

/** The file with the function replaced by the answer's, or null when the answer is not a usable rewrite. */
export function spliceAnswer(parser: PythonParser, text: string, target: FunctionTarget, answer: string, found = functionSources(parser, text, [target])[0] ?? null): string | null {
  const code = fencedCode(answer);
  if (!found || code === null) return null;
  const rewritten = dedent(code);
  const shortName = target.name.split('.').at(-1)!;
  if (!isOneFunction(parser, rewritten, shortName)) return null;
  // The first line goes where the `def` was; the rest take the function's indentation.
  const body = rewritten
    .split('\n')
    .map((line, i) => (i === 0 || line.trim() === '' ? line : found.indent + line))
    .join('\n');
  return check(parser, text, target, found.proposals, { replacements: [{ start: found.proposals.start, end: found.proposals.end, text: body }], note: '' });
}

/** A file's text and its targets' sources, read and parsed once when the first of them is visited. */
type FileSources = { text: string; byTarget: Map<FunctionTarget, FunctionSource | null> } | null;

async function readSources(parser: PythonParser, repo: RepoView, path: string, targets: readonly FunctionTarget[]): Promise<FileSources> {
  if (!path.endsWith('.py')) return null;
  const text = await repo.readFile(path).catch(() => null);
  if (text === null) return null;
  const mine = targets.filter((t) => t.file === path);
  const sources = functionSources(parser, text, mine);
  return { text, byTarget: new Map(mine.map((t, i) => [t, sources[i] ?? null])) };
}

async function rewriteOne(parser: PythonParser, file: FileSources, llm: ChatEndpoint, target: FunctionTarget, seed: number): Promise<Candidate | null> {
  const found = file?.byTarget.get(target);
  if (!file || !found || found.source.length > MAX_FUNCTION_CHARS) return null;
  const callSeed = Math.floor(seededRng(seed, 'llm_rewrite', target.file, target.name, String(target.start_line))() * 2 ** 31);
  const answer = await llm.complete(rewritePrompt(target.file, target.name, found.source), { seed: callSeed, temperature: REWRITE_TEMPERATURE });
  const after = spliceAnswer(parser, file.text, target, answer, found);
  if (after === null) return null;
  return {
    strategy: 'llm_rewrite',
    kind: 'rewrite',
    functions: [target],
    edits: [{ path: target.file, before: file.text, after }],
    description: `llm_rewrite of ${target.file}:${target.name}`,
  };
}

export const llmRewriteStrategy: Strategy = {
  name: 'llm_rewrite',
  async *candidates({ repo, targets, seed, limit, llm }: StrategyInput): AsyncIterable<Candidate> {
    if (!llm || limit <= 0) return;
    const parser = await createPythonParser();
    const order = shuffled(targets, seededRng(seed, 'llm_rewrite', 'targets'));
    const files = new Map<string, FileSources>();
    let produced = 0;
    let attempts = 0;
    for (const target of order) {
      if (produced >= limit || attempts >= limit * ATTEMPTS_PER_CANDIDATE) return;
      attempts += 1;
      let candidate: Candidate | null;
      try {
        if (!files.has(target.file)) files.set(target.file, await readSources(parser, repo, target.file, targets));
        candidate = await rewriteOne(parser, files.get(target.file)!, llm, target, seed);
      } catch (err) {
        throw new Error(`llm_rewrite: the policy endpoint failed on ${target.file}:${target.name}: ${(err as Error)?.message ?? String(err)}`);
      }
      if (!candidate) continue;
      produced += 1;
      yield candidate;
    }
  },
};
