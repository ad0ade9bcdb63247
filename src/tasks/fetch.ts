import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { MAX_REPORTED_PROBLEMS, validateInstance } from './load.js';
import { writeInstanceFile } from './write.js';

/** The public Hugging Face dataset viewer API. */
export const DEFAULT_ENDPOINT = 'https://datasets-server.huggingface.co';
/** The most rows /rows returns at once. */
export const MAX_PAGE_LENGTH = 100;

export class DatasetFetchError extends Error {
  constructor(
    message: string,
    /** Per-row problems (row_idx, field, message), when the rows themselves were bad. */
    readonly problems: string[] = [],
  ) {
    super(message);
    this.name = 'DatasetFetchError';
  }
}

/** A page of GET /rows (https://huggingface.co/docs/dataset-viewer/rows). */
const RowsPageSchema = z.object({
  features: z.array(z.object({ name: z.string() })).default([]),
  rows: z.array(
    z.object({
      row_idx: z.number().int().min(0),
      row: z.record(z.string(), z.unknown()),
      truncated_cells: z.array(z.string()).default([]),
    }),
  ),
  num_rows_total: z.number().int().min(0),
  num_rows_per_page: z.number().int().optional(),
  partial: z.boolean().default(false),
});
type RowsPage = z.infer<typeof RowsPageSchema>;

export interface FetchDatasetOptions {
  /** e.g. SWE-Gym/SWE-Gym-Lite, princeton-nlp/SWE-bench_Verified */
  dataset: string;
  split?: string;
  config?: string;
  endpoint?: string;
  /** The JSONL file to write. */
  out: string;
  /** A Hugging Face token (the caller reads HF_TOKEN); sent as a Bearer token, never printed. */
  token?: string | null;
  /** Rows asked for per request (at most 100); halved automatically when the server finds a page too big. */
  pageSize?: number;
  fetchImpl?: typeof fetch;
  /** Tries per request on 429, 5xx, timeouts and network errors. */
  attempts?: number;
  /** First backoff when the server gives no Retry-After; doubles per try, at most 30 s. */
  retryBaseMs?: number;
  /** A Retry-After longer than this fails the fetch rather than waiting. */
  maxRetryAfterMs?: number;
  /** Limit of one request. */
  timeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
  onProgress?: (rowsRead: number, rowsTotal: number) => void;
}

export interface FetchDatasetResult {
  out: string;
  /** Instances written. */
  count: number;
  dataset: string;
  config: string;
  split: string;
}

/**
 * Downloads a split of a SWE-bench-format dataset through the dataset viewer's /rows API and
 * writes it as JSONL, one instance per line with the dataset's own fields (in the dataset's
 * column order, values untouched). Every row is checked as an instance; a bad row, a truncated
 * cell, a duplicate instance_id, a partial dataset or a failed page fails the whole fetch, and
 * the file is written (atomically) only when every row was read and is good.
 */
export async function fetchDataset(options: FetchDatasetOptions): Promise<FetchDatasetResult> {
  const {
    dataset,
    split = 'train',
    config = 'default',
    endpoint = DEFAULT_ENDPOINT,
    out,
    fetchImpl = globalThis.fetch,
    attempts = 5,
    retryBaseMs = 1000,
    maxRetryAfterMs = 300_000,
    timeoutMs = 120_000,
    sleep = (ms: number) => delay(ms),
    onProgress,
  } = options;
  const access = hubAccess(options.token);
  const { token, fail } = access;
  const what = `${dataset} (config ${config}, split ${split})`;

  if (dataset.trim() === '') fail('no dataset named');
  const base = hubBase(endpoint, 'rows', access);
  let length = Math.max(1, Math.min(Math.floor(options.pageSize ?? MAX_PAGE_LENGTH), MAX_PAGE_LENGTH));
  const headers: Record<string, string> = { accept: 'application/json', ...access.headers };

  /** GET one page, retrying what is worth retrying and shrinking a page the server finds too big. */
  const getPage = async (offset: number): Promise<RowsPage> => {
    for (let attempt = 1; ; attempt++) {
      const url = new URL(base);
      url.search = new URLSearchParams({ dataset, config, split, offset: String(offset), length: String(length) }).toString();
      const shown = `GET ${url.toString()}`;
      let status: number;
      let body: string;
      let retryAfter: string | null = null;
      let errorCode: string | null = null;
      try {
        const response = await fetchImpl(url, { headers, signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
        status = response.status;
        retryAfter = response.headers.get('retry-after');
        errorCode = response.headers.get('x-error-code');
        body = await response.text();
      } catch (err) {
        const reason = err instanceof Error && err.name === 'TimeoutError' ? `no answer in ${timeoutMs / 1000} s` : describeNetworkError(err);
        const tries = triesFor(err, attempts);
        if (attempt < tries) {
          await sleep(backoff(retryBaseMs, attempt));
          continue;
        }
        return fail(`${shown}: ${reason} (after ${tries} tries)${lookupHint(err, url.host)}`);
      }

      if (status >= 200 && status < 300) {
        let json: unknown;
        try {
          json = JSON.parse(body);
        } catch {
          return fail(`${shown}: the answer is not JSON (HTTP ${status}): ${clip(body)}`);
        }
        const page = RowsPageSchema.safeParse(json);
        if (!page.success) {
          const issue = page.error.issues[0]!;
          return fail(`${shown}: unexpected answer: ${issue.path.map(String).join('.') || '(top level)'}: ${issue.message}`);
        }
        return page.data;
      }

      const serverMessage = errorMessageOf(body);
      const tooBig = errorCode === 'TooBigContentError' || status === 501 || /too big/i.test(serverMessage);
      if (tooBig && length > 1) {
        length = Math.ceil(length / 2); // fewer rows per page; not a failed try
        attempt--;
        continue;
      }
      if ((status === 429 || status >= 500) && !tooBig && attempt < attempts) {
        const asked = parseRetryAfter(retryAfter);
        if (asked !== null && asked > maxRetryAfterMs) {
          return fail(`${shown}: HTTP ${status}; the server asks to retry after ${Math.round(asked / 1000)} s, longer than ${maxRetryAfterMs / 1000} s`);
        }
        await sleep(asked ?? backoff(retryBaseMs, attempt));
        continue;
      }
      const tries = status === 429 || status >= 500 ? ` (after ${attempt} tries)` : '';
      return fail(`${shown}: HTTP ${status}${serverMessage ? `: ${serverMessage}` : ''}${tries}${hintFor(status, token !== null)}`);
    }
  };

  const rows: Record<string, unknown>[] = [];
  const problems: string[] = [];
  const seen = new Map<string, number>();
  let keyOrder: string[] | null = null;
  let total: number | null = null;
  let offset = 0;
  while (total === null || offset < total) {
    const page = await getPage(offset);
    if (page.partial) {
      fail(`${what}: the dataset viewer has only part of this split (partial: true); fetching it would silently drop rows`);
    }
    if (total === null) {
      total = page.num_rows_total;
      if (total === 0) fail(`${what}: the split has no rows`);
      keyOrder = page.features.map((feature) => feature.name);
    } else if (page.num_rows_total !== total) {
      fail(`${what}: the number of rows changed from ${total} to ${page.num_rows_total} while fetching; try again`);
    }
    if (page.rows.length === 0) fail(`${what}: no rows returned at offset ${offset} of ${total}`);
    for (const [i, item] of page.rows.entries()) {
      const expected = offset + i;
      if (item.row_idx !== expected || expected >= total!) {
        fail(`${what}: expected row ${expected} of ${total}, the server sent row_idx ${item.row_idx}`);
      }
      const rowProblems = checkRow(item, seen);
      if (rowProblems.length > 0) {
        problems.push(...rowProblems);
        continue;
      }
      rows.push(ordered(item.row, keyOrder!));
    }
    offset += page.rows.length;
    onProgress?.(offset, total!);
    if (problems.length >= MAX_REPORTED_PROBLEMS) break;
  }

  if (problems.length > 0) {
    const shown = problems.slice(0, MAX_REPORTED_PROBLEMS);
    const stopped = offset < total! ? ` (stopped after ${offset} of ${total} rows)` : '';
    fail(`${what}: ${problems.length} bad row${problems.length === 1 ? '' : 's'}${stopped}; nothing written:\n${shown.join('\n')}`, problems);
  }
  writeInstanceFile(out, rows);
  return { out, count: rows.length, dataset, config, split };
}

function checkRow(item: RowsPage['rows'][number], seen: Map<string, number>): string[] {
  const checked = validateInstance(item.row);
  const where = `row ${item.row_idx}${checked.instance_id !== null ? ` (${checked.instance_id})` : ''}`;
  const problems: string[] = [];
  if (item.truncated_cells.length > 0) {
    problems.push(`${where}: ${item.truncated_cells.join(', ')}: truncated by the dataset viewer; the instance would be incomplete`);
  }
  for (const p of checked.problems) problems.push(`${where}: ${p.field ? `${p.field}: ` : ''}${p.message}`);
  const id = checked.instance_id;
  if (id !== null) {
    const first = seen.get(id);
    if (first !== undefined) problems.push(`${where}: instance_id: duplicate of row ${first}`);
    else seen.set(id, item.row_idx);
  }
  return problems;
}

/** The row's fields in the dataset's column order; any field the features do not list follows, sorted. */
function ordered(row: Record<string, unknown>, keyOrder: readonly string[]): Record<string, unknown> {
  const result = Object.create(null) as Record<string, unknown>; // a "__proto__" column stays a column
  for (const key of keyOrder) if (Object.hasOwn(row, key)) result[key] = row[key];
  for (const key of Object.keys(row).sort()) if (!Object.hasOwn(result, key)) result[key] = row[key];
  return result;
}

/** The token (null when none) and what goes with it, for both fetchers (the viewer's /rows and the hub's files). */
export interface HubAccess {
  token: string | null;
  /** Throws a DatasetFetchError; the token is cut out of the message and the problems. */
  fail: (message: string, problems?: string[]) => never;
  /** The authorization header when there is a token. */
  headers: Record<string, string>;
}

export function hubAccess(tokenOption: string | null | undefined): HubAccess {
  const token = tokenOption ? tokenOption : null;
  const redact = (text: string): string => (token === null ? text : text.split(token).join('<HF_TOKEN>'));
  const fail = (message: string, problems: string[] = []): never => {
    throw new DatasetFetchError(redact(message), problems.map(redact));
  };
  return { token, fail, headers: token === null ? {} : { authorization: `Bearer ${token}` } };
}

/** The endpoint with `suffix` appended, as a URL; a token is sent only over https or to this machine. */
export function hubBase(endpoint: string, suffix: string, { token, fail }: HubAccess): URL {
  let base: URL;
  try {
    base = new URL(`${endpoint.replace(/\/+$/, '')}/${suffix}`);
  } catch {
    return fail(`endpoint "${endpoint}" is not a URL`);
  }
  if (token !== null && base.protocol !== 'https:' && !isLoopback(base.hostname)) {
    fail(`refusing to send HF_TOKEN over plain http to ${base.host}; use https`);
  }
  return base;
}

/** getaddrinfo's codes for a host name that does not resolve (no network, no DNS, a typo in --endpoint). */
const LOOKUP_FAILURES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL']);

/** The request failed because the host name did not resolve: worth one more try, not five (17 s of waiting). */
export function isLookupFailure(err: unknown): boolean {
  for (let e: unknown = err; e instanceof Error; e = (e as Error & { cause?: unknown }).cause) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== undefined && LOOKUP_FAILURES.has(code)) return true;
  }
  return false;
}

/** Tries a network error earns: a lookup that cannot resolve gets one retry, anything else all `attempts`. */
export function triesFor(err: unknown, attempts: number): number {
  return isLookupFailure(err) ? Math.min(attempts, 2) : attempts;
}

/** What to do when the host does not resolve, after the error's own words. */
export function lookupHint(err: unknown, host: string): string {
  return isLookupFailure(err) ? `; ${host} does not resolve: check the network and DNS of this machine, or give a reachable server with --endpoint (or HF_ENDPOINT)` : '';
}

/** Exponential backoff from `baseMs` for the given (1-based) try, at most 30 s. */
export function backoff(baseMs: number, attempt: number): number {
  return Math.min(baseMs * 2 ** (attempt - 1), 30_000);
}

/** Retry-After in milliseconds: delay-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (value === null) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

function errorMessageOf(body: string): string {
  try {
    const json = JSON.parse(body) as unknown;
    if (typeof json === 'object' && json !== null && typeof (json as { error?: unknown }).error === 'string') {
      return clip((json as { error: string }).error);
    }
  } catch {
    // not JSON: show the start of it
  }
  return clip(body);
}

function hintFor(status: number, hasToken: boolean): string {
  if (status === 401 || status === 403) {
    return hasToken
      ? ' (the token in HF_TOKEN has no access to this dataset; gated datasets must be accepted on huggingface.co first)'
      : ' (set HF_TOKEN to a Hugging Face token if the dataset is private or gated)';
  }
  if (status === 404) return ' (check the dataset name, --config and --split)';
  return '';
}

function describeNetworkError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as Error & { cause?: unknown }).cause;
  const detail = cause instanceof Error ? `: ${cause.message}` : '';
  return `${err.message}${detail}`;
}

function clip(text: string): string {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > 300 ? `${oneLine.slice(0, 297)}...` : oneLine;
}

function isLoopback(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || hostname === '::1' || /^127\./.test(hostname);
}
