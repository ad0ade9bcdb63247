import { z } from 'zod';
import { SpanSchema, type PythonSpanParser, type SpanDetail } from './python-spans.js';

/**
 * What the code index needs of one Python file, computed from its text alone (never its path), so
 * that it can be kept by the text's hash and reused by every snapshot holding the same file: its
 * spans, the search terms of each span's code, and its lines without whitespace (snippet search).
 */

export const SpanDetailSchema = SpanSchema.extend({ name: z.string(), parentId: z.string().nullable(), continuation: z.boolean() }).strict();

export const FileEntrySchema = z
  .object({
    format: z.literal(1),
    spans: z.array(SpanDetailSchema),
    /** Per span (same order), the search terms of its code as fieldTermsOf writes them. */
    terms: z.array(z.string()),
    /** Per line of the file, the line with its whitespace removed; joined by '\n'. */
    squeezed: z.string(),
  })
  .strict();
export type FileEntry = z.infer<typeof FileEntrySchema>;

/** The file's lines without line terminators; line n is `lines[n - 1]`. */
export function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/**
 * Identifier-aware tokens: `convert_temperature` → convert, temperature, convert_temperature;
 * `HTTPServerError` → http, server, error, httpservererror. Lower-cased; one-letter parts dropped.
 * A token never holds a space (it is made of [a-z0-9_]), so a list of them is kept joined by spaces.
 */
export function codeTokens(text: string): string[] {
  const tokens: string[] = [];
  for (const word of text.match(/[A-Za-z0-9_]+/g) ?? []) {
    const parts = (word.match(/[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+/g) ?? []).map((part) => part.toLowerCase());
    for (const part of parts) if (part.length > 1) tokens.push(part);
    const whole = word.replace(/^_+|_+$/g, '').toLowerCase();
    if (parts.length > 1 && whole.length > 1) tokens.push(whole);
  }
  return tokens;
}

const STOP_WORDS = new Set(
  'a an and are as at be by for from how in into is it its of on or that the this to was when where which with'.split(' '),
);

/** The ranker's term filter: lower-cased, stop words out. */
export function processTerm(term: string): string | null {
  const lower = term.toLowerCase();
  return STOP_WORDS.has(lower) ? null : lower;
}

/**
 * What the ranker (MiniSearch) keeps of one field of one document: its length (distinct tokens,
 * stop words included, as MiniSearch counts it) and each processed term with its count, in the
 * order the terms first occur.
 */
export interface FieldTerms {
  length: number;
  terms: Map<string, number>;
}

export function fieldTermsOf(tokens: readonly string[]): FieldTerms {
  const terms = new Map<string, number>();
  for (const token of tokens) {
    const term = processTerm(token);
    if (term) terms.set(term, (terms.get(term) ?? 0) + 1);
  }
  return { length: new Set(tokens).size, terms };
}

/**
 * FieldTerms as an entry keeps them: `<length> <term>[:<count>] …` (a count of 1 left out). A term
 * is made of [a-z0-9_], so neither the space nor the colon can occur in one.
 */
export function writeFieldTerms({ length, terms }: FieldTerms): string {
  let out = String(length);
  for (const [term, count] of terms) out += count === 1 ? ` ${term}` : ` ${term}:${count}`;
  return out;
}

export function readFieldTerms(text: string): FieldTerms {
  const parts = text.split(' ');
  const terms = new Map<string, number>();
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i]!;
    const colon = part.indexOf(':');
    if (colon < 0) terms.set(part, 1);
    else terms.set(part.slice(0, colon), Number(part.slice(colon + 1)));
  }
  return { length: Number(parts[0]), terms };
}

/** The entry of a Python file's text (a tree-sitter parse: the costly part of indexing). */
export function fileEntryOf(text: string, parser: PythonSpanParser): FileEntry {
  const spans = parser.parseDetailed(text);
  const lines = splitLines(text);
  return {
    format: 1,
    spans,
    terms: spans.map((span) => writeFieldTerms(fieldTermsOf(codeTokens(lines.slice(span.startLine - 1, span.endLine).join('\n'))))),
    squeezed: lines.map((line) => line.replace(/\s+/g, '')).join('\n'),
  };
}

/** The whitespace-free text of a file and where each of its rows starts in it, from an entry's `squeezed`. */
export function unsqueeze(squeezed: string, emptyFile: boolean): { text: string; rowStarts: number[] } {
  const parts = emptyFile ? [] : squeezed.split('\n');
  const rowStarts: number[] = [];
  let offset = 0;
  for (const part of parts) {
    rowStarts.push(offset);
    offset += part.length;
  }
  return { text: parts.join(''), rowStarts };
}

export type { SpanDetail };
