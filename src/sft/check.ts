import { closeSync, openSync, readSync } from 'node:fs';
import { ALL_BACKENDS, canonicalOf, withObjectArguments, invalidReplies, POLICIES, policyMessages, readAs, shapeLine, trainerSettings, type LineMessage, type Reading, type SftBackend, type TrainOn } from './backends.js';
import type { ExampleTokenizer, LineTokens, TokenizerInfo } from './tokenizer.js';

/**
 * `rft sft check`: what each trainer will train on, given a train.jsonl, the model's tokenizer
 * and a maximum length. For every line: its tokens under the tokenizer (chat template applied),
 * then, per backend and policy, which messages carry loss as that trainer reads the line shaped
 * for it (src/sft/backends.ts), whether it would be skipped or truncated. Separately, the file as
 * written is read by each requested backend with the settings of the policy it was written for:
 * lines that backend would skip, truncate or reject (OpenAI's format rules) are errors with their
 * line numbers, and so is an invalid reply (an assistant message answered by a retry prompt) that
 * would carry loss. Pure apart from reading the file line by line.
 */

export interface CheckOptions {
  tokenizer: ExampleTokenizer;
  /** Backends whose reading of the file as written is checked (errors); every backend gets a row. */
  backends: readonly SftBackend[];
  /** The trainers' maximum length (the recipe's sft.max_tokens). */
  max_length: number;
  /** The policy the file was written for (its manifest's train_on). */
  train_on: TrainOn;
  /** Invalid replies left out of the lines when they were written (the manifest's count), when known. */
  invalid_left_out?: number | null;
  /**
   * The lines' token counts as the emit made them (src/sft/line-counts.ts), one per line of the
   * file, under `tokenizer`: used instead of counting. Only for the very file they were made for.
   */
  counts?: readonly LineTokens[] | null;
}

export interface CheckRow {
  backend: SftBackend;
  train_on: TrainOn;
  examples: number;
  skipped: number;
  truncated: number;
  /** Tokens carrying loss over the lines read whole (neither skipped nor truncated). */
  trained_tokens: number;
  /** All tokens of those lines. */
  total_tokens: number;
  /** Invalid replies that would carry loss in the lines read (0 when rft shaped them). */
  invalid_trained: number;
}

export interface CheckProblem {
  line: number;
  backend: SftBackend | null;
  message: string;
}

export interface CheckReport {
  tokenizer: TokenizerInfo;
  lines: number;
  max_length: number;
  train_on: TrainOn;
  /** Invalid replies in the file: assistant messages answered by a retry prompt. */
  invalid_replies: number;
  /** Invalid replies left out of the lines when written (manifest), null when unknown. */
  invalid_left_out: number | null;
  /** Every backend × policy, the data shaped for it. */
  rows: CheckRow[];
  /** The file as written, per requested backend. */
  as_written: Array<{ backend: SftBackend; examples: number; trained_tokens: number; skipped: number; truncated: number; invalid_trained: number }>;
  errors: CheckProblem[];
  lengths: { min: number | null; max: number | null; over_max_length: number };
  /** Where the token counts come from: the emit's (train.counts.json) or counted here. */
  counts_from: 'emit' | 'counted';
}

/** The OpenAI fine-tuning chat format rules for one record (the cookbook's checks plus weight/tool rules). */
export function openAiFormatErrors(record: Record<string, unknown>): string[] {
  const errors: string[] = [];
  const extra = Object.keys(record).filter((k) => k !== 'messages' && k !== 'tools');
  if (extra.length > 0) errors.push(`unknown top-level keys: ${extra.join(', ')}`);
  if (!Array.isArray(record.messages) || record.messages.length === 0) return [...errors, 'messages must be a non-empty list'];
  let assistants = 0;
  (record.messages as unknown[]).forEach((raw, i) => {
    const m = raw as Record<string, unknown>;
    const at = `messages[${i}]`;
    if (typeof m !== 'object' || m === null) return void errors.push(`${at} is not an object`);
    if (!['system', 'user', 'assistant', 'tool'].includes(m.role as string)) errors.push(`${at}.role ${JSON.stringify(m.role)} is not system, user, assistant or tool`);
    const keys = Object.keys(m).filter((k) => !['role', 'content', 'name', 'weight', 'tool_calls', 'tool_call_id'].includes(k));
    if (keys.length > 0) errors.push(`${at} has unknown keys: ${keys.join(', ')}`);
    if (typeof m.content !== 'string') errors.push(`${at}.content must be a string`);
    if (m.weight !== undefined && (m.role !== 'assistant' || (m.weight !== 0 && m.weight !== 1))) errors.push(`${at}.weight must be 0 or 1, on assistant messages only`);
    if (m.role === 'assistant') assistants += 1;
    if (m.tool_calls !== undefined) {
      if (m.role !== 'assistant' || !Array.isArray(m.tool_calls)) errors.push(`${at}.tool_calls must be a list on an assistant message`);
      else
        (m.tool_calls as Array<{ function?: { arguments?: unknown } }>).forEach((c, j) => {
          if (typeof c?.function?.arguments !== 'string') errors.push(`${at}.tool_calls[${j}].function.arguments must be a JSON string for OpenAI`);
        });
    }
    if (m.role === 'tool' && typeof m.tool_call_id !== 'string') errors.push(`${at} (tool) needs a tool_call_id`);
  });
  if (assistants === 0) errors.push('no assistant message');
  return errors;
}

/**
 * Reads a file's lines one at a time (memory: one chunk and one line). Lines are cut in the bytes
 * and each decoded alone: a chunk is never decoded whole and re-split as one string.
 */
export function* readLines(file: string): Generator<string> {
  const fd = openSync(file, 'r');
  const buffer = Buffer.alloc(1 << 22);
  let rest: Buffer[] = [];
  try {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      let from = 0;
      for (let nl = buffer.indexOf(10, from); nl !== -1 && nl < n; nl = buffer.indexOf(10, from)) {
        const piece = buffer.subarray(from, nl);
        yield rest.length === 0 ? piece.toString('utf8') : Buffer.concat([...rest, piece]).toString('utf8');
        rest = [];
        from = nl + 1;
      }
      // The line not ended in this chunk: copied, as the buffer is read into again.
      if (from < n) rest.push(Buffer.from(buffer.subarray(from, n)));
    }
    if (rest.length > 0) yield Buffer.concat(rest).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

const MAX_ERRORS_PER_BACKEND = 50;

export function checkLines(lines: Iterable<string>, options: CheckOptions): CheckReport {
  const rows = new Map<string, CheckRow>();
  for (const backend of ALL_BACKENDS) for (const train_on of POLICIES) rows.set(`${backend}/${train_on}`, { backend, train_on, examples: 0, skipped: 0, truncated: 0, trained_tokens: 0, total_tokens: 0, invalid_trained: 0 });
  const asWritten = new Map(options.backends.map((b) => [b, { backend: b, examples: 0, trained_tokens: 0, skipped: 0, truncated: 0, invalid_trained: 0 }]));
  const errors: CheckProblem[] = [];
  const errorCount = new Map<string, number>();
  const report = (problem: CheckProblem) => {
    const key = problem.backend ?? '';
    const n = (errorCount.get(key) ?? 0) + 1;
    errorCount.set(key, n);
    if (n <= MAX_ERRORS_PER_BACKEND) errors.push(problem);
  };
  let count = 0;
  let min: number | null = null;
  let max: number | null = null;
  let over = 0;
  let invalidCount = 0;

  let lineNo = 0;
  for (const text of lines) {
    lineNo += 1;
    if (text.trim() === '') continue;
    count += 1;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(text) as Record<string, unknown>;
    } catch (err) {
      report({ line: lineNo, backend: null, message: `not JSON: ${(err as Error).message}` });
      continue;
    }
    const found = typeof record === 'object' && record !== null ? canonicalOf(record) : null;
    if (!found) {
      report({ line: lineNo, backend: null, message: 'neither {"messages": [...]} nor {"prompt": [...], "completion": [...]}' });
      continue;
    }
    const messages = found.line.messages;
    if (!messages.every((m) => m && typeof m === 'object' && typeof m.role === 'string' && typeof m.content === 'string')) {
      report({ line: lineNo, backend: null, message: 'every message needs a string role and a string content' });
      continue;
    }
    const tools = found.line.tools;
    invalidCount += invalidReplies(messages).length;
    // Tokens of the line as a Hugging Face template renders it: arguments as objects, as the HF shapes carry them.
    const given = options.counts?.[lineNo - 1];
    const counted = given && given.spans.length === messages.length ? given : options.tokenizer.count(withObjectArguments(messages), tools);
    min = min === null ? counted.total : Math.min(min, counted.total);
    max = max === null ? counted.total : Math.max(max, counted.total);
    const truncated = counted.total > options.max_length;
    if (truncated) over += 1;

    for (const row of rows.values()) {
      const shaped = shapeLine(found.line, row.backend, row.train_on);
      const reading = readAs(shaped, trainerSettings(row.backend, row.train_on));
      if (reading.skipped !== null) {
        row.skipped += 1;
        continue;
      }
      row.examples += 1;
      row.invalid_trained += invalidTrained(shaped, reading).length;
      if (truncated) {
        row.truncated += 1;
        continue;
      }
      row.total_tokens += counted.total;
      row.trained_tokens += reading.trained === 'all' ? counted.total : reading.trained.reduce((sum, i) => sum + counted.spans[i]!, 0);
    }

    for (const stats of asWritten.values()) {
      const backend = stats.backend;
      if (backend === 'openai') for (const message of openAiFormatErrors(record)) report({ line: lineNo, backend, message });
      const reading = readAs(record, trainerSettings(backend, options.train_on));
      if (reading.skipped !== null) {
        stats.skipped += 1;
        report({ line: lineNo, backend, message: `skipped: ${reading.skipped}` });
        continue;
      }
      stats.examples += 1;
      const wrong = invalidTrained(record, reading);
      stats.invalid_trained += wrong.length;
      if (wrong.length > 0) report({ line: lineNo, backend, message: `trains the invalid replies at messages ${wrong.join(',')}` });
      if (truncated) {
        stats.truncated += 1;
        report({ line: lineNo, backend, message: `${counted.total} tokens > max length ${options.max_length}: the trainer cuts the end, the training target` });
        continue;
      }
      if (reading.trained === 'all') report({ line: lineNo, backend, message: 'the whole sequence would carry loss, prompts included' });
      const trained = reading.trained === 'all' ? counted.total : reading.trained.reduce((sum, i) => sum + counted.spans[i]!, 0);
      stats.trained_tokens += trained;
      const expected = policyMessages(messages, options.train_on);
      if (reading.trained !== 'all' && !sameList(reading.trained, expected)) {
        report({ line: lineNo, backend, message: `trains messages ${reading.trained.join(',') || 'none'}, train_on ${options.train_on} means ${expected.join(',')}` });
      }
    }
  }
  for (const [key, n] of errorCount) {
    if (n > MAX_ERRORS_PER_BACKEND) errors.push({ line: 0, backend: (key || null) as SftBackend | null, message: `${n - MAX_ERRORS_PER_BACKEND} more problems not listed` });
  }
  return {
    tokenizer: options.tokenizer.info,
    lines: count,
    max_length: options.max_length,
    train_on: options.train_on,
    invalid_replies: invalidCount,
    invalid_left_out: options.invalid_left_out ?? null,
    rows: [...rows.values()],
    as_written: [...asWritten.values()],
    errors,
    lengths: { min, max, over_max_length: over },
    counts_from: options.counts ? 'emit' : 'counted',
  };
}

export function checkFile(file: string, options: CheckOptions): CheckReport {
  return checkLines(readLines(file), options);
}

/** The invalid replies of a record that its reading puts loss on. */
function invalidTrained(record: Record<string, unknown>, reading: Reading): number[] {
  const found = canonicalOf(record);
  if (!found || reading.skipped !== null) return [];
  const invalid = invalidReplies(found.line.messages);
  return reading.trained === 'all' ? invalid : invalid.filter((i) => (reading.trained as number[]).includes(i));
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The report as a table (one row per backend and policy) and the problems of the file as written. */
export function formatCheckReport(report: CheckReport, file: string): string {
  const out: string[] = [];
  const t = report.tokenizer;
  out.push(`${file}: ${report.lines} lines; tokenizer ${t.name} (${t.kind}${t.kind === 'huggingface' ? `, chat template ${t.generation_markers ? 'marks' : 'does not mark'} assistant spans with {% generation %}` : ''})`);
  if (report.counts_from === 'emit') out.push('token counts: the emit\'s (train.counts.json, made for this very file and tokenizer), not counted again');
  out.push(`max length ${report.max_length}; example length ${report.lengths.min ?? '-'}..${report.lengths.max ?? '-'} tokens, ${report.lengths.over_max_length} over the max length; written for train_on ${report.train_on}`);
  out.push('');
  const header = ['backend', 'train_on', 'examples', 'skipped', 'truncated', 'trained tokens', 'all tokens', 'invalid trained'];
  const rows = report.rows.map((r) => [r.backend, r.train_on, r.examples, r.skipped, r.truncated, r.trained_tokens, r.total_tokens, r.invalid_trained].map(String));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  out.push(fmt(header));
  for (const r of rows) out.push(fmt(r));
  out.push('');
  const invalidTrainedMost = Math.max(0, ...report.as_written.map((w) => w.invalid_trained));
  const leftOut = report.invalid_left_out ? `; ${report.invalid_left_out} more left out of the lines when written (manifest.json), with their retry prompts` : '';
  out.push(`invalid replies (each answered by a retry prompt): ${report.invalid_replies}, not trained: ${report.invalid_replies - invalidTrainedMost}${leftOut}`);
  for (const w of report.as_written) {
    out.push(`as written, read by ${w.backend}: ${w.examples} examples, ${w.trained_tokens} trained tokens, ${w.skipped} skipped, ${w.truncated} truncated, ${w.invalid_trained} invalid replies trained`);
  }
  if (report.errors.length === 0) out.push('no problems found');
  else {
    out.push(`${report.errors.length} problem(s):`);
    for (const e of report.errors) out.push(`  ${e.line > 0 ? `${file}:${e.line}` : file}${e.backend ? ` [${e.backend}]` : ''}: ${e.message}`);
  }
  return `${out.join('\n')}\n`;
}
