import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { showTrajectories, ShowError } from '../../src/report/show.js';
import { INDEX_PAGES, trajectoryPageName } from '../../src/report/trajectory-page.js';
import { collapse, logExcerpt, prettyJson, trajectoryView, visible } from '../../src/report/trajectory-view.js';
import { makeTrajectory } from '../sft/records.js';
import { createReport } from '../../src/report/write.js';
import { rft } from '../cli/helpers.js';
import { appendSample, writeFixtureRun } from './fixture.js';
import { appendHostileTrajectory, BIDI, EVIL_ID, EVIL_SCRIPT, FAILING_TEST, LOG_LINE } from './hostile-trajectory.js';

describe('rft show', () => {
  let runDir: string;
  beforeAll(() => {
    runDir = writeFixtureRun();
    appendHostileTrajectory(runDir);
  });

  it('lists the instances of a phase with each sample\'s verdict', () => {
    const text = showTrajectories(runDir, {});
    expect(text).toContain('iter-0: 4 instances');
    expect(text).toMatch(/\ba {2}#0✓resolved {2}#1✓resolved {2}#2✗unresolved/);
    // b#2 ended in a model error with no patch: an empty patch (∅), not an error (!); c#2's real
    // record (apply_failed) replaces its infrastructure error.
    expect(text).toContain('#2∅empty_patch');
    expect(text).toContain('∅ empty patch, ! error (harness or endpoint)');
    expect(text).toContain('#2✗apply_failed');
    expect(showTrajectories(runDir, { eval: 1 })).toContain('eval/m1: 3 instances');
  });

  it('prints one trajectory: states, new prompt text, actions, patch, verdict, failing tests and the log excerpt', () => {
    const text = showTrajectories(runDir, { instance: EVIL_ID, sample: 0 });
    expect(text).toContain('states: SearchCode → IdentifyCode → EditCode');
    expect(text).toContain('── call 2 · IdentifyCode');
    expect(text).toContain('▶ action:');
    expect(text).toContain(`+${EVIL_SCRIPT}`);
    expect(text).toContain('unresolved · applied with git_apply · test exit code 1');
    expect(text).toContain(`✗ FAIL_TO_PASS ${FAILING_TEST} (FAILED)`);
    expect(text).toContain('1 listed tests passed, 1 failed');
    expect(text).toContain('── test log');
    expect(text).toContain('E   AssertionError: <div>expected</div> \\x00 got');
    // The 1 MB prompt is collapsed, and nothing a model wrote reaches the terminal raw.
    expect(text.length).toBeLessThan(40_000);
    expect(text).toMatch(/⋯ \[\d+ lines, \d+ characters collapsed; --full shows everything\]/);
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f\u202e]/);
    expect(text).toContain('\\x1b[31mRED\\x1b[0m');
    expect(text).toContain('abc<U+202E>dcba');
    const full = showTrajectories(runDir, { instance: EVIL_ID, sample: 0, full: true });
    expect(full.length).toBeGreaterThan(1024 * 1024);
    expect(full).toContain('END-OF-PROMPT');
  });

  it('shows only what each call added to the prompt', () => {
    const text = showTrajectories(runDir, { instance: 'a', sample: 0 });
    expect(text).toContain('── call 1 · SearchCode (new prompt');
    expect(text).toContain('Issue of a, sample 0, call 0');
    expect(text).toContain('resolved');
  });

  it('lists instances in id order (numbers as numbers), marks an error apart from an empty patch, and lists only --instance-ids', () => {
    const own = writeFixtureRun();
    appendSample(own, 0, { id: 'a10', sample: 0, calls: 1, verdicts: ['resolved'] });
    appendSample(own, 0, { id: 'a9', sample: 0, calls: 1, verdicts: ['error'] });
    const listed = showTrajectories(own, {}).split('\n').filter((l) => /^ {2}\S+ {2}#/.test(l)).map((l) => l.trim().split(/\s+/)[0]);
    expect(listed).toEqual(['a', 'a9', 'a10', 'b', 'c']);
    expect(showTrajectories(own, {})).toMatch(/a9 {2}#0!error/);
    const picked = showTrajectories(own, { instanceIds: ['c', 'a9'] });
    expect(picked).toContain('iter-0: 2 instances');
    expect(picked).toMatch(/\n {2}a9 {2}#0!error\n {2}c {2}#0/);
    expect(() => showTrajectories(own, { instanceIds: ['a', 'zz', 'yy'] })).toThrow(/--instance-ids: iter-0 has no trajectory of "zz", "yy"/);
    expect(() => showTrajectories(own, { instance: 'a', instanceIds: ['a'] })).toThrow(/not both/);
  });

  it('says what there is when the asked-for trajectory is not', () => {
    expect(() => showTrajectories(runDir, { instance: 'zz' })).toThrow(ShowError);
    expect(() => showTrajectories(runDir, { instance: 'zz' })).toThrow(/has no trajectory of instance "zz"; `rft show .*` lists the instances/);
    expect(() => showTrajectories(runDir, { instance: 'a', sample: 9 })).toThrow('a has no sample 9 in iter-0 (recorded: 0, 1, 2)');
    expect(() => showTrajectories(runDir, { iteration: 7 })).toThrow('has no trajectories for iter-7 (recorded: iter-0, iter-1, eval/m0, eval/m1)');
    expect(() => showTrajectories(path.dirname(runDir), {})).toThrow(/is not a run directory.*rft run <recipe.yaml>/);
  });

  it('runs from the CLI', () => {
    const ok = rft(['show', runDir, '--instance', 'a', '--sample', '1']);
    expect(ok.stderr).toBe('');
    expect(ok.status).toBe(0);
    expect(ok.stdout).toContain('a · sample 1 · iter-0 of run tiny');
    expect(ok.stdout).toContain('✗ not a valid action: unparsable JSON');
    const bad = rft(['show', runDir, '--instance', 'a', '--sample', '9']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('rft: a has no sample 9 in iter-0');
  });
});

describe('trajectory pages of the report', () => {
  it('writes one page per trajectory and four index pages, linked from report.html, every text escaped', () => {
    const runDir = writeFixtureRun();
    appendHostileTrajectory(runDir);
    const { files } = createReport({ runDirs: [runDir] });
    const dir = path.join(runDir, 'trajectories');
    expect(files.trajectories).toEqual([path.join(dir, 'index.html')]);
    const report = readFileSync(files.html, 'utf8');
    expect(report).toContain('href="trajectories/index.html">all 25</a>');
    expect(report).toContain('href="trajectories/resolved.html">resolved 12</a> · <a href="trajectories/unresolved.html">unresolved 12</a> · <a href="trajectories/error.html">error 1</a>');
    const index = readFileSync(path.join(dir, INDEX_PAGES.all), 'utf8');
    const evilPage = trajectoryPageName('iter-0', EVIL_ID, 0);
    expect(index).toContain(`href="${evilPage}"`);
    expect(readFileSync(path.join(dir, INDEX_PAGES.resolved), 'utf8')).not.toContain(evilPage);
    expect(readFileSync(path.join(dir, INDEX_PAGES.unresolved), 'utf8')).toContain(evilPage);
    const page = readFileSync(path.join(dir, evilPage), 'utf8');
    expect(page).not.toContain('<script');
    expect(page).not.toContain('<img');
    expect(page).toContain('&lt;script&gt;alert(&quot;trajectory&quot;)&lt;/script&gt;');
    expect(page).toContain(escapeText(BIDI).replace('\u202e', '&lt;U+202E&gt;'));
    expect(page).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u202e]/);
    expect(page).toContain('E   AssertionError: &lt;div&gt;expected&lt;/div&gt; \\x00 got');
    expect(statSync(path.join(dir, evilPage)).size).toBeGreaterThan(1024 * 1024);
    expect(LOG_LINE).toContain('\u0000');
  });
});

function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

describe('trajectory view helpers', () => {
  it('collapses long text by lines or by characters, and keeps short text whole', () => {
    expect(collapse('short')).toBeNull();
    const lines = Array.from({ length: 100 }, (_, i) => `line ${i}`).join('\n');
    expect(collapse(lines)).toMatchObject({ hiddenLines: 75 });
    expect(collapse('y'.repeat(100_000))).toMatchObject({ hiddenLines: 0, hiddenChars: 100_000 - 4500 - 1200 });
  });

  it('keeps a pytest log from its FAILURES section, else its tail', () => {
    const log = ['a', 'b', '==== FAILURES ====', 'boom', '==== short test summary info ====', 'FAILED t'].join('\n');
    expect(logExcerpt(log)).toBe('… (2 earlier lines)\n==== FAILURES ====\nboom\n==== short test summary info ====\nFAILED t');
    expect(logExcerpt(Array.from({ length: 10 }, (_, i) => `l${i}`).join('\n'), 3)).toBe('… (7 earlier lines)\nl7\nl8\nl9');
  });

  it('re-indents JSON by moving whitespace only, and leaves anything else as written', () => {
    expect(prettyJson('{"a": 1.0, "b": ["x,y", {}], "c": "\\u00e9 \\"q\\""}')).toBe('{\n  "a": 1.0,\n  "b": [\n    "x,y",\n    {}\n  ],\n  "c": "\\u00e9 \\"q\\""\n}');
    expect(prettyJson('not json {')).toBe('not json {');
    expect(prettyJson('{"a": ')).toBe('{"a": ');
  });

  it('lists each state\'s system prompt once, its schema apart, and the calls refer to it', () => {
    const t = makeTrajectory({ instance_id: 'x', sample_index: 0, calls: ['SearchCode', 'IdentifyCode', 'SearchCode'] });
    const system = (state: string) => ({ role: 'system' as const, content: `Workflow step: ${state}\nReply with JSON:\n{"type":"object","properties":{"q":{"type":"string"}}}` });
    const calls = t.calls.map((c) => ({ ...c, messages: [system(c.state), { role: 'user' as const, content: `go ${c.state}` }], completion: { role: 'assistant' as const, content: '{"q": "a"}' } }));
    const v = trajectoryView('iter-0', { ...t, calls }, null, null);
    expect(v.prompts.map((p) => [p.state, p.calls])).toEqual([['SearchCode', [1, 3]], ['IdentifyCode', [2]]]);
    expect(v.prompts[0]!.text).toBe('Workflow step: SearchCode\nReply with JSON:');
    expect(v.prompts[0]!.schema).toBe('{\n  "type": "object",\n  "properties": {\n    "q": {\n      "type": "string"\n    }\n  }\n}');
    expect(v.steps[2]!.shown[0]).toEqual({ role: 'system', text: '', prompt: 0 });
    expect(v.steps[0]!.action.text).toBe('{\n  "q": "a"\n}');
  });

  it('makes control and bidi characters visible', () => {
    expect(visible('a\u0000b\tc\nd\u001b[0m\u202e\u0085')).toBe('a\\x00b\tc\nd\\x1b[0m<U+202E>\\x85');
  });
});
