import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import yargs from 'yargs';
import { tasksFetchCommand } from '../../src/cli/tasks-fetch.js';
import { DatasetFetchError, fetchDataset, parseRetryAfter, type FetchDatasetOptions } from '../../src/tasks/fetch.js';
import { fetchHubFiles } from '../../src/tasks/fetch-hub.js';
import { loadInstances } from '../../src/tasks/load.js';
import { startStandIn, SWEBENCH_FEATURES, swebenchRows, swegymRecord, tempDir, type StandIn, type StandInOptions } from './helpers.js';

const TOKEN = 'hf_StandInSecret0123456789abcdefXYZ';
let server: StandIn | null = null;

afterEach(async () => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  await server?.close();
  server = null;
});

async function serve(options: Partial<StandInOptions> = {}): Promise<StandIn> {
  server = await startStandIn({ rows: swebenchRows(250), features: SWEBENCH_FEATURES, ...options });
  return server;
}

function fetchFrom(stand: StandIn, out: string, extra: Partial<FetchDatasetOptions> = {}) {
  return fetchDataset({
    dataset: 'princeton-nlp/SWE-bench_Lite',
    split: 'test',
    config: 'default',
    endpoint: stand.url,
    out,
    token: TOKEN,
    pageSize: 100,
    retryBaseMs: 1,
    ...extra,
  });
}

async function failureOf(promise: Promise<unknown>): Promise<DatasetFetchError> {
  const error = await promise.then(
    () => null,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(DatasetFetchError);
  const message = (error as Error).message;
  expect(message).not.toContain(TOKEN);
  expect(String((error as Error).stack)).not.toContain(TOKEN);
  return error as DatasetFetchError;
}

describe('fetching a dataset from the dataset viewer /rows API', () => {
  it('pages through 250 rows, retrying a 429 and a 503, and writes the rows as JSONL', async () => {
    const stand = await serve({
      intercept: (req, n) => {
        if (req.offset === 100 && n === 2) return { status: 429, headers: { 'retry-after': '0' }, body: '{"error":"rate limited"}' };
        if (req.offset === 200 && n === 4) return { status: 503, body: 'Service Unavailable' };
        return null;
      },
    });
    const out = path.join(tempDir(), 'nested/dir/lite.jsonl');
    const result = await fetchFrom(stand, out);

    expect(result).toEqual({ out, count: 250, dataset: 'princeton-nlp/SWE-bench_Lite', config: 'default', split: 'test' });
    expect(stand.requests.map((r) => [r.path, r.offset, r.length])).toEqual([
      ['/rows', 0, 100],
      ['/rows', 100, 100], // 429
      ['/rows', 100, 100],
      ['/rows', 200, 100], // 503
      ['/rows', 200, 100],
    ]);
    for (const r of stand.requests) {
      expect(r).toMatchObject({ dataset: 'princeton-nlp/SWE-bench_Lite', config: 'default', split: 'test', authorization: `Bearer ${TOKEN}` });
    }

    const lines = readFileSync(out, 'utf8').split('\n');
    expect(lines).toHaveLength(251);
    expect(lines[250]).toBe('');
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    // The dataset's own fields, in its column order, values untouched (FAIL_TO_PASS stays a JSON string).
    expect(Object.keys(first)).toEqual(SWEBENCH_FEATURES);
    expect(first).toEqual(swebenchRows(1)[0]);
    expect(typeof first.FAIL_TO_PASS).toBe('string');
    expect(readFileSync(out, 'utf8')).not.toContain(TOKEN);

    const instances = loadInstances(out);
    expect(instances).toHaveLength(250);
    expect(instances[1]!.instance_id).toBe('Project-MONAI__MONAI-3001');
    expect(instances[249]!.instance_id).toBe('Project-MONAI__MONAI-3249');
  });

  it('honours Retry-After and backs off when there is none', async () => {
    const stand = await serve({
      rows: swebenchRows(30),
      intercept: (_req, n) => {
        if (n === 1) return { status: 429, headers: { 'retry-after': '2' } };
        if (n === 2) return { status: 502 };
        if (n === 3) return { status: 500 };
        return null;
      },
    });
    const waits: number[] = [];
    const result = await fetchFrom(stand, path.join(tempDir(), 'x.jsonl'), { retryBaseMs: 100, sleep: async (ms) => void waits.push(ms) });
    expect(result.count).toBe(30);
    expect(waits).toEqual([2000, 200, 400]);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:30 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(30_000);
    expect(parseRetryAfter('soon')).toBeNull();
  });

  it('gives up after a few tries and leaves the old file as it was', async () => {
    const stand = await serve({ intercept: (req) => (req.offset === 100 ? { status: 503, body: '{"error":"overloaded"}' } : null) });
    const out = path.join(tempDir(), 'tasks.jsonl');
    writeFileSync(out, 'previous content\n');
    const error = await failureOf(fetchFrom(stand, out, { attempts: 3 }));
    expect(error.message).toMatch(/offset=100.*HTTP 503: overloaded \(after 3 tries\)/);
    expect(stand.requests.filter((r) => r.offset === 100)).toHaveLength(3);
    expect(readFileSync(out, 'utf8')).toBe('previous content\n');
  });

  it('fails on a truncated cell and writes nothing', async () => {
    const stand = await serve({ truncated: { 137: ['patch', 'test_patch'] } });
    const out = path.join(tempDir(), 'tasks.jsonl');
    const error = await failureOf(fetchFrom(stand, out));
    expect(error.message).toContain('row 137 (Project-MONAI__MONAI-3137): patch, test_patch: truncated by the dataset viewer');
    expect(error.problems).toHaveLength(1);
    expect(existsSync(out)).toBe(false);
  });

  it('names the row_idx, instance and field of a row that is not a valid instance', async () => {
    const rows = swebenchRows(250);
    rows[42] = { ...rows[42], FAIL_TO_PASS: 'test_one, test_two' };
    rows[201] = { ...rows[201], base_commit: undefined };
    const stand = await serve({ rows });
    const out = path.join(tempDir(), 'tasks.jsonl');
    const error = await failureOf(fetchFrom(stand, out));
    expect(error.problems).toEqual([
      expect.stringMatching(/^row 42 \(getmoto__moto-5042\): FAIL_TO_PASS: is a string that is not valid JSON/),
      'row 201 (Project-MONAI__MONAI-3201): base_commit: is required (expected string)',
    ]);
    expect(error.message).toMatch(/^princeton-nlp\/SWE-bench_Lite \(config default, split test\): 2 bad rows; nothing written:\n/);
    expect(existsSync(out)).toBe(false);
  });

  it('refuses duplicate instance ids across pages', async () => {
    const rows = swebenchRows(150);
    rows[120] = { ...rows[4] };
    const stand = await serve({ rows });
    const error = await failureOf(fetchFrom(stand, path.join(tempDir(), 'x.jsonl')));
    expect(error.problems).toEqual(['row 120 (getmoto__moto-5004): instance_id: duplicate of row 4']);
  });

  it('keeps the token out of every error, even when the server echoes it', async () => {
    const stand = await serve({
      intercept: (req) => ({ status: 401, body: JSON.stringify({ error: `Invalid credentials in ${req.authorization}` }) }),
    });
    const error = await failureOf(fetchFrom(stand, path.join(tempDir(), 'x.jsonl')));
    expect(stand.requests[0]!.authorization).toBe(`Bearer ${TOKEN}`);
    expect(error.message).toContain('HTTP 401: Invalid credentials in Bearer <HF_TOKEN>');
    expect(error.message).toContain('has no access to this dataset');
  });

  it('sends no Authorization header without a token, and explains a 404', async () => {
    const stand = await serve({ intercept: () => ({ status: 404, body: '{"error":"The dataset does not exist."}' }) });
    const error = await failureOf(fetchFrom(stand, path.join(tempDir(), 'x.jsonl'), { token: undefined }));
    expect(stand.requests).toHaveLength(1);
    expect(stand.requests[0]!.authorization).toBeNull();
    expect(error.message).toContain('HTTP 404: The dataset does not exist. (check the dataset name, --config and --split)');
  });

  it('asks for fewer rows per page when the server finds a page too big', async () => {
    const stand = await serve({
      intercept: (req) =>
        req.length > 30 ? { status: 501, headers: { 'x-error-code': 'TooBigContentError' }, body: '{"error":"Rows from parquet row groups are too big to be read"}' } : null,
    });
    const result = await fetchFrom(stand, path.join(tempDir(), 'x.jsonl'));
    expect(result.count).toBe(250);
    expect(stand.requests.slice(0, 4).map((r) => r.length)).toEqual([100, 50, 25, 25]);
    expect(new Set(stand.requests.slice(3).map((r) => r.length))).toEqual(new Set([25]));
  });

  it('never asks for more than 100 rows at once', async () => {
    const stand = await serve();
    await fetchFrom(stand, path.join(tempDir(), 'x.jsonl'), { pageSize: 500 });
    expect(stand.requests.map((r) => r.length)).toEqual([100, 100, 100]);
  });

  it('refuses a partial split', async () => {
    const stand = await serve({ partial: true });
    const error = await failureOf(fetchFrom(stand, path.join(tempDir(), 'x.jsonl')));
    expect(error.message).toContain('partial: true');
  });

  it('keeps SWE-Gym rows (real lists, no environment_setup_commit) as they are', async () => {
    const rows = Array.from({ length: 3 }, (_, i) => swegymRecord(`Project-MONAI__MONAI-${3040 + i}`));
    const features = ['instance_id', 'hints_text', 'patch', 'test_patch', 'created_at', 'problem_statement', 'repo', 'base_commit', 'version', 'PASS_TO_PASS', 'FAIL_TO_PASS'];
    const stand = await serve({ rows: rows.map((r) => ({ ...r, hints_text: '' })), features });
    const out = path.join(tempDir(), 'gym.jsonl');
    await fetchFrom(stand, out, { dataset: 'SWE-Gym/SWE-Gym-Lite', split: 'train' });
    const first = JSON.parse(readFileSync(out, 'utf8').split('\n')[0]!) as Record<string, unknown>;
    expect(Object.keys(first)).toEqual(features);
    expect(first.FAIL_TO_PASS).toEqual(['tests/test_to_numpy.py::TestToNumpy::test_single_value']);
    expect(loadInstances(out).map((i) => i.environment_setup_commit)).toEqual([null, null, null]);
  });

  it('will not send the token over plain http to another host', async () => {
    const fetchImpl = vi.fn<typeof fetch>();
    const error = await failureOf(
      fetchDataset({ dataset: 'SWE-Gym/SWE-Gym', endpoint: 'http://mirror.example.com', out: path.join(tempDir(), 'x.jsonl'), token: TOKEN, fetchImpl }),
    );
    expect(error.message).toContain('refusing to send HF_TOKEN over plain http to mirror.example.com');
    expect(fetchImpl).not.toHaveBeenCalled();
  });

  it('retries network errors and then reports them', async () => {
    const fetchImpl = vi.fn<typeof fetch>(async () => {
      throw new TypeError('fetch failed', { cause: new Error(`connect ECONNREFUSED (sent ${TOKEN})`) });
    });
    const error = await failureOf(
      fetchDataset({ dataset: 'SWE-Gym/SWE-Gym', out: path.join(tempDir(), 'x.jsonl'), token: TOKEN, fetchImpl, attempts: 3, sleep: async () => {} }),
    );
    expect(fetchImpl).toHaveBeenCalledTimes(3);
    expect(String(fetchImpl.mock.calls[0]![0])).toBe(
      'https://datasets-server.huggingface.co/rows?dataset=SWE-Gym%2FSWE-Gym&config=default&split=train&offset=0&length=100',
    );
    expect(error.message).toContain('fetch failed: connect ECONNREFUSED (sent <HF_TOKEN>) (after 3 tries)');
  });

  it('a host name that does not resolve is tried twice, not five times, and the message says what to check', async () => {
    const lookup = () => new TypeError('fetch failed', { cause: Object.assign(new Error('getaddrinfo ENOTFOUND datasets-server.huggingface.co'), { code: 'ENOTFOUND' }) });
    const rows = vi.fn<typeof fetch>(async () => {
      throw lookup();
    });
    const error = await failureOf(fetchDataset({ dataset: 'SWE-Gym/SWE-Gym', out: path.join(tempDir(), 'x.jsonl'), token: null, fetchImpl: rows, attempts: 5, sleep: async () => {} }));
    expect(rows).toHaveBeenCalledTimes(2);
    expect(error.message).toContain('getaddrinfo ENOTFOUND datasets-server.huggingface.co (after 2 tries); datasets-server.huggingface.co does not resolve: check the network');
    const files = vi.fn<typeof fetch>(async () => {
      throw lookup();
    });
    const hub = await failureOf(fetchHubFiles({ dataset: 'SWE-Gym/SWE-Gym', split: 'train', out: path.join(tempDir(), 'y.jsonl'), token: null, fetchImpl: files, attempts: 5, sleep: async () => {} }));
    expect(files).toHaveBeenCalledTimes(2);
    expect(hub.message).toMatch(/\(after 2 tries\); huggingface\.co does not resolve/);
  });
});

describe('rft tasks fetch (the command module)', () => {
  const parser = () =>
    yargs()
      .command(tasksFetchCommand)
      .strict()
      .exitProcess(false)
      .fail((message, error) => {
        throw error ?? new Error(message);
      });

  it('downloads with the default split and config and prints how many instances it wrote', async () => {
    const stand = await serve();
    vi.stubEnv('HF_TOKEN', TOKEN);
    const printed: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      printed.push(String(chunk));
      return true;
    });
    const out = path.join(tempDir(), 'gym.jsonl');
    await parser().parseAsync(['fetch', 'SWE-Gym/SWE-Gym-Lite', '--out', out, '--endpoint', stand.url]);
    expect(stand.requests[0]).toMatchObject({ dataset: 'SWE-Gym/SWE-Gym-Lite', config: 'default', split: 'train', authorization: `Bearer ${TOKEN}` });
    expect(printed.join('')).toBe(`wrote 250 instances of SWE-Gym/SWE-Gym-Lite (default/train) to ${out}\n`);
    expect(loadInstances(out)).toHaveLength(250);
  });

  it('requires --out', async () => {
    // yargs reports a missing option synchronously: wrap it so either way is a rejection.
    await expect((async () => parser().parseAsync(['fetch', 'SWE-Gym/SWE-Gym-Lite']))()).rejects.toThrow('Missing required argument: out');
  });
});
