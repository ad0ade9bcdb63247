import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TrajectorySchema } from '../../src/agent/trajectory.js';
import { runLayout } from '../../src/loop/layout.js';
import { VerifierManifestSchema } from '../../src/orm/dataset.js';
import { verifierDataFromRuns } from '../../src/orm/from-runs.js';
import { loadRecipe } from '../../src/recipe/load.js';
import { Ledger } from '../../src/store/ledger.js';
import { RunDir } from '../../src/store/run-dir.js';
import { normalizePatch, patchHash } from '../../src/verify/patch.js';
import { VerdictSchema } from '../../src/verify/verdict.js';
import { rft } from '../cli/helpers.js';
import { makeVerdict } from '../sft/records.js';
import { minigym, sampleTrajectory, TASKS_FILE, writePool, type PoolSample } from './records.js';

const [A, B, C] = minigym();

/**
 * A run written by hand. Distinct (instance, patch) pairs with a final verdict:
 *   YES: A gold, C gold (iter-0), B gold (iter-1)                                   → 3
 *   NO:  A wrong "w1", B empty, B wrong "b1", B wrong "b2", C wrong "c1"            → 5
 * Duplicates: A gold ×2 more in iter-0 and ×1 in iter-1, A "w1" ×1 more            → 4
 * Left out: C #5 whose patch has only an `error` verdict (unverified), 1 infrastructure record.
 */
const ITER0: PoolSample[] = [
  { instance: A!, sample: 0, kind: 'gold' },
  { instance: A!, sample: 1, kind: 'gold' },
  { instance: A!, sample: 2, kind: 'gold' },
  { instance: A!, sample: 3, kind: 'wrong', wrongName: 'w1' },
  { instance: A!, sample: 4, kind: 'wrong', wrongName: 'w1' },
  { instance: B!, sample: 0, kind: 'empty' },
  { instance: B!, sample: 1, kind: 'wrong', wrongName: 'b1' },
  { instance: B!, sample: 2, kind: 'wrong', wrongName: 'b2' },
  { instance: C!, sample: 0, kind: 'gold' },
  { instance: C!, sample: 1, kind: 'wrong', wrongName: 'c1' },
  { instance: C!, sample: 5, kind: 'wrong', wrongName: 'c-broken', outcome: 'error' },
];
const ITER1: PoolSample[] = [
  { instance: A!, sample: 0, kind: 'gold', iteration: 1 },
  { instance: B!, sample: 0, kind: 'gold', iteration: 1 },
];

let runDir: string;
const verdictOf = new Map<string, string>();

beforeAll(() => {
  const base = mkdtempSync(path.join(tmpdir(), 'rft-orm-data-'));
  const recipeFile = path.join(base, 'recipe.yaml');
  writeFileSync(
    recipeFile,
    `name: vdata\nseed: 3\niterations: 2\ntasks:\n  train: {path: ${JSON.stringify(TASKS_FILE)}}\npolicy: {kind: openai, base_url: "http://127.0.0.1:9/v1", model: base-model}\nfinetune: {backend: command, command: "true", base_model: base-model}\n`,
  );
  const run = RunDir.open({ runsDir: path.join(base, 'runs'), loaded: loadRecipe(recipeFile) });
  runDir = run.dir;
  run.close();
  for (const [k, pool] of [[0, ITER0], [1, ITER1]] as const) {
    const written = writePool(runLayout.trajectories(runDir, k), runLayout.verdicts(runDir, k), pool);
    for (const t of written) {
      const s = pool.find((p) => p.instance.instance_id === t.instance_id && p.sample === t.sample_index)!;
      verdictOf.set(`${t.instance_id}@${patchHash(normalizePatch(t.patch))}`, s.outcome ?? (s.kind === 'gold' ? 'resolved' : s.kind === 'empty' ? 'empty_patch' : 'unresolved'));
    }
  }
  // An infrastructure record (not data) in iter-0.
  const infra = TrajectorySchema.parse({ ...sampleTrajectory({ instance: C!, sample: 7, kind: 'wrong' }), outcome: { status: 'error', reason: 'endpoint down', fault: 'infrastructure' } });
  const l = Ledger.open(runLayout.trajectories(runDir, 0), TrajectorySchema).ledger;
  l.append(infra);
  l.close();
  // The `error` verdict of C's broken patch is retried later… and fails again: still not final.
  const v = Ledger.open(runLayout.verdicts(runDir, 0), VerdictSchema).ledger;
  v.append(makeVerdict(C!.instance_id, sampleTrajectory({ instance: C!, sample: 5, kind: 'wrong', wrongName: 'c-broken' }).patch, 'error'));
  v.close();
});

interface Line {
  messages: Array<{ role: string; content: string }>;
}

function readLines(file: string): Line[] {
  return readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);
}

/** The (instance, patch) an example is about, from its issue and diff text. */
function identify(line: Line): { instance_id: string; patch_hash: string } {
  const user = line.messages[1]!.content;
  const issue = /<issue>\n([\s\S]*?)\n<\/issue>/.exec(user)![1]!;
  const instance = minigym().find((i) => i.problem_statement.trim() === issue)!;
  const diff = /<diff>\n([\s\S]*?)\n<\/diff>/.exec(user)![1]!;
  return { instance_id: instance.instance_id, patch_hash: patchHash(normalizePatch(diff.startsWith('(empty') ? '' : diff)) };
}

describe('rft verifier data', () => {
  it('writes a balanced dataset: labels equal the verdicts, no trajectory or patch twice, counts add up', async () => {
    const out = path.join(runDir, 'vd-balanced');
    const { manifest } = await verifierDataFromRuns({ runDirs: [runDir], iteration: 'all', outDir: out, balance: true });
    const lines = readLines(path.join(out, 'train.jsonl'));
    expect(lines).toHaveLength(6);
    const seen = new Set<string>();
    for (const line of lines) {
      expect(line.messages.map((m) => m.role)).toEqual(['system', 'user', 'assistant']);
      const id = identify(line);
      const key = `${id.instance_id}@${id.patch_hash}`;
      expect(seen.has(key)).toBe(false);
      seen.add(key);
      expect(line.messages[2]!.content).toBe(verdictOf.get(key) === 'resolved' ? 'YES' : 'NO');
    }
    expect(lines.filter((l) => l.messages[2]!.content === 'YES')).toHaveLength(3);

    expect(VerifierManifestSchema.parse(manifest)).toEqual(manifest);
    expect(manifest.counts).toEqual({
      trajectory_records: 14,
      infrastructure_records: 1,
      unverified: 1,
      invalid_task: 0,
      unknown_instance: 0,
      candidates: 12,
      duplicate_patch: 4,
      over_max_tokens: 0,
      over_balance: 2,
      examples: 6,
    });
    expect(manifest.labels).toEqual({ yes: 3, no: 3 });
    expect(manifest.file.lines).toBe(6);
    expect(manifest.tokenizer).toBe('cl100k_base');
    expect(manifest.sources.map((s) => [s.run_name, s.iteration, s.models])).toEqual([
      ['vdata', 0, expect.any(Array)],
      ['vdata', 1, expect.any(Array)],
    ]);
    expect(manifest.sources.reduce((t, s) => t + s.yes + s.no, 0)).toBe(6);
  });

  it('is deterministic for a seed, and --no-balance keeps one example per distinct patch', async () => {
    const a = await verifierDataFromRuns({ runDirs: [runDir], iteration: 'all', outDir: path.join(runDir, 'vd-a'), balance: true });
    const b = await verifierDataFromRuns({ runDirs: [runDir], iteration: 'all', outDir: path.join(runDir, 'vd-b'), balance: true });
    expect(readFileSync(path.join(runDir, 'vd-a', 'train.jsonl'))).toEqual(readFileSync(path.join(runDir, 'vd-b', 'train.jsonl')));
    expect(a.manifest).toEqual(b.manifest);

    const all = await verifierDataFromRuns({ runDirs: [runDir], iteration: 'all', outDir: path.join(runDir, 'vd-all'), balance: false });
    expect(all.manifest.labels).toEqual({ yes: 3, no: 5 });
    expect(all.manifest.verdicts).toEqual({ resolved: 3, unresolved: 4, empty_patch: 1, apply_failed: 0, timeout: 0 });
    const keys = readLines(path.join(runDir, 'vd-all', 'train.jsonl')).map((l) => JSON.stringify(identify(l)));
    expect(new Set(keys).size).toBe(8);
  });

  it('draws on one iteration, drops what is over --max-tokens, and says why it cannot', async () => {
    const one = await verifierDataFromRuns({ runDirs: [runDir], iteration: 1, outDir: path.join(runDir, 'vd-1'), balance: false });
    expect(one.manifest.sources.map((s) => s.iteration)).toEqual([1]);
    expect(one.manifest.labels).toEqual({ yes: 2, no: 0 });
    const tight = await verifierDataFromRuns({ runDirs: [runDir], iteration: 'all', outDir: path.join(runDir, 'vd-tight'), balance: true, maxTokens: 50 });
    expect(tight.manifest.counts.over_max_tokens).toBe(8);
    expect(tight.manifest.file.lines).toBe(0);
    await expect(verifierDataFromRuns({ runDirs: [runDir], iteration: 4, balance: true })).rejects.toThrow(/iteration 4 has no trajectories \(sampled: 0, 1\)/);
  });

  it('the CLI prints the counts; a bad --iteration is a plain error', () => {
    const ok = rft(['verifier', 'data', runDir, '--out', path.join(runDir, 'vd-cli')]);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/6 examples \(3 YES, 3 NO, balanced\)/);
    expect(ok.stdout).toMatch(/4 duplicate patch/);
    const bad = rft(['verifier', 'data', runDir, '--iteration', 'last']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--iteration: "last" is not an iteration/);
  });
});
