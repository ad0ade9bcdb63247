import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { DatasetFetchError } from '../../src/tasks/fetch.js';
import { fetchHubFiles } from '../../src/tasks/fetch-hub.js';
import { loadInstances, TaskFileError } from '../../src/tasks/load.js';
import { readInstances, splitOfFile } from '../../src/tasks/read.js';
import { selectTaskSet, selectTaskSetSync } from '../../src/tasks/select.js';
import { rft, RFT_BIN } from '../cli/helpers.js';
import { MINIGYM_TASKS } from '../helpers/minigym.js';
import { jsonlRecords, parquetOf } from '../helpers/parquet.js';
import { tempDir } from './helpers.js';

/** The bundled tasks' records as they are in the JSONL file (the dataset's own fields). */
function rawRecords(): Record<string, unknown>[] {
  return jsonlRecords(MINIGYM_TASKS);
}

function rftAsync(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [RFT_BIN, ...args], { env, encoding: 'utf8', timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ status: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

async function rejection(p: Promise<unknown>): Promise<Error> {
  return p.then(
    () => {
      throw new Error('expected a failure');
    },
    (err: Error) => err,
  );
}

describe('task files as the hub ships them', () => {
  it('a Parquet file of the bundled tasks loads identically to their JSONL (snappy and gzip codecs)', async () => {
    const dir = tempDir();
    const expected = loadInstances(MINIGYM_TASKS);
    expect(expected.length).toBeGreaterThan(5);
    for (const codec of [undefined, 'GZIP'] as const) {
      const file = path.join(dir, `train-00000-of-00001${codec ?? ''}.parquet`);
      writeFileSync(file, parquetOf(rawRecords(), codec));
      expect(await readInstances(file)).toEqual(expected);
    }
  });

  it('reads SWE-bench-style string lists, JSON arrays, gzipped JSONL and gzipped JSON', async () => {
    const dir = tempDir();
    const expected = loadInstances(MINIGYM_TASKS);
    const stringLists = rawRecords().map((r) => ({ ...r, FAIL_TO_PASS: JSON.stringify(r.FAIL_TO_PASS), PASS_TO_PASS: JSON.stringify(r.PASS_TO_PASS) }));
    writeFileSync(path.join(dir, 'swebench.parquet'), parquetOf(stringLists));
    writeFileSync(path.join(dir, 'tasks.jsonl.gz'), gzipSync(readFileSync(MINIGYM_TASKS)));
    writeFileSync(path.join(dir, 'tasks.json.gz'), gzipSync(JSON.stringify(rawRecords(), null, 2)));
    writeFileSync(path.join(dir, 'tasks.json'), JSON.stringify(rawRecords()));
    for (const name of ['swebench.parquet', 'tasks.jsonl.gz', 'tasks.json.gz', 'tasks.json']) expect(await readInstances(path.join(dir, name))).toEqual(expected);
    expect(loadInstances(path.join(dir, 'tasks.jsonl.gz'))).toEqual(expected);
  });

  it('reads a downloaded snapshot folder: the shards of one split, in name order, hidden folders skipped', async () => {
    const snap = tempDir();
    const records = rawRecords();
    mkdirSync(path.join(snap, 'data'));
    mkdirSync(path.join(snap, '.cache', 'huggingface'), { recursive: true });
    writeFileSync(path.join(snap, 'README.md'), '# dataset card');
    writeFileSync(path.join(snap, 'data', 'train-00001-of-00002.parquet'), parquetOf(records.slice(4)));
    writeFileSync(path.join(snap, 'data', 'train-00000-of-00002.parquet'), parquetOf(records.slice(0, 4)));
    writeFileSync(path.join(snap, '.cache', 'huggingface', 'junk.jsonl'), 'not json');
    expect(await readInstances(snap)).toEqual(loadInstances(MINIGYM_TASKS));

    writeFileSync(path.join(snap, 'data', 'test-00000-of-00001.parquet'), parquetOf(records.slice(0, 1)));
    const mixed = await rejection(readInstances(snap));
    expect(mixed).toBeInstanceOf(TaskFileError);
    expect(mixed.message).toContain('the folder holds several splits (test, train): point at one split\'s file or folder instead, e.g. data/test-00000-of-00001.parquet, data/train-00000-of-00002.parquet');
  });

  it('names the command that makes a missing file, and the row and field of a bad one', async () => {
    const dir = tempDir();
    const missing = await rejection(readInstances(path.join(dir, 'nope.parquet')));
    expect(missing.message).toMatch(/nope\.parquet: instance file not found; make it with `rft tasks fetch <dataset> --split <split> --out <file.jsonl>`.*huggingface-cli download --repo-type dataset/);
    expect(() => loadInstances(path.join(dir, 'nope.jsonl'))).toThrow(/instance file not found; make it with `rft tasks fetch/);
    const empty = await rejection(readInstances(dir));
    expect(empty.message).toContain('the folder holds no task files');
    expect(empty.message).toContain('rft tasks fetch');

    const records = rawRecords();
    const bad = path.join(dir, 'bad.parquet');
    writeFileSync(bad, parquetOf([records[0]!, { ...records[1]!, base_commit: null }, records[0]!]));
    const error = (await rejection(readInstances(bad))) as TaskFileError;
    expect(error.problems.map((p) => [p.index, p.field])).toEqual([
      [1, 'base_commit'],
      [2, 'instance_id'],
    ]);
    expect(error.message).toContain(`${bad} (item 2): ${records[0]!.instance_id as string}: instance_id: duplicate instance_id: also at item 0`);
    writeFileSync(path.join(dir, 'junk.parquet'), 'PAR1 not really');
    expect((await rejection(readInstances(path.join(dir, 'junk.parquet')))).message).toContain('not a readable Parquet file');
  });

  it('a recipe task set may name a Parquet file; the synchronous reader says how to convert it', async () => {
    const dir = tempDir();
    writeFileSync(path.join(dir, 'train.parquet'), parquetOf(rawRecords()));
    const set = { path: 'train.parquet', ids_file: null, repos: [], limit: 3 };
    expect((await selectTaskSet(set, dir)).map((i) => i.instance_id)).toEqual(loadInstances(MINIGYM_TASKS).slice(0, 3).map((i) => i.instance_id));
    expect(() => selectTaskSetSync(set, dir)).toThrow('convert it once with `rft tasks convert <path> --out tasks.jsonl`');
    const out = path.join(dir, 'converted.jsonl');
    const converted = rft(['tasks', 'convert', path.join(dir, 'train.parquet'), '--out', out]);
    expect(converted.stderr).toBe('');
    expect(converted.stdout).toContain(`wrote ${rawRecords().length} instances to ${out}`);
    expect(loadInstances(out)).toEqual(loadInstances(MINIGYM_TASKS));
  });

  it('tells hub shard names apart from other names', () => {
    expect(splitOfFile('data/train-00000-of-00003.parquet')).toBe('train');
    expect(splitOfFile('test-00002-of-00003.jsonl.gz')).toBe('test');
    expect(splitOfFile('tasks.jsonl')).toBeNull();
  });
});

describe('rft tasks fetch through the hub file API (a local stand-in on 127.0.0.1)', () => {
  let server: Server | null = null;
  afterEach(async () => {
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = null;
  });

  /** The hub's tree API (two pages, Link header), resolve URLs redirecting to a CDN path, one 503 on the way. */
  async function standIn(token: string | null): Promise<{ url: string; requests: string[] }> {
    const records = rawRecords();
    const files: Record<string, Buffer> = {
      'data/train-00000-of-00002.parquet': parquetOf(records.slice(0, 5)),
      'data/train-00001-of-00002.parquet': parquetOf(records.slice(5)),
      'data/test-00000-of-00001.parquet': parquetOf(records.slice(0, 2)),
      'README.md': Buffer.from('# card'),
    };
    const entries = Object.entries(files).map(([p, b]) => ({ type: 'file', path: p, size: b.length, oid: 'x' }));
    const requests: string[] = [];
    let failedOnce = false;
    server = createServer((req, res) => {
      const url = new URL(req.url!, 'http://127.0.0.1');
      requests.push(`${req.method} ${url.pathname}${url.search}`);
      if (token !== null && req.headers.authorization !== `Bearer ${token}`) {
        res.writeHead(401).end('{"error":"Invalid credentials"}');
        return;
      }
      const tree = '/api/datasets/SWE-Gym/SWE-Gym-Lite/tree/main';
      if (url.pathname === tree) {
        const page = url.searchParams.get('cursor') === '2' ? entries.slice(2) : entries.slice(0, 2);
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (url.searchParams.get('cursor') !== '2') headers.link = `<${tree}?recursive=true&cursor=2>; rel="next"`;
        res.writeHead(200, headers).end(JSON.stringify(page));
        return;
      }
      const resolve = /^\/datasets\/SWE-Gym\/SWE-Gym-Lite\/resolve\/main\/(.+)$/.exec(url.pathname);
      if (resolve) {
        res.writeHead(302, { location: `/cdn/${resolve[1]}` }).end();
        return;
      }
      const cdn = /^\/cdn\/(.+)$/.exec(url.pathname);
      if (cdn && files[decodeURIComponent(cdn[1]!)]) {
        if (!failedOnce) {
          failedOnce = true;
          res.writeHead(503, { 'retry-after': '0' }).end('busy');
          return;
        }
        res.writeHead(200).end(files[decodeURIComponent(cdn[1]!)]);
        return;
      }
      res.writeHead(404).end('{"error":"Entry not found"}');
    });
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', () => resolve()));
    return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, requests };
  }

  it('downloads the split\'s shards and writes one checked JSONL file', async () => {
    const token = 'hf_standin_secret_123';
    const hub = await standIn(token);
    const out = path.join(tempDir(), 'lite.jsonl');
    const result = await fetchHubFiles({ dataset: 'SWE-Gym/SWE-Gym-Lite', split: 'train', endpoint: hub.url, out, token, retryBaseMs: 1 });
    expect(result.count).toBe(rawRecords().length);
    expect(loadInstances(out)).toEqual(loadInstances(MINIGYM_TASKS));
    expect(hub.requests.filter((r) => r.includes('/resolve/')).sort()).toEqual([
      'GET /datasets/SWE-Gym/SWE-Gym-Lite/resolve/main/data/train-00000-of-00002.parquet',
      'GET /datasets/SWE-Gym/SWE-Gym-Lite/resolve/main/data/train-00001-of-00002.parquet',
      // the first download got a 503 and was tried again
      'GET /datasets/SWE-Gym/SWE-Gym-Lite/resolve/main/data/train-00000-of-00002.parquet',
    ].sort());

    const none = await rejection(fetchHubFiles({ dataset: 'SWE-Gym/SWE-Gym-Lite', split: 'dev', endpoint: hub.url, out, token, retryBaseMs: 1 }));
    expect(none).toBeInstanceOf(DatasetFetchError);
    expect(none.message).toContain('no task file of split "dev" (task files there: test, train)');
    const denied = await rejection(fetchHubFiles({ dataset: 'SWE-Gym/SWE-Gym-Lite', endpoint: hub.url, out, token: 'hf_wrong', retryBaseMs: 1 }));
    expect(denied.message).toContain('HTTP 401');
    expect(denied.message).not.toContain('hf_wrong');
  });

  it('the CLI takes HF_ENDPOINT as the mirror and uses the files API then', async () => {
    const hub = await standIn(null);
    const out = path.join(tempDir(), 'lite.jsonl');
    // Spawned asynchronously: the stand-in answers from this process's event loop.
    const run = await rftAsync(['tasks', 'fetch', 'SWE-Gym/SWE-Gym-Lite', '--split', 'test', '--out', out], { ...process.env, HF_ENDPOINT: hub.url, HF_TOKEN: '' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`wrote 2 instances of SWE-Gym/SWE-Gym-Lite (default/test) to ${out}`);
    expect(loadInstances(out)).toEqual(loadInstances(MINIGYM_TASKS).slice(0, 2));
  });
});
