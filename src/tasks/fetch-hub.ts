import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { z } from 'zod';
import { backoff, hubAccess, hubBase, lookupHint, parseRetryAfter, triesFor, type FetchDatasetResult } from './fetch.js';
import { TaskFileError } from './load.js';
import { readInstances, splitOfFile, taskFileFormat } from './read.js';
import { writeInstanceFile } from './write.js';

/** The Hugging Face hub; `HF_ENDPOINT` names a mirror, as huggingface_hub reads it. */
export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

/** One entry of GET /api/datasets/<repo>/tree/<revision>?recursive=true. */
const TreeEntrySchema = z.object({ type: z.string(), path: z.string(), size: z.number().optional() });

export interface FetchHubOptions {
  dataset: string;
  split?: string;
  /** A config's files live in a folder of that name; `default` takes files from anywhere. */
  config?: string;
  revision?: string;
  endpoint?: string;
  out: string;
  token?: string | null;
  fetchImpl?: typeof fetch;
  attempts?: number;
  retryBaseMs?: number;
  timeoutMs?: number;
  sleep?: (ms: number) => Promise<void>;
  onProgress?: (message: string) => void;
}

/**
 * Downloads a split of a SWE-bench-format dataset through the hub's file API — the repository's
 * file list, then each file of the split from its resolve URL, as `huggingface-cli download`
 * does — and writes it as one checked JSONL instance file (atomically, only when every file was
 * read and every row is good). The files are Parquet or JSON(L), maybe gzipped; a split is the
 * files named `<split>-NNNNN-of-NNNNN.*` or `<split>.*`.
 */
export async function fetchHubFiles(options: FetchHubOptions): Promise<FetchDatasetResult> {
  const {
    dataset,
    split = 'train',
    config = 'default',
    revision = 'main',
    endpoint = DEFAULT_HUB_ENDPOINT,
    out,
    fetchImpl = globalThis.fetch,
    attempts = 5,
    retryBaseMs = 1000,
    timeoutMs = 300_000,
    sleep = (ms: number) => delay(ms),
    onProgress,
  } = options;
  const access = hubAccess(options.token);
  const { token, fail, headers } = access;
  if (!/^[\w.-]+(\/[\w.-]+)?$/.test(dataset)) fail(`"${dataset}" is not a dataset name (owner/name)`);
  const base = hubBase(endpoint, '', access);
  const rev = encodeURIComponent(revision);

  const get = async (url: URL): Promise<Response> => {
    for (let attempt = 1; ; attempt++) {
      let response: Response;
      try {
        response = await fetchImpl(url, { headers, signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
      } catch (err) {
        const tries = triesFor(err, attempts);
        if (attempt < tries) {
          await sleep(backoff(retryBaseMs, attempt));
          continue;
        }
        return fail(`GET ${url.toString()}: ${(err as Error).message} (after ${tries} tries)${lookupHint(err, url.host)}`);
      }
      if (response.ok) return response;
      if ((response.status === 429 || response.status >= 500) && attempt < attempts) {
        await response.body?.cancel();
        await sleep(parseRetryAfter(response.headers.get('retry-after')) ?? backoff(retryBaseMs, attempt));
        continue;
      }
      const text = (await response.text()).replace(/\s+/g, ' ').slice(0, 300);
      const hint =
        response.status === 401 || response.status === 403
          ? token === null
            ? ' (set HF_TOKEN to a Hugging Face token if the dataset is private or gated)'
            : ' (the token in HF_TOKEN has no access to this dataset)'
          : response.status === 404
            ? ' (check the dataset name and --revision)'
            : '';
      return fail(`GET ${url.toString()}: HTTP ${response.status}${text ? `: ${text}` : ''}${hint}`);
    }
  };

  // The file list, following the Link header across pages.
  const files: string[] = [];
  let next: URL | null = new URL(`api/datasets/${dataset}/tree/${rev}?recursive=true`, base);
  while (next !== null) {
    const response = await get(next);
    const parsed = z.array(TreeEntrySchema).safeParse(await response.json().catch(() => null));
    if (!parsed.success) fail(`GET ${next.toString()}: not a file list`);
    for (const entry of parsed.data!) if (entry.type === 'file') files.push(entry.path);
    const link = /<([^>]+)>;\s*rel="next"/.exec(response.headers.get('link') ?? '');
    next = link ? new URL(link[1]!, base) : null;
  }
  const inConfig = (p: string) => config === 'default' || p.split('/').slice(0, -1).includes(config);
  const ofSplit = (p: string) => (splitOfFile(p) ?? path.basename(p).replace(/\.(parquet|jsonl|json|ndjson)(\.gz)?$/i, '')) === split;
  const wanted = files.filter((p) => taskFileFormat(p) !== null && inConfig(p) && ofSplit(p)).sort();
  if (wanted.length === 0) {
    const splits = [...new Set(files.filter((p) => taskFileFormat(p) !== null && inConfig(p)).map((p) => splitOfFile(p) ?? path.basename(p)))].sort();
    fail(`${dataset}@${revision}: no task file of split "${split}"${config === 'default' ? '' : ` in config ${config}`} (task files there: ${splits.join(', ') || 'none'})`);
  }

  const temp = mkdtempSync(path.join(tmpdir(), 'rft-hub-'));
  try {
    for (const [i, file] of wanted.entries()) {
      const url = new URL(`datasets/${dataset}/resolve/${rev}/${file.split('/').map(encodeURIComponent).join('/')}`, base);
      onProgress?.(`${i + 1}/${wanted.length} ${file}`);
      const bytes = Buffer.from(await (await get(url)).arrayBuffer());
      const local = path.join(temp, ...file.split('/'));
      mkdirSync(path.dirname(local), { recursive: true });
      writeFileSync(local, bytes);
    }
    let instances;
    try {
      instances = await readInstances(temp);
    } catch (err) {
      if (err instanceof TaskFileError) fail(`${dataset}@${revision} (split ${split}): ${err.message.split(temp + path.sep).join('')}`, err.problems.map((p) => p.message));
      throw err;
    }
    writeInstanceFile(out, instances!);
    return { out, count: instances!.length, dataset, config, split };
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}
