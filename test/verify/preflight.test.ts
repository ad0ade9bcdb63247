import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { connectEngine } from '../../src/sandbox/engine.js';
import { imageNameFor } from '../../src/tasks/image-name.js';
import { preflight, readExclusions, writeExclusions } from '../../src/verify/preflight.js';
import { buildEvalSpec } from '../../src/verify/spec.js';
import { minigymInstances } from '../helpers/minigym.js';

describe('preflight: instances that cannot be verified are known before sampling', () => {
  it('keeps instances with an image, leaves out a missing unpullable image and an unsafe test patch, one reason each', async () => {
    const docker = await connectEngine();
    const [present, missing, unsafe] = minigymInstances();
    const evil = { ...unsafe!, test_patch: '--- a/../etc/passwd\n+++ b/../etc/passwd\n@@ -1 +1 @@\n-a\n+b\n' };
    const imageFor = (i: { instance_id: string }) =>
      imageNameFor(i.instance_id, i.instance_id === missing!.instance_id ? 'rft-preflight-absent/{id_lower}' : 'swebench');
    const run = (pull: boolean) =>
      preflight([present!, missing!, evil], { specFor: (i) => buildEvalSpec(i), imageFor, dockers: [docker], pull });
    const offline = await run(false);
    expect(offline.kept.map((i) => i.instance_id)).toEqual([present!.instance_id]);
    expect(offline.excluded).toEqual([
      { instance_id: missing!.instance_id, reason: expect.stringMatching(/^image rft-preflight-absent\/.* is missing and pulling is off$/) },
      { instance_id: unsafe!.instance_id, reason: expect.stringMatching(/^cannot be verified: .*inside the repository/) },
    ]);
    // With pulling allowed the registry is asked (without pulling); no registry serves this name.
    const online = await run(true);
    expect(online.excluded[0]!.reason).toMatch(/is missing and cannot be pulled: /);

    const file = path.join(mkdtempSync(path.join(tmpdir(), 'rft-excluded-')), 'excluded.json');
    expect(readExclusions(file)).toEqual([]);
    writeExclusions(file, offline.excluded);
    expect(readExclusions(file)).toEqual(offline.excluded);
  }, 120_000);
});
