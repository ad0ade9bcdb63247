import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodeIndex, SearchRequestError } from '../../src/agent/code-index.js';
import { PythonSpanParser } from '../../src/agent/python-spans.js';
import { WorkerCodeIndex } from '../../src/agent/worker-index.js';
import { minigymRepoFiles } from '../helpers/minigym.js';

const files = minigymRepoFiles('iniform');
let local: CodeIndex;
let remote: WorkerCodeIndex;

beforeAll(async () => {
  const parser = await PythonSpanParser.create();
  local = await CodeIndex.build(files, parser);
  remote = await WorkerCodeIndex.start(files, parser);
});

afterAll(async () => {
  await remote.close();
});

const req = (r: Record<string, unknown>) => ({ class_names: [], function_names: [], ...r });

describe('the code index in a worker thread', () => {
  it('answers every kind of search exactly as the index built on this thread', async () => {
    const requests = [
      req({ class_names: ['Section'] }),
      req({ function_names: ['quote', 'unquote'] }),
      req({ query: 'write the document back to INI text', file_pattern: 'iniform/*.py' }),
      req({ code_snippet: 'def   quote(value' }),
      req({ class_names: ['Nowhere'] }),
    ];
    for (const request of requests) expect(await remote.search(request)).toEqual(local.search(request));
    expect(await remote.search(req({ query: 'section' }), { maxTokens: 200 })).toEqual(local.search(req({ query: 'section' }), { maxTokens: 200 }));
  });

  it('shows spans and renders files as the local index does, and passes a bad request back as a SearchRequestError', async () => {
    for (const file of ['iniform/writer.py', 'iniform/escape.py', 'README.md', 'missing.py']) {
      expect(remote.details(file)).toEqual(local.details(file));
      expect(remote.file(file)?.spans).toEqual(local.file(file)?.spans);
      const ids = local.details(file).map((d) => d.id).slice(0, 2);
      expect(remote.renderFile(file, ids)).toEqual(local.renderFile(file, ids));
    }
    await expect(remote.search(req({ file_pattern: 'x.py' }))).rejects.toBeInstanceOf(SearchRequestError);
  });

  it('serves every index of the process from one thread, each its own snapshot, and closing one leaves the others answering', async () => {
    const parser = await PythonSpanParser.create();
    const otherFiles = minigymRepoFiles('ledgerlite');
    const other = await WorkerCodeIndex.start(otherFiles, parser);
    const otherLocal = await CodeIndex.build(otherFiles, parser);
    expect(other.worker).toBe(remote.worker);
    const request = req({ query: 'quote the value of a money amount with rounding' });
    const [mine, theirs] = await Promise.all([remote.search(request), other.search(request)]);
    expect(mine).toEqual(local.search(request));
    expect(theirs).toEqual(otherLocal.search(request));
    expect(theirs).not.toEqual(mine);
    await other.close();
    await expect(other.search(request)).rejects.toThrow(/closed/);
    expect(await remote.search(request)).toEqual(mine);
  });

  it('fails a search at once when its worker has ended from outside, instead of leaving it to wait for ever', async () => {
    const parser = await PythonSpanParser.create();
    const doomed = await WorkerCodeIndex.start(files, parser);
    // What an outside end looks like to the index: the thread is gone without an 'error' event.
    await (doomed as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    await expect(doomed.search(req({ class_names: ['Section'] }))).rejects.toThrow(/the code index worker ended \(exit code 1\) before it was closed/);
    await doomed.close();
  });
});
