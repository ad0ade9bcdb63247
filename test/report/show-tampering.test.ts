import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runLayout } from '../../src/loop/layout.js';
import { showTrajectories } from '../../src/report/show.js';
import type { Tampering } from '../../src/verify/tampering.js';
import { writeFixtureRun } from './fixture.js';

const TAMPERING: Tampering = {
  reasons: [{ rule: 'pytest_reporting', file: 'pkg/mod.py', line: 12, detail: "pytest's report, runner or junit internals: import _pytest.reports as r" }],
};

describe('rft show on a verdict that carries tampering', () => {
  it('marks the sample in the lists and prints each reason with its file and line', () => {
    const runDir = writeFixtureRun();
    const file = runLayout.verdicts(runDir, 0);
    // The first resolved verdict of instance a gets a tampering record, as verifyPatch writes it.
    let marked = false;
    const lines = readFileSync(file, 'utf8').split('\n').map((line) => {
      if (line === '' || marked) return line;
      const verdict = JSON.parse(line) as Record<string, unknown>;
      if (verdict.instance_id !== 'a' || verdict.outcome !== 'resolved') return line;
      marked = true;
      // Before `reason`, where the verdict schema puts it: the list reads only the records' heads.
      const { reason, ...head } = verdict;
      return JSON.stringify({ ...head, tampering: TAMPERING, reason });
    });
    expect(marked).toBe(true);
    writeFileSync(file, lines.join('\n'));

    const list = showTrajectories(runDir, {});
    expect(list).toMatch(/✓resolved⚠tampering/);
    const samples = showTrajectories(runDir, { instance: 'a' });
    const flagged = samples.split('\n').filter((l) => l.includes('tampering: pytest_reporting'));
    expect(flagged.length).toBeGreaterThan(0);
    const sample = Number(/#(\d+)/.exec(flagged[0]!)![1]);
    const text = showTrajectories(runDir, { instance: 'a', sample });
    expect(text).toContain('⚠ tampering: not trained on unless select.allow_tampering');
    expect(text).toContain("⚠ pytest_reporting pkg/mod.py:12: pytest's report, runner or junit internals: import _pytest.reports as r");
  });
});
