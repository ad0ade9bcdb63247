import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLayout } from '../../src/loop/layout.js';
import { startSimServer, type SimServer } from '../../src/doubles/server.js';
import { readTrajectories } from '../../src/store/trajectories.js';
import { normalizePatch, patchHash } from '../../src/verify/patch.js';
import { isFinal, VerdictSchema } from '../../src/verify/verdict.js';
import { minigymInstances } from '../helpers/minigym.js';
import { startRft, writeLoopRecipe } from './helpers.js';

/**
 * An endpoint that refuses over-long prompts (vLLM's HTTP 400 "maximum context length"): the
 * trajectory ends as the model's error, is recorded, its patch is verified, and the iteration
 * completes — SWE-Gym graded such runs' diffs; they never stop a run.
 */

const NAME = 'ctx-len';
const runsDir = mkdtempSync(path.join(tmpdir(), 'rft-ctx-len-'));
let sim: SimServer;

beforeAll(async () => {
  // Prompts of the bundled tasks take ~2,500–3,100 tokens with max_tokens: a 2,950-token model refuses the longer ones.
  sim = await startSimServer({ models: [], tasks: minigymInstances(), modelsDir: path.join(runsDir, NAME, 'sim-models'), maxModelLen: 2950 });
});

afterAll(async () => {
  await sim.close();
});

describe('a context-length refusal', () => {
  it('ends the trajectory as a model error whose patch is verified, and the run completes', async () => {
    const recipe = writeLoopRecipe(sim.url, { name: NAME });
    const ran = await startRft(['run', recipe, '--runs-dir', runsDir, '--set', 'iterations=1']).done;
    expect({ code: ran.code, err: ran.stderr.match(/rft: .*/)?.[0] ?? null }).toEqual({ code: 0, err: null });
    expect(ran.stdout).not.toMatch(/incomplete/);
    const run = path.join(runsDir, NAME);
    const lines = (file: string) => readFileSync(file, 'utf8').trim().split('\n').filter(Boolean);
    const trajectories = [...readTrajectories(runLayout.trajectories(run, 0))];
    const verdicts = lines(runLayout.verdicts(run, 0)).map((l) => VerdictSchema.parse(JSON.parse(l)));
    const refused = trajectories.filter((t) => t.outcome.status === 'error' && /refused the prompt as too long/.test(t.outcome.reason));
    expect(refused.length).toBeGreaterThan(0);
    for (const t of refused) {
      expect(t.outcome).toMatchObject({ status: 'error', fault: 'model' });
      expect(t.outcome.status === 'error' && t.outcome.reason).toMatch(/maximum context length is 2950 tokens/);
    }
    // Every sample is recorded (none dropped as an infrastructure error) and has a verdict, the refused ones with edits included.
    expect(trajectories).toHaveLength(3 * 4);
    expect(trajectories.some((t) => t.outcome.status === 'error' && t.outcome.fault === 'infrastructure')).toBe(false);
    const edited = refused.filter((t) => t.patch !== '');
    expect(edited.length).toBeGreaterThan(0);
    for (const t of edited) {
      const verdict = verdicts.find((v) => v.instance_id === t.instance_id && v.patch_hash === patchHash(normalizePatch(t.patch)));
      expect(verdict && isFinal(verdict.outcome), `${t.instance_id}#${t.sample_index}`).toBe(true);
    }
  }, 600_000);
});
