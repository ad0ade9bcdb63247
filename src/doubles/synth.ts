import { createHash } from 'node:crypto';
import { ISSUE_HEADER, observedError } from '../synth/issue-text.js';
import { REWRITE_HEADER, fencedCode } from '../synth/strategies/llm-rewrite.js';
import { mulberry32 } from '../util/prng.js';

/**
 * The SIMULATED policy's answers to task synthesis's two prompts (a test double, design §9):
 * "reintroduce a bug" gets the function back with one small textual mutation drawn from the
 * request's seed and text (or unchanged when none applies, as a model that fails the task would);
 * "write an issue" gets a short report built from the failing tests' errors. Recognised by the
 * system prompt's first line; the same request always gets the same answer.
 */

export type SynthStep = 'rewrite' | 'issue';

export interface SynthMessage {
  role: string;
  content?: unknown;
}

const text = (m: SynthMessage | undefined) => (typeof m?.content === 'string' ? m.content : '');

/** Which synthesis prompt this is, or null when it is none (then the workflow policy answers). */
export function synthStep(messages: readonly SynthMessage[]): SynthStep | null {
  const system = text(messages.find((m) => m.role === 'system'));
  if (system.startsWith(REWRITE_HEADER)) return 'rewrite';
  if (system.startsWith(ISSUE_HEADER)) return 'issue';
  return null;
}

/** Textual mutations a careless edit makes, each applied at its first match in the body. */
const MUTATIONS: ReadonlyArray<[RegExp, string]> = [
  [/ < /, ' <= '],
  [/ > /, ' >= '],
  [/ == /, ' != '],
  [/ != /, ' == '],
  [/ \+ /, ' - '],
  [/ - /, ' + '],
  [/ and /, ' or '],
  [/ or /, ' and '],
  [/\bTrue\b/, 'False'],
  [/\bFalse\b/, 'True'],
  [/\bif not /, 'if '],
  [/ is not None\b/, ' is None'],
  [/ is None\b/, ' is not None'],
  [/ not in /, ' in '],
  [/\[0\]/, '[-1]'],
  [/\[-1\]/, '[0]'],
  [/\b1\b/, '2'],
  [/\b0\b/, '1'],
];

function rngFor(seed: number, messages: readonly SynthMessage[]): () => number {
  const digest = createHash('sha256').update(JSON.stringify([seed, messages.map((m) => [m.role, text(m)])])).digest();
  return mulberry32(digest.readUInt32BE(0));
}

/** The function with one mutation in its body (the `def` line is left alone, so the signature stays). */
export function mutateFunctionText(source: string, rng: () => number): string {
  const newline = source.indexOf('\n');
  if (newline < 0) return source;
  const head = source.slice(0, newline + 1);
  const body = source.slice(newline + 1);
  const applicable = MUTATIONS.filter(([pattern]) => pattern.test(body));
  if (applicable.length === 0) return source;
  const [pattern, replacement] = applicable[Math.floor(rng() * applicable.length)]!;
  return head + body.replace(pattern, replacement);
}

function answerRewrite(messages: readonly SynthMessage[], rng: () => number): string {
  const user = text([...messages].reverse().find((m) => m.role === 'user'));
  const source = fencedCode(user);
  if (source === null) return 'I cannot find the function in your message.';
  return `\`\`\`python\n${mutateFunctionText(source, rng)}\n\`\`\`\n`;
}

function answerIssue(messages: readonly SynthMessage[]): string {
  const user = text([...messages].reverse().find((m) => m.role === 'user'));
  const repo = /^Repository: (.+)$/m.exec(user)?.[1] ?? 'the project';
  const tests = [...user.matchAll(/<test id="([^"]+)">\n([\s\S]*?)\n<\/test>/g)].map((m) => ({ id: m[1]!, error: observedError(m[2]!) }));
  const first = tests[0];
  const title = first ? `Unexpected ${first.error.split(':')[0]} in ${repo}` : `Something broke in ${repo}`;
  const lines = tests.map((t) => `- ${t.id.split('::').at(-1)}: ${t.error}`);
  return [title, '', `After updating ${repo}, code that used to work now fails. What I see:`, '', ...lines, '', 'I expected this to keep working as before.'].join('\n');
}

/** The answer to a synthesis prompt, or null when the messages are not one. */
export function answerSynth(messages: readonly SynthMessage[], seed: number): { step: SynthStep; content: string } | null {
  const step = synthStep(messages);
  if (step === null) return null;
  const rng = rngFor(seed, messages);
  return { step, content: step === 'rewrite' ? answerRewrite(messages, rng) : answerIssue(messages) };
}
