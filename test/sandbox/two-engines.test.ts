import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRft, writeLoopRecipe } from '../loop/helpers.js';
import type Docker from 'dockerode';
import { LABEL } from '../../src/sandbox/container.js';
import { connectEngine, defaultEngineUrl } from '../../src/sandbox/engine.js';
import { EnginePool } from '../../src/sandbox/engine-pool.js';
import { imageNameFor } from '../../src/tasks/image-name.js';
import type { VerifyContext } from '../../src/verify/run.js';
import { buildEvalSpec } from '../../src/verify/spec.js';
import { Verifier } from '../../src/verify/verifier.js';
import { makePatch, minigymInstances } from '../helpers/minigym.js';
import { startSecondEngine, type SecondEngine } from '../helpers/second-engine.js';

const RUN = `two-engines-${process.pid}`;
let main: Docker;
let second: SecondEngine;

beforeAll(async () => {
  main = await connectEngine();
  second = await startSecondEngine(main);
}, 600_000);

afterAll(async () => {
  await second?.stop().catch(() => {});
});

describe('several Docker engines', () => {
  it('rft run with two engines in sandbox.docker runs containers on both', async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'rft-two-engines-'));
    const since = Math.floor(Date.now() / 1000) - 1;
    const engines = `[{url: '${defaultEngineUrl()}', max_containers: 1}, {url: '${second.url}', max_containers: 1}]`;
    const run = await startRft(['run', writeLoopRecipe(null, { name: 'two-engines' }), '--runs-dir', runs, '--set', `sandbox.docker=${engines}`, '--set', 'iterations=1', '--set', 'tasks.eval=null']).done;
    expect(run.stderr).not.toMatch(/rft: /);
    expect(run.code).toBe(0);
    const created = async (docker: Docker) => {
      const events = (await docker.getEvents({ since, until: Math.floor(Date.now() / 1000), filters: JSON.stringify({ type: ['container'], event: ['create'], label: ['rft.run=two-engines', 'rft.purpose=verify'] }) })) as unknown as NodeJS.ReadableStream;
      let text = '';
      for await (const chunk of events as AsyncIterable<Buffer>) text += chunk.toString();
      return text.split('\n').filter((l) => l.trim()).length;
    };
    expect(await created(main)).toBeGreaterThan(0);
    expect(await created(second.docker)).toBeGreaterThan(0);
  });

  it('spreads verifications over both engines, and goes on on one when the other dies', async () => {
    const warnings: string[] = [];
    const pool = new EnginePool(
      [
        { url: defaultEngineUrl(), docker: main, capacity: 1 },
        { url: second.url, docker: second.docker, capacity: 1 },
      ],
      (m) => warnings.push(m),
    );
    const ctx: VerifyContext = {
      docker: main,
      imageFor: (i) => imageNameFor(i.instance_id, 'swebench'),
      limits: { memoryBytes: 512 * 1024 ** 2, cpus: 1, pids: 256 },
      labels: { [LABEL.run]: RUN },
    };
    const verifier = new Verifier(ctx, { concurrency: 2, specFor: (i) => buildEvalSpec(i, { timeout_s: 60 }), engines: pool });
    const instances = minigymInstances();
    // Gold patches and the empty-but-commented variant of each: distinct patches, one container each.
    const first = await Promise.all(instances.slice(0, 4).map((i) => verifier.verify(i, i.patch)));
    expect(first.map((v) => v.outcome)).toEqual(['resolved', 'resolved', 'resolved', 'resolved']);
    const used = pool.stats();
    expect(used.every((e) => e.used >= 1)).toBe(true);
    expect(used.reduce((n, e) => n + e.used, 0)).toBe(4);

    await second.stop();
    const unitkit = instances.find((i) => i.instance_id === 'minigym__unitkit-101')!;
    const later = await Promise.all([
      ...instances.slice(4, 8).map((i) => verifier.verify(i, i.patch)),
      verifier.verify(unitkit, makePatch('unitkit', [{ file: 'unitkit/units.py', from: 'return value / self.factor - self.offset', to: 'return value / self.factor + self.offset' }])),
    ]);
    expect(later.map((v) => v.outcome)).toEqual(['resolved', 'resolved', 'resolved', 'resolved', 'unresolved']);
    expect(warnings.some((w) => w.includes(second.url) && /taken out of rotation/.test(w))).toBe(true);
    expect(pool.healthy().map((e) => e.url)).toEqual([defaultEngineUrl()]);
    const left = await main.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL.run}=${RUN}`] }) });
    expect(left).toEqual([]);
  });
});
