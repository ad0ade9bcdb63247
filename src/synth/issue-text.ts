import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Candidate } from './candidate.js';
import type { ChatEndpoint, ChatMessage } from './strategy.js';

/**
 * The issue text of a synthesized task (design §13): written by the LLM from what a user would
 * see (the failing tests and their output), never from the fix — the prompt holds neither the gold
 * patch nor the bug's diff, and a text that still quotes a line of the gold patch (it could, e.g.
 * by guessing the fix) is replaced by the template. Without an endpoint the template is the text.
 */

export const ISSUE_HEADER = 'Synthesis step: write an issue';

export const IssueTextSourceSchema = z.enum([
  /** Written by the endpoint. */
  'llm',
  /** No endpoint was given. */
  'template',
  /** The endpoint's text quoted a line of the gold patch. */
  'template_after_leak',
  /** The endpoint failed or answered nothing usable. */
  'template_after_error',
]);
export type IssueTextSource = z.infer<typeof IssueTextSourceSchema>;

export const IssueTextSchema = z.object({
  text: z.string().min(1),
  source: IssueTextSourceSchema,
  /** Why the template was used after an endpoint was tried (the leaked line is not repeated here). */
  detail: z.string().optional(),
});
export type IssueText = z.infer<typeof IssueTextSchema>;

export interface FailingTest {
  id: string;
  /** The test's output in the run after the bug (log excerpt). */
  output: string;
}

export interface IssueTextInput {
  candidate: Candidate;
  failing: readonly FailingTest[];
  /** The unified diff that fixes the bug (the inverse of the candidate). Only ever used for the leak check. */
  goldPatch: string;
  /** The repository's name as users know it (`django/django`). */
  repo: string;
  llm?: ChatEndpoint;
  /** Seeds the endpoint's sampling (default: drawn from the candidate), so the same bug gets the same text. */
  seed?: number;
}

/** At most this many failing tests are described, and this much of each one's output shown. */
const MAX_TESTS = 5;
const MAX_OUTPUT_LINES = 30;
const MAX_OUTPUT_CHARS = 3000;
/** A gold-patch line shorter than this (whitespace removed) is too common to count as quoted (`else:`, `return x`). */
export const MIN_QUOTED_CHARS = 10;
export const ISSUE_TEMPERATURE = 0.7;

const squeeze = (text: string) => text.replace(/\s+/g, '');

/** The gold patch's non-trivial changed lines, whitespace removed (both sides: the fix and what it replaces). */
export function patchLines(patch: string): string[] {
  const lines = new Set<string>();
  for (const line of patch.split('\n')) {
    if (line.startsWith('+++') || line.startsWith('---')) continue;
    if (line[0] !== '+' && line[0] !== '-') continue;
    const body = squeeze(line.slice(1));
    if (body.length >= MIN_QUOTED_CHARS && !body.startsWith('#')) lines.add(body);
  }
  return [...lines];
}

/** True when the text quotes a non-trivial line of the patch, whitespace aside. */
export function quotesPatch(text: string, patch: string): boolean {
  const flat = squeeze(text);
  return patchLines(patch).some((line) => flat.includes(line));
}

const EXCEPTION = /^[A-Za-z_][\w.]*(Error|Exception|Failure|Exit)\b(:.*)?$/;

/**
 * The error a test ended with: pytest's explanation (the first `E` line of the last `E` block,
 * named by the exception of its `path:line: Error` line), else the last exception line of a
 * traceback, else the last line.
 */
export function observedError(output: string): string {
  const lines = output.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim() !== '');
  const lastE = lines.findLastIndex((l) => /^E\s/.test(l));
  if (lastE >= 0) {
    let first = lastE;
    while (first > 0 && /^E\s/.test(lines[first - 1]!)) first -= 1;
    const explanation = lines[first]!.replace(/^E\s+/, '').trim();
    const named = lines.slice(lastE + 1).map((l) => /^\S+:\d+: ([A-Za-z_][\w.]*)$/.exec(l.trim())?.[1]).find(Boolean);
    const text = named && !EXCEPTION.test(explanation) ? `${named}: ${explanation}` : explanation;
    return text.slice(0, 300);
  }
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.trim();
    if (EXCEPTION.test(line)) return line.slice(0, 300);
  }
  return (lines.at(-1)?.trim() ?? 'the test failed').slice(0, 300);
}

/** The tail of a test's output, bounded. */
function tail(output: string): string {
  const lines = output.replace(/\s+$/, '').split('\n').slice(-MAX_OUTPUT_LINES).join('\n');
  return lines.length > MAX_OUTPUT_CHARS ? lines.slice(-MAX_OUTPUT_CHARS) : lines;
}

/** The prompt: the repository, the failing tests and their output. Never the patch, the diff or where the bug is. */
export function issuePrompt(repo: string, failing: readonly FailingTest[]): ChatMessage[] {
  const tests = failing
    .slice(0, MAX_TESTS)
    .map((t) => `<test id="${t.id}">\n${tail(t.output)}\n</test>`)
    .join('\n');
  const more = failing.length > MAX_TESTS ? `\n(and ${failing.length - MAX_TESTS} more failing tests)` : '';
  return [
    {
      role: 'system',
      content: `${ISSUE_HEADER}
You write GitHub issues as a user of a Python project would. You are shown tests of the project that
now fail and their output. Write the issue a user would file after running into this behaviour:
a short title on the first line, then what they did, what they expected and what happened instead
(quote the error). Describe the symptom only: do not guess at the cause, do not propose a fix, do
not mention the tests by their file names unless a user would. Plain text or Markdown, no preamble.`,
    },
    { role: 'user', content: `Repository: ${repo}\nFailing tests: ${failing.length}\n\n${tests}${more}` },
  ];
}

/** The fallback: a plain bug report naming the failing tests and the observed errors; output lines that quote the gold patch are left out. */
export function templateIssue(repo: string, failing: readonly FailingTest[], goldPatch: string): string {
  const patch = patchLines(goldPatch);
  const clean = (line: string) => !patch.some((p) => squeeze(line).includes(p));
  const first = failing[0];
  const error = first ? observedError(first.output) : 'tests fail';
  const title = first ? `${first.id} fails with ${clean(error) ? error : 'an error'}` : `Tests fail in ${repo}`;
  const list = failing
    .slice(0, MAX_TESTS)
    .map((t) => {
      const e = observedError(t.output);
      return `- \`${t.id}\`${clean(e) ? `: ${e}` : ''}`;
    })
    .join('\n');
  const more = failing.length > MAX_TESTS ? `\n- …and ${failing.length - MAX_TESTS} more` : '';
  const excerpt = first ? tail(first.output).split('\n').filter(clean).join('\n') : '';
  return [
    title,
    '',
    `Running the test suite of ${repo} at the current code, ${failing.length === 1 ? 'this test fails' : `these ${failing.length} tests fail`}:`,
    '',
    list + more,
    '',
    ...(excerpt.trim() !== '' ? ['Output of the first one:', '', '```', excerpt, '```', ''] : []),
    'They are expected to pass.',
  ].join('\n');
}

export async function writeIssueText(input: IssueTextInput): Promise<IssueText> {
  const template = () => templateIssue(input.repo, input.failing, input.goldPatch);
  if (!input.llm) return { text: template(), source: 'template' };
  let answer: string;
  try {
    const seed = input.seed ?? createHash('sha256').update(JSON.stringify(input.candidate.edits)).digest().readUInt32BE(0) >>> 1;
    answer = (await input.llm.complete(issuePrompt(input.repo, input.failing), { seed, temperature: ISSUE_TEMPERATURE })).trim();
  } catch (err) {
    return { text: template(), source: 'template_after_error', detail: `the endpoint failed: ${(err as Error)?.message ?? String(err)}` };
  }
  if (answer === '') return { text: template(), source: 'template_after_error', detail: 'the endpoint answered nothing' };
  if (quotesPatch(answer, input.goldPatch)) return { text: template(), source: 'template_after_leak', detail: 'the written text quoted a line of the gold patch' };
  return { text: answer, source: 'llm' };
}

/** A section header of a test runner's failure report: pytest's `____ name ____`, unittest/Django's `FAIL: name`, `ERROR: name`. */
const SECTION = /^(_{3,} .* _{3,}|(FAIL|ERROR): .*)$/;
/** Where a failure section ends: the next header or a rule of `=`/`_`. */
const SECTION_END = /^(_{5,}|={5,})/;

/** Names a runner may print for a test id: the id, its last `::` part (pytest, sympy), the method of a Django id `name (module.Class)`. */
function namesOf(id: string): string[] {
  const last = id.split('::').at(-1)!;
  return [...new Set([id, last, last.replace(/ \(.*\)$/, ''), id.split(':').at(-1)!])].filter((n) => n.length > 0);
}

/** The failure section a runner printed for one test in a whole-run log, or '' when it printed none. */
export function outputFor(id: string, log: string): string {
  const lines = log.split('\n');
  // The name as a whole word (`test_a` must not find `test_a_2`'s section); pytest may print `Class.test_a`.
  const patterns = namesOf(id).map((n) => new RegExp(`(^|[\\s:.])${n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\s|$)`));
  const header = lines.findIndex((l) => SECTION.test(l.trim()) && patterns.some((p) => p.test(l.trim())));
  if (header < 0) return '';
  let end = header + 1;
  // unittest's header is followed by a `-----` rule before the traceback.
  if (/^-{5,}$/.test(lines[end]?.trim() ?? '')) end += 1;
  const start = end;
  while (end < lines.length && !SECTION_END.test(lines[end]!.trim()) && !SECTION.test(lines[end]!.trim())) end += 1;
  return lines.slice(start, end).join('\n').trim();
}

/**
 * Per-test output from the log of a whole test run (what the pipeline holds): each failing test's
 * section of the failure report, and when the runner printed none at all, the log's tail for the
 * first test, so the issue still shows what happened.
 */
export function failingFromLog(ids: readonly string[], log: string): FailingTest[] {
  const failing = ids.map((id) => ({ id, output: outputFor(id, log) }));
  if (failing.length > 0 && failing.every((t) => t.output === '')) failing[0]!.output = tail(log);
  return failing;
}
