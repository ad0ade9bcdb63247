import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prepareInstance } from '../../src/agent/instance-workspace.js';
import { runTrajectory } from '../../src/agent/run.js';
import { takeSnapshot } from '../../src/agent/snapshot.js';
import { OpenAiPolicy } from '../../src/policy/client.js';
import { startSimServer, type SimServer } from '../../src/doubles/server.js';
import { AgentSchema } from '../../src/recipe/schema.js';
import { LABEL, Sandbox } from '../../src/sandbox/container.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import { encodeText, wellFormed } from '../../src/util/byte-text.js';
import { verifyPatch } from '../../src/verify/run.js';
import { buildEvalSpec } from '../../src/verify/spec.js';
import { MINIGYM_DIR, minigymInstances } from '../helpers/minigym.js';
import { bundledVerifyContext } from '../helpers/verify-context.js';

/**
 * A repository file that is not UTF-8 LF text (Latin-1 with a coding cookie and CRLF line endings,
 * as older Python projects have) must keep its bytes from the snapshot through the agent's edit
 * into a patch that plain `git apply` takes. The task image is the bundled unitkit-101 with
 * units.py re-encoded.
 */
const RUN = `non-utf8-${process.pid}`;
const LABELS = { [LABEL.run]: RUN };
const BASE = 'sweb.eval.x86_64.minigym__unitkit-101:latest';
const DERIVED = `rft-test/latin1-unitkit-101:${process.pid}`;
const DOCSTRING = '"""Return True when ``other`` has the same dimension as this unit."""';

/** units.py in Latin-1 with CRLF line endings: a coding cookie, and an é (byte 0xE9) in a line the fix's diff shows as context. */
function latin1Units(): Buffer {
  const source = readFileSync(path.join(MINIGYM_DIR, 'repos/unitkit/unitkit/units.py'), 'utf8');
  expect(source).toContain(DOCSTRING);
  const text = `# -*- coding: latin-1 -*-\n${source.replace(DOCSTRING, DOCSTRING.replace('this unit.', 'this unit (café).'))}`;
  return Buffer.from(text.replace(/\n/g, '\r\n'), 'latin1');
}

let sim: SimServer;
const bytes = latin1Units();

beforeAll(async () => {
  sim = await startSimServer({ models: [], tasks: minigymInstances() });
  const docker = await connectEngine();
  const box = await Sandbox.start(docker, { image: BASE, labels: LABELS, memoryBytes: 256 * 1024 ** 2, cpus: 1, pids: 64 });
  try {
    await box.putFiles('/testbed/unitkit', [{ name: 'units.py', content: bytes }]);
    const committed = await box.exec(['git', '-C', '/testbed', '-c', 'user.name=rft', '-c', 'user.email=rft@localhost', 'commit', '-qam', 'units.py in Latin-1'], { timeoutMs: 60_000 });
    expect(committed.exitCode, committed.output).toBe(0);
    const [repo, tag] = DERIVED.split(':');
    await box.container.commit({ repo, tag });
  } finally {
    await box.remove();
  }
}, 120_000);

afterAll(async () => {
  await sim?.close();
  const docker = await connectEngine();
  await docker.getImage(DERIVED).remove({ force: true }).catch(() => {});
});

describe('a repository file that is not UTF-8 LF text', () => {
  it('keeps its bytes in the snapshot: escaped on decode, the same bytes on encode', async () => {
    const docker = await connectEngine();
    const snapshot = await takeSnapshot(docker, DERIVED, { cacheDir: mkdtempSync(path.join(tmpdir(), 'rft-snap-latin1-')), labels: LABELS });
    const text = snapshot.files.get('unitkit/units.py')!;
    expect(text).toContain('(caf\uDCE9)');
    expect(encodeText(text).equals(bytes)).toBe(true);
  });

  it('is edited by the agent into a patch that git apply takes, with the byte intact, and the model sees neither an escape nor a CR', async () => {
    const docker = await connectEngine();
    const instance = minigymInstances().find((i) => i.instance_id === 'minigym__unitkit-101')!;
    const policy = new OpenAiPolicy({ baseUrl: sim.url, model: 'sim-base', apiKey: null, timeoutMs: 30_000, maxRetries: 3 });
    const prepared = await prepareInstance(docker, DERIVED, LABELS);
    const trajectory = await runTrajectory({
      ids: { run: RUN, iteration: 0, instance_id: instance.instance_id, sample_index: 1 },
      seed: 1,
      instance,
      ...prepared,
      policy,
      agent: AgentSchema.parse({}),
      sampling: { temperature: 0, top_p: 1 },
    });
    // The fix's diff shows the Latin-1 line as context, carrying the file's own byte.
    expect(trajectory.patch).toContain(`${' '.repeat(9)}${DOCSTRING.replace('this unit.', 'this unit (caf\uDCE9).')}\r\n`);
    expect(trajectory.patch).toContain('+        return (value - self.offset) / self.factor\r\n');
    // What the model was sent (and what training data is made from) is well-formed: U+FFFD stands for the byte.
    const sent = trajectory.calls.flatMap((c) => c.messages.map((m) => m.content ?? ''));
    for (const content of sent) expect(content).toBe(wellFormed(content));
    // ...and LF: the model reads and writes code without the file's CRs.
    for (const content of sent) expect(content).not.toContain('\r');
    expect(sent.some((content) => content.includes('(caf\uFFFD)'))).toBe(true);

    const ctx = bundledVerifyContext(docker, RUN, { imageFor: () => DERIVED });
    const { verdict } = await verifyPatch(ctx, instance, buildEvalSpec(instance, { timeout_s: 60 }), trajectory.patch);
    expect({ outcome: verdict.outcome, apply: verdict.apply_method }).toEqual({ outcome: 'resolved', apply: 'git_apply' });

    // After the patch the file still holds byte 0xE9, and the fix.
    const box = await Sandbox.start(docker, { image: DERIVED, labels: LABELS, memoryBytes: 256 * 1024 ** 2, cpus: 1, pids: 64 });
    try {
      await box.putFiles('/tmp', [{ name: 'model.patch', content: trajectory.patch }]);
      const applied = await box.exec(['git', '-C', '/testbed', 'apply', '/tmp/model.patch'], { timeoutMs: 60_000 });
      expect(applied.exitCode, applied.output).toBe(0);
      const after = (await box.readFile('/testbed/unitkit/units.py'))!;
      expect(after.includes(Buffer.from('this unit (caf\u00e9).', 'latin1'))).toBe(true);
      expect(after.toString('latin1')).toContain('return (value - self.offset) / self.factor\r\n');
      // Every line still ends in CRLF: the edit changed the lines it meant to, not the file's line endings.
      expect(after.toString('latin1')).not.toMatch(/[^\r]\n/);
    } finally {
      await box.remove();
    }
    const left = await docker.listContainers({ all: true, filters: JSON.stringify({ label: [`${LABEL.run}=${RUN}`] }) });
    expect(left).toEqual([]);
  }, 180_000);
});
