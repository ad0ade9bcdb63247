import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import yargs from 'yargs';
import { reportCommand } from '../../src/cli/report.js';
import { ReportDataSchema } from '../../src/report/data.js';
import { writeFixtureRun } from './fixture.js';

async function runCli(args: string[]): Promise<string> {
  let out = '';
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += String(chunk);
    return true;
  });
  try {
    await yargs(args).command(reportCommand).strict().fail((message, error) => {
      throw error ?? new Error(message);
    }).parseAsync();
  } finally {
    spy.mockRestore();
  }
  return out;
}

describe('rft report', () => {
  afterEach(() => vi.restoreAllMocks());

  it('writes report.md and report.html into the first run folder by default', async () => {
    const runDir = writeFixtureRun();
    const out = await runCli(['report', runDir]);
    expect(out).toMatch(/^wrote .*report\.md and .*report\.html\n/);
    expect(out).toContain('tiny: eval M0 33.3% → M1 66.7% (mean over samples); 2 dataset(s), 3 fine-tune record(s)');
    const md = readFileSync(path.join(runDir, 'report.md'), 'utf8');
    const html = readFileSync(path.join(runDir, 'report.html'), 'utf8');
    expect(md).toContain('| tiny | M1 | tiny-m1 | 5/9 (55.6%) |');
    expect(html).toContain('data-chart="resolve-rate"');
  });

  it('--out and several runs: one report with both; --json prints the whole data', async () => {
    const a = writeFixtureRun();
    const b = writeFixtureRun();
    const outDir = path.join(mkdtempSync(path.join(tmpdir(), 'rft-report-out-')), 'nested');
    const printed = await runCli(['report', a, b, '--out', outDir, '--json']);
    const data = ReportDataSchema.parse(JSON.parse(printed));
    expect(data.runs.map((r) => r.dir)).toEqual([path.resolve(a), path.resolve(b)]);
    expect(data.runs[1]!.train[0]!.resolved).toBe(4);
    expect(existsSync(path.join(outDir, 'report.md'))).toBe(true);
    expect(existsSync(path.join(outDir, 'report.html'))).toBe(true);
    expect(existsSync(path.join(a, 'report.html'))).toBe(false);
    expect(readFileSync(path.join(outDir, 'report.html'), 'utf8')).toContain(`tiny (${path.resolve(b)})`);
  });

  it('needs at least one run directory', async () => {
    await expect(runCli(['report'])).rejects.toThrow(/Not enough non-option arguments/);
  });
});
