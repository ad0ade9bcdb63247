import { appendFileSync, existsSync, linkSync, readdirSync, readFileSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { countPhase, phaseCounts, phaseSummaryFile, PhaseSummarySchema } from '../../src/loop/phase-summary.js';
import { instancesWithWork } from '../../src/loop/image-checks.js';
import { runLayout } from '../../src/loop/layout.js';
import { parsePagesSpec, PagesSpecError, pickPages, type PageCandidate } from '../../src/report/page-selection.js';
import { PAGE_INPUTS_FILE } from '../../src/report/page-reuse.js';
import { showTrajectories } from '../../src/report/show.js';
import { writeTrajectoryPages } from '../../src/report/trajectory-page.js';
import { indexFileOf, locateInstance } from '../../src/store/trajectory-index.js';
import { readTrajectoriesAt, readTrajectoryHeads } from '../../src/store/trajectories.js';
import { preflight, type ImageProbe } from '../../src/verify/preflight.js';
import { buildEvalSpec } from '../../src/verify/spec.js';
import { minigymInstances } from '../helpers/minigym.js';
import { writeFixtureRun } from '../report/fixture.js';

const ledgers = (runDir: string) => ({ trajectories: runLayout.trajectories(runDir, 0), verdicts: runLayout.verdicts(runDir, 0) });

describe("status's phase summary", () => {
  it('is written once, read while the ledgers are unchanged, and rebuilt when one is stale', () => {
    const { trajectories, verdicts } = ledgers(writeFixtureRun());
    const counted = countPhase(trajectories, verdicts);
    expect(existsSync(phaseSummaryFile(trajectories))).toBe(false);
    expect(phaseCounts(trajectories, verdicts)).toEqual(counted);
    const file = phaseSummaryFile(trajectories);
    const saved = PhaseSummarySchema.parse(JSON.parse(readFileSync(file, 'utf8')));
    expect(saved.trajectories_file!.size).toBe(statSync(trajectories).size);
    // Same stamps: the summary is what is read (a marked count proves the ledgers were not).
    writeFileSync(file, JSON.stringify({ ...saved, counts: { ...saved.counts, trajectories: 9999 } }));
    expect(phaseCounts(trajectories, verdicts).trajectories).toBe(9999);
    // A ledger's mtime changed (same size): stale, counted again and rewritten.
    const later = new Date(Date.now() + 5000);
    utimesSync(verdicts, later, later);
    expect(phaseCounts(trajectories, verdicts)).toEqual(counted);
    expect(PhaseSummarySchema.parse(JSON.parse(readFileSync(file, 'utf8'))).counts.trajectories).toBe(counted.trajectories);
    // A torn line appended (size changed): still the whole records only.
    appendFileSync(trajectories, '{"run":"torn');
    expect(phaseCounts(trajectories, verdicts)).toEqual(counted);
    // A damaged summary is a cache, not an error.
    writeFileSync(file, '{not json');
    expect(phaseCounts(trajectories, verdicts)).toEqual(counted);
  });
});

describe("show's offset index", () => {
  it('finds one record without a scan, survives a torn ledger tail and a torn index tail, and is rebuilt when the ledger no longer matches', () => {
    const runDir = writeFixtureRun();
    const { trajectories } = ledgers(runDir);
    const heads = [...readTrajectoryHeads(trajectories)];
    const target = heads.find((h) => h.head.sample_index === 1)!;
    const locate = () => locateInstance(trajectories, target.head.instance_id);
    const first = locate();
    expect(first.get(1)).toEqual(target.at);
    const [read] = [...readTrajectoriesAt(trajectories, [first.get(1)!])];
    expect([read!.instance_id, read!.sample_index]).toEqual([target.head.instance_id, 1]);
    const index = indexFileOf(trajectories);
    const indexBytes = statSync(index).size;

    // A torn ledger tail is not indexed, and the index is not grown by it.
    appendFileSync(trajectories, `{"run":"torn","instance_id":${JSON.stringify(target.head.instance_id)},"sample_index":99`);
    expect(locate()).toEqual(first);
    expect(statSync(index).size).toBe(indexBytes);
    // A torn index tail (a write cut off) is cut before the next append; look-ups are unchanged.
    appendFileSync(index, '{"instance_id":"half');
    expect(locate()).toEqual(first);
    // The ledger's torn tail cut and a whole record appended (a resume): the index grows by it.
    truncateSync(trajectories, target.at.offset + target.at.length + 1 > statSync(trajectories).size ? 0 : heads.at(-1)!.at.offset + heads.at(-1)!.at.length + 1);
    const lastLine = readFileSync(trajectories, 'utf8').split('\n').filter(Boolean).at(-1)!;
    const copy = JSON.parse(lastLine) as Record<string, unknown>;
    appendFileSync(trajectories, `${JSON.stringify({ ...copy, instance_id: target.head.instance_id, sample_index: 42 })}\n`);
    const grown = locate();
    expect(grown.get(42)).toBeDefined();
    expect(grown.get(1)).toEqual(target.at);
    expect(readFileSync(index, 'utf8').endsWith('\n')).toBe(true);
    // The ledger shorter than the index covers (replaced): rebuilt from the ledger.
    truncateSync(trajectories, heads[2]!.at.offset);
    const rebuilt = locate();
    expect(rebuilt.get(42)).toBeUndefined();
    expect([...rebuilt.values()].every((at) => at.offset < heads[2]!.at.offset)).toBe(true);
  });

  it("a fork's index shared by hard link is replaced, never appended to (the parent's stays as it was)", () => {
    const { trajectories } = ledgers(writeFixtureRun());
    const heads = [...readTrajectoryHeads(trajectories)];
    const id = heads[0]!.head.instance_id;
    locateInstance(trajectories, id);
    const index = indexFileOf(trajectories);
    const parentIndex = `${index}.parent`;
    linkSync(index, parentIndex);
    const before = readFileSync(parentIndex, 'utf8');
    const lastLine = readFileSync(trajectories, 'utf8').split('\n').filter(Boolean).at(-1)!;
    appendFileSync(trajectories, `${JSON.stringify({ ...(JSON.parse(lastLine) as object), instance_id: id, sample_index: 42 })}\n`);
    expect(locateInstance(trajectories, id).get(42)).toBeDefined();
    expect(readFileSync(parentIndex, 'utf8')).toBe(before);
    expect(statSync(index).nlink).toBe(1);
  });

  it('rft show prints one trajectory through the index', () => {
    const runDir = writeFixtureRun();
    const text = showTrajectories(runDir, { iteration: 0, instance: 'a', sample: 0 });
    expect(text).toContain('a');
    expect(existsSync(indexFileOf(ledgers(runDir).trajectories))).toBe(true);
    expect(() => showTrajectories(runDir, { iteration: 0, instance: 'a', sample: 77 })).toThrow(/has no sample 77 in iter-0 \(recorded: 0, 1/);
  });
});

describe('resume image checks', () => {
  const counting = (delayMs = 5) => {
    const calls: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const probe: ImageProbe = {
      has: async (image) => {
        calls.push(`has ${image}`);
        inFlight += 1;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((r) => setTimeout(r, delayMs));
        inFlight -= 1;
        return false;
      },
      registryProblem: async (image) => {
        calls.push(`registry ${image}`);
        return null;
      },
    };
    return { probe, calls, maxInFlight: () => maxInFlight };
  };
  const instances = (n: number) => {
    const [base] = minigymInstances();
    return Array.from({ length: n }, (_, i) => ({ ...base!, instance_id: `${base!.instance_id}-${i}` }));
  };

  it('a resume of a sampled iteration asks no engine and no registry', async () => {
    const train = instances(30);
    const toCheck = instancesWithWork(train, null, { done: new Set(['iter-0/sample']), iterations: 1, evalModels: [] });
    expect(toCheck).toEqual([]);
    const { probe, calls } = counting();
    const checked = await preflight(toCheck, { specFor: (i) => buildEvalSpec(i), imageFor: (i) => `img/${i.instance_id}`, dockers: [], pull: true, probes: [probe] });
    expect(checked).toEqual({ kept: [], excluded: [] });
    expect(calls).toEqual([]);
  });

  it('instances of phases not done are checked, each distinct image once, many at once (bounded)', async () => {
    const train = instances(40);
    const evalSet = instances(3).map((i) => ({ ...i, instance_id: `eval-${i.instance_id}` }));
    expect(instancesWithWork(train, evalSet, { done: new Set(['iter-0/sample', 'eval/m0']), iterations: 2, evalModels: [0, 1, 2] }).length).toBe(43);
    expect(instancesWithWork(train, evalSet, { done: new Set(['iter-0/sample', 'iter-1/sample']), iterations: 2, evalModels: [1, 2] }).map((i) => i.instance_id)).toEqual(evalSet.map((i) => i.instance_id));
    const { probe, calls, maxInFlight } = counting(20);
    const checked = await preflight([...train, train[0]!], { specFor: (i) => buildEvalSpec(i), imageFor: (i) => `img/${i.instance_id}`, dockers: [], pull: true, probes: [probe] });
    expect(checked.kept.length).toBe(41);
    expect(calls.filter((c) => c.startsWith('has ')).length).toBe(40);
    expect(calls.filter((c) => c.startsWith('registry ')).length).toBe(40);
    expect(maxInFlight()).toBeGreaterThan(1);
    expect(maxInFlight()).toBeLessThanOrEqual(16);
  });
});

describe('rft report --pages', () => {
  it('parses each mode and refuses anything else with the list of modes', () => {
    expect(parsePagesSpec(undefined)).toEqual({ kind: 'auto', cap: 1000 });
    expect(parsePagesSpec('all')).toEqual({ kind: 'all' });
    expect(parsePagesSpec('none')).toEqual({ kind: 'none' });
    expect(parsePagesSpec('failed')).toEqual({ kind: 'filters', filters: ['error'], cap: null });
    expect(parsePagesSpec('failed,kept')).toEqual({ kind: 'filters', filters: ['error', 'resolved'], cap: null });
    expect(parsePagesSpec('sample:3')).toEqual({ kind: 'sample', n: 3 });
    expect(() => parsePagesSpec('sample:x')).toThrow(PagesSpecError);
    expect(() => parsePagesSpec('everything')).toThrow(/not one of: auto, all, none, failed, kept, failed,kept, sample:N/);
  });

  it('picks a stable, bounded set', () => {
    const candidates: PageCandidate[] = Array.from({ length: 1500 }, (_, i) => ({ phase: 'iter-0', instance_id: `i${i % 50}`, sample_index: i, filter: i % 10 === 0 ? 'resolved' : i % 7 === 0 ? 'error' : 'unresolved' }));
    const auto = pickPages(candidates, parsePagesSpec(undefined));
    expect(auto.size).toBe(candidates.filter((c) => c.filter !== 'unresolved').length);
    expect(pickPages(candidates.slice(0, 900), parsePagesSpec(undefined)).size).toBe(900);
    const sample = pickPages(candidates, parsePagesSpec('sample:20'));
    expect(sample.size).toBe(20);
    expect(pickPages(candidates, parsePagesSpec('sample:20'))).toEqual(sample);
    expect(pickPages(candidates.slice(0, 10), parsePagesSpec('sample:20')).size).toBe(10);
    expect([...pickPages(candidates, parsePagesSpec('kept'))].every((i) => candidates[i]!.filter === 'resolved')).toBe(true);
  });

  it('writes pages only for what was asked, and reuses pages whose inputs did not change', () => {
    const runDir = writeFixtureRun();
    const out = path.join(runDir, 'pages-test');
    const pages = () => readdirSync(out).filter((f) => f.includes('--s'));
    const none = writeTrajectoryPages(runDir, 'run', out, null, parsePagesSpec('none'));
    expect([none.written, none.reused, pages().length]).toEqual([0, 0, 0]);
    expect(none.counts.all).toBeGreaterThan(0);
    expect(readFileSync(path.join(out, 'index.html'), 'utf8')).toContain('no page (rft report --pages)');
    const kept = writeTrajectoryPages(runDir, 'run', out, null, parsePagesSpec('kept'));
    expect(kept.written).toBe(kept.counts.resolved);
    expect(pages().length).toBe(kept.counts.resolved);
    const again = writeTrajectoryPages(runDir, 'run', out, null, parsePagesSpec('kept'));
    expect([again.written, again.reused]).toEqual([0, kept.written]);
    expect(JSON.parse(readFileSync(path.join(out, PAGE_INPUTS_FILE), 'utf8')).format).toBe(1);
    // Another link target is another input: every page is written again.
    const relinked = writeTrajectoryPages(runDir, 'run', out, '../report.html', parsePagesSpec('kept'));
    expect([relinked.written, relinked.reused]).toEqual([kept.written, 0]);
    const all = writeTrajectoryPages(runDir, 'run', out, '../report.html', parsePagesSpec('all'));
    expect(all.written + all.reused).toBe(all.counts.all);
    // A kept page is reused unless its previous/next links changed (they link only pages that exist).
    expect(all.reused).toBeGreaterThan(0);
    expect(all.reused).toBeLessThanOrEqual(kept.written);
    const allAgain = writeTrajectoryPages(runDir, 'run', out, '../report.html', parsePagesSpec('all'));
    expect([allAgain.written, allAgain.reused]).toEqual([0, all.counts.all]);
  });
});
