import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { LABEL } from '../../src/sandbox/container.js';
import { connectEngine } from '../../src/sandbox/engine.js';
import { imageExists } from '../../src/sandbox/images.js';
import { readRecords } from '../../src/store/ledger.js';
import type { Candidate } from '../../src/synth/candidate.js';
import { writeIssue } from '../../src/synth/registry.js';
import { DEFAULT_BOUNDS } from '../../src/synth/judge.js';
import { ledgerFile, synthesize, type SynthResult } from '../../src/synth/pipeline.js';
import { SynthRecordSchema, type CandidateRecord, type TraceRecord } from '../../src/synth/records.js';
import type { StrategyInput } from '../../src/synth/strategy.js';
import { imageNameFor } from '../../src/tasks/image-name.js';
import { buildEvalSpec } from '../../src/verify/spec.js';
import { validateTasks } from '../../src/verify/validate.js';
import { minigymInstance } from '../helpers/minigym.js';
import { swapStrategy } from '../helpers/synth-strategy.js';

/**
 * The pipeline on one bundled environment (minigym iniform at its base commit), with candidates
 * of the test's own making, one per outcome: a real bug, a no-op, one that breaks every test, a
 * flaky one (fails on its first run only), one that hangs, and the real bug again.
 */
const LIMITS = { memoryBytes: 1024 ** 3, cpus: 1, pids: 256 };
const TIMEOUT_S = 25;

function edit(target: StrategyInput['targets'][number], text: string, after: string, kind: string): Candidate {
  return { strategy: 'crafted', kind, functions: [target], edits: [{ path: target.file, before: text, after }], description: kind };
}

async function crafted(input: StrategyInput): Promise<Candidate[]> {
  const target = input.targets.find((t) => t.file === 'iniform/convert.py' && t.name === 'to_bool');
  if (!target) throw new Error('the trace did not list iniform/convert.py:to_bool');
  const text = await input.repo.readFile(target.file);
  const body = '    if isinstance(value, bool):\n';
  const inBody = (lines: string) => text.replace(body, `${lines}${body}`);
  const bug = text.replace('    "on": True,', '    "on": False,');
  return [
    edit(target, text, bug, 'real_bug'),
    edit(target, text, inBody('    # a comment changes nothing\n'), 'no_op'),
    edit(target, text, `raise RuntimeError("broken import")\n${text}`, 'all_break'),
    edit(target, text, inBody('    import os\n    if not os.path.exists("/tmp/rft-flaky-once"):\n        open("/tmp/rft-flaky-once", "w").close()\n        raise RuntimeError("first run only")\n'), 'flaky'),
    edit(target, text, inBody('    import time\n    time.sleep(600)\n'), 'hang'),
    edit(target, text, bug, 'real_bug_again'),
  ];
}

describe('rft tasks synth pipeline on a bundled repository', () => {
  let out: string;
  let result: SynthResult;
  let records: ReturnType<typeof SynthRecordSchema.parse>[];

  beforeAll(async () => {
    out = path.join(mkdtempSync(path.join(tmpdir(), 'rft-synth-')), 'tasks.jsonl');
    result = await synthesize({
      docker: await connectEngine(),
      sources: [minigymInstance('minigym__iniform-201'), minigymInstance('minigym__iniform-202')],
      imageFor: (i) => imageNameFor(i.instance_id, 'swebench'),
      out,
      concurrency: 1,
      seed: 7,
      limit: 5,
      maxCandidates: 6,
      strategies: [swapStrategy(crafted)],
      bounds: DEFAULT_BOUNDS,
      timeoutS: TIMEOUT_S,
      pythonEnv: 'auto',
      traceScope: 'instance',
      limits: LIMITS,
      imageTemplate: 'synth',
      issueText: writeIssue,
    });
    records = [...readRecords(ledgerFile(out), SynthRecordSchema)];
  }, 400_000);

  it('traces once per environment (two instances at one commit are one) and maps tests to the functions they run', () => {
    const traces = records.filter((r): r is TraceRecord => r.type === 'trace');
    expect(traces.map((t) => t.env)).toEqual(['minigym__iniform-201']);
    const trace = traces[0]!;
    const test = trace.tests['tests/test_convert.py::test_bad_bool'];
    expect(test?.file).toBe('tests/test_convert.py');
    const names = test!.functions.map((i) => trace.functions[i]!);
    const source = readFileSync(path.resolve(import.meta.dirname, '../fixtures/minigym/repos/iniform/iniform/convert.py'), 'utf8').split('\n');
    const def = source.findIndex((l) => l.startsWith('def to_bool(')) + 1;
    expect(names).toContainEqual({ file: 'iniform/convert.py', name: 'to_bool', start_line: def, end_line: def + 7 });
    // Test code is never a target; ConversionError.__init__ runs in test_bad_bool.
    expect(names.every((f) => !f.file.startsWith('tests/'))).toBe(true);
    expect(names.map((f) => f.name)).toContain('ConversionError.__init__');
    expect(trace.pass_before).toContain('tests/test_convert.py::test_truthy[On]');
  });

  it('keeps the real bug and rejects the others with their reasons', () => {
    const outcomes = records
      .filter((r): r is CandidateRecord => r.type === 'candidate')
      .map((r) => [r.kind, r.outcome.valid ? 'valid' : r.outcome.reason, r.test_runs]);
    expect(outcomes).toEqual([
      ['real_bug', 'valid', 2],
      ['no_op', 'no_failure', 1],
      ['all_break', 'too_many_failures', 1],
      ['flaky', 'flaky', 2],
      ['hang', 'timeout', 1],
      ['real_bug_again', 'duplicate', 0],
    ]);
    expect(result.report.total).toMatchObject({ candidates: 6, valid: 1, rejected: { duplicate: 1, no_failure: 1, flaky: 1, timeout: 1, too_many_failures: 1 } });
    expect(result.report.by_strategy.crafted?.valid).toBe(1);
    expect(result.report.by_repository['minigym/iniform']?.candidates).toBe(6);
  });

  it('writes a SWE-bench instance with provenance, an image with the bug committed, and a gold patch that validates', async () => {
    expect(result.tasks).toHaveLength(1);
    const task = result.tasks[0]!;
    expect(task.FAIL_TO_PASS).toEqual(['tests/test_convert.py::test_truthy[On]']);
    expect(task.PASS_TO_PASS).toContain('tests/test_convert.py::test_falsy[OFF]');
    expect(task.base_commit).toMatch(/^[0-9a-f]{40}$/);
    expect(task.base_commit).not.toBe(minigymInstance('minigym__iniform-201').base_commit);
    expect(task.patch).toContain('-    "on": False,\n+    "on": True,');
    expect(task.problem_statement).not.toContain('"on"');
    expect(task.synth).toMatchObject({ strategy: 'crafted', kind: 'real_bug', file: 'iniform/convert.py', function: 'to_bool', validation_runs: 2, source_instance: 'minigym__iniform-201', issue_text_source: 'template' });
    expect(readFileSync(out, 'utf8')).toBe(`${JSON.stringify(task)}\n`);
    const docker = await connectEngine();
    expect(await imageExists(docker, imageNameFor(task.instance_id, 'synth'))).toBe(true);
    const ctx = { docker, imageFor: (i: { instance_id: string }) => imageNameFor(i.instance_id, 'synth'), limits: LIMITS, labels: { [LABEL.run]: 'synth-test-validate' } };
    const [row] = await validateTasks(ctx, result.tasks, (i) => buildEvalSpec(i, { timeout_s: 120 }), 1);
    expect(row).toMatchObject({ valid: true, gold: { outcome: 'resolved' }, empty: { outcome: 'unresolved' } });
    expect(Object.keys(row!.gold.tests)).toContain('tests/test_convert.py::test_truthy[On]');
  }, 200_000);
});
