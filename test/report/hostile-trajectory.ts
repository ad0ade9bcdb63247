import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { TrajectorySchema, type Trajectory } from '../../src/agent/trajectory.js';
import { runLayout } from '../../src/loop/layout.js';
import { Ledger } from '../../src/store/ledger.js';
import { normalizePatch, patchHash } from '../../src/verify/patch.js';
import { VerdictSchema } from '../../src/verify/verdict.js';
import { makeTrajectory, SPEC_HASH } from '../sft/records.js';

/**
 * A trajectory no reader should trust, appended to iter-0 of a fixture run: a 1 MB prompt, HTML
 * and a script tag in what the model saw and wrote, terminal escape sequences, a NUL byte and a
 * bidi override; verified `unresolved` with a failing test and a pytest log kept beside the verdict.
 */
export const EVIL_ID = 'evil/<b>inst</b>';
export const EVIL_SCRIPT = '<script>alert("trajectory")</script>';
export const EVIL_CODE = 'def f():\n    return "<img src=x onerror=alert(1)>"';
export const ESCAPE = '\u001b[31mRED\u001b[0m';
export const BIDI = 'abc\u202edcba';
export const BIG_LINE = 'x = 1  # filler\n';
export const BIG_PROMPT = `${EVIL_CODE}\n${BIG_LINE.repeat(Math.ceil((1024 * 1024) / BIG_LINE.length))}END-OF-PROMPT`;
export const FAILING_TEST = 'tests/test_evil.py::test_<tag>';
export const LOG_LINE = 'E   AssertionError: <div>expected</div> \u0000 got';

export function appendHostileTrajectory(runDir: string): Trajectory {
  const base = makeTrajectory({ instance_id: EVIL_ID, sample_index: 0, calls: ['SearchCode', 'IdentifyCode', 'EditCode'] });
  const calls = base.calls.map((c, i) => ({
    ...c,
    messages: [
      { role: 'system' as const, content: `You are an agent. ${EVIL_SCRIPT}` },
      { role: 'user' as const, content: i === 1 ? BIG_PROMPT : `Issue: ${ESCAPE} ${BIDI}` },
    ],
    completion: { role: 'assistant' as const, content: i === 2 ? `<replace>\n${EVIL_SCRIPT}\n</replace>` : `{"query": "${i}"}` },
  }));
  const patch = `diff --git a/evil.py b/evil.py\n--- a/evil.py\n+++ b/evil.py\n@@ -1 +1 @@\n-old\n+${EVIL_SCRIPT}\n`;
  const t = TrajectorySchema.parse({ ...base, run: 'tiny', model: 'base-model', calls, patch, transitions: [{ from: 'SearchCode', to: 'IdentifyCode', trigger: 'did_search' }] });
  const ledger = Ledger.open(runLayout.trajectories(runDir, 0), TrajectorySchema).ledger;
  ledger.append(t);
  ledger.close();
  const verdict = VerdictSchema.parse({
    instance_id: EVIL_ID,
    patch_hash: patchHash(normalizePatch(patch)),
    spec_hash: SPEC_HASH,
    outcome: 'unresolved',
    reason: null,
    apply_method: 'git_apply',
    test_exit_code: 1,
    tests: { [FAILING_TEST]: 'FAILED', 'tests/test_ok.py::test_ok': 'PASSED' },
    report: { FAIL_TO_PASS: { success: [], failure: [FAILING_TEST] }, PASS_TO_PASS: { success: ['tests/test_ok.py::test_ok'], failure: [] } },
    log_truncated: false,
    duration_ms: 10,
    created_at: '2025-01-01T01:00:00.000Z',
  });
  const v = Ledger.open(runLayout.verdicts(runDir, 0), VerdictSchema).ledger;
  v.append(verdict);
  v.close();
  const log = runLayout.verifyLog(runLayout.verdicts(runDir, 0), EVIL_ID, verdict.patch_hash);
  mkdirSync(path.dirname(log), { recursive: true });
  writeFileSync(log, ['collected 2 items', '', '=================================== FAILURES ===================================', `___ test_<tag> ___`, LOG_LINE, '=========================== short test summary info ============================', `FAILED ${FAILING_TEST}`].join('\n'));
  return t;
}
