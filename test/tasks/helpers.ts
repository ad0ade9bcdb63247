import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'rft-tasks-'));
}

export function writeFile(dir: string, name: string, text: string): string {
  const file = path.join(dir, name);
  writeFileSync(file, text);
  return file;
}

/** A record as SWE-bench publishes it: FAIL_TO_PASS / PASS_TO_PASS are JSON-encoded strings. */
export function swebenchRecord(id = 'django__django-11099', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    repo: 'django/django',
    instance_id: id,
    base_commit: 'd26b2424437dabeeca94d7900b37d2df4410da0c',
    patch: 'diff --git a/django/contrib/auth/validators.py b/django/contrib/auth/validators.py\n',
    test_patch: 'diff --git a/tests/auth_tests/test_validators.py b/tests/auth_tests/test_validators.py\n',
    problem_statement: 'UsernameValidator allows trailing newline in usernames',
    hints_text: '',
    created_at: '2019-03-20T03:46:18Z',
    version: '3.0',
    FAIL_TO_PASS: JSON.stringify(['test_ascii_validator (auth_tests.test_validators.UsernameValidatorsTests)']),
    PASS_TO_PASS: JSON.stringify(['test_help_text (auth_tests.test_validators.MinimumLengthValidatorTest)', 'test_validate (auth_tests.test_validators.MinimumLengthValidatorTest)']),
    environment_setup_commit: '419a78300f7cd27611196e1e464d50fd0385ff27',
    ...extra,
  };
}

/** A record as SWE-Gym publishes it: real lists, no environment_setup_commit, no hints_text. */
export function swegymRecord(id = 'Project-MONAI__MONAI-3042', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    instance_id: id,
    repo: 'Project-MONAI/MONAI',
    base_commit: 'e0db5a564225a7cb62e7a23df97267019006302f',
    patch: 'diff --git a/monai/transforms/utility/array.py b/monai/transforms/utility/array.py\n',
    test_patch: 'diff --git a/tests/test_to_numpy.py b/tests/test_to_numpy.py\n',
    problem_statement: 'ToNumpy changes the input',
    created_at: '2021-09-24T09:25:41Z',
    version: '0.7',
    FAIL_TO_PASS: ['tests/test_to_numpy.py::TestToNumpy::test_single_value'],
    PASS_TO_PASS: ['tests/test_to_numpy.py::TestToNumpy::test_list_tuple', 'tests/test_to_numpy.py::TestToNumpy::test_numpy_input'],
    ...extra,
  };
}

export function jsonl(records: unknown[]): string {
  return records.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

// ---------------------------------------------------------------------------------------------
// A stand-in for the dataset viewer's GET /rows, on 127.0.0.1 with an ephemeral port

export interface SeenRequest {
  path: string;
  dataset: string | null;
  config: string | null;
  split: string | null;
  offset: number;
  length: number;
  authorization: string | null;
}

export interface CannedResponse {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface StandInOptions {
  rows: Array<Record<string, unknown>>;
  /** Column order the server announces in `features`. */
  features: string[];
  /** Cells to report as truncated, by row_idx. */
  truncated?: Record<number, string[]>;
  partial?: boolean;
  /** Return a response to send instead of the page (n counts requests from 1), or null to serve the page. */
  intercept?: (request: SeenRequest, n: number) => CannedResponse | null;
}

export interface StandIn {
  url: string;
  requests: SeenRequest[];
  close(): Promise<void>;
}

export async function startStandIn(options: StandInOptions): Promise<StandIn> {
  const requests: SeenRequest[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const seen: SeenRequest = {
      path: url.pathname,
      dataset: url.searchParams.get('dataset'),
      config: url.searchParams.get('config'),
      split: url.searchParams.get('split'),
      offset: Number(url.searchParams.get('offset') ?? 0),
      length: Number(url.searchParams.get('length') ?? 100),
      authorization: req.headers.authorization ?? null,
    };
    requests.push(seen);
    const send = (status: number, body: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(body);
    };
    const canned = options.intercept?.(seen, requests.length) ?? null;
    if (canned !== null) return send(canned.status, canned.body ?? '', canned.headers);
    if (seen.path !== '/rows') return send(404, JSON.stringify({ error: 'Not Found' }));
    if (seen.length > 100) return send(422, JSON.stringify({ error: "Parameter 'length' must not be greater than 100" }));
    const slice = options.rows.slice(seen.offset, seen.offset + seen.length);
    send(
      200,
      JSON.stringify({
        features: options.features.map((name, i) => ({ feature_idx: i, name, type: { dtype: 'string', _type: 'Value' } })),
        rows: slice.map((row, i) => ({ row_idx: seen.offset + i, row, truncated_cells: options.truncated?.[seen.offset + i] ?? [] })),
        num_rows_total: options.rows.length,
        num_rows_per_page: 100,
        partial: options.partial ?? false,
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/** SWE-bench's column order, as the dataset viewer lists the features of princeton-nlp/SWE-bench_Lite. */
export const SWEBENCH_FEATURES = [
  'repo',
  'instance_id',
  'base_commit',
  'patch',
  'test_patch',
  'problem_statement',
  'hints_text',
  'created_at',
  'version',
  'FAIL_TO_PASS',
  'PASS_TO_PASS',
  'environment_setup_commit',
];

/** `n` SWE-bench rows with their keys deliberately in alphabetical (not feature) order. */
export function swebenchRows(n: number): Array<Record<string, unknown>> {
  return Array.from({ length: n }, (_, i) => {
    const record = swebenchRecord(i % 2 === 0 ? `getmoto__moto-${5000 + i}` : `Project-MONAI__MONAI-${3000 + i}`, {
      repo: i % 2 === 0 ? 'getmoto/moto' : 'Project-MONAI/MONAI',
    });
    return Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
  });
}
