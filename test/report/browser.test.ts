import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReport } from '../../src/report/write.js';
import { SCRIPT_ERROR, writeFixtureRun } from './fixture.js';

/**
 * The generated report.html of the hand-built run in a real headless Chromium (Debian's
 * `chromium` package driven by playwright-core): every chart draws, nothing is fetched, the page
 * fits a phone's width. `npm test` installs Chromium first (pretest → scripts/setup-chromium.sh);
 * a missing one fails the test rather than skipping it.
 */

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

interface ChartCheck {
  kind: string;
  marks: number;
  drawn: number;
  width: number;
}

/** Runs in the page: per <svg data-chart>, its data marks and how many have a non-zero box. */
const CHECK_CHARTS = `(() => [...document.querySelectorAll('svg[data-chart]')].map((svg) => {
  const marks = [...svg.querySelectorAll('.mark')];
  const drawn = marks.filter((m) => { const b = m.getBoundingClientRect(); return b.width > 0 && b.height > 0; });
  return { kind: svg.getAttribute('data-chart'), marks: marks.length, drawn: drawn.length, width: svg.getBoundingClientRect().width };
}))()`;

describe('report.html in headless Chromium', () => {
  let browser: Browser;
  let html: string;
  let screenshotDir: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: the report's browser test needs Debian's chromium. Install it with ` +
          '`bash scripts/setup-chromium.sh` (npm test runs it before the suite)',
      );
    }
    const runDir = writeFixtureRun();
    html = createReport({ runDirs: [runDir] }).files.html;
    screenshotDir = mkdtempSync(path.join(tmpdir(), 'rft-report-shot-'));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('draws every chart, fetches nothing but the file, and shows escaped text as text', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const url = pathToFileURL(html).href;
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    const response = await page.goto(url, { waitUntil: 'load' });
    expect(response?.ok()).toBe(true);

    const charts = await page.evaluate<ChartCheck[]>(CHECK_CHARTS);
    expect(charts.map((c) => c.kind).sort()).toEqual(['error-rates', 'llm-calls', 'llm-calls', 'resolve-rate', 'success-count', 'success-count', 'tokens', 'tokens']);
    for (const c of charts) {
      expect(c.drawn, `${c.kind}: drawn marks`).toBeGreaterThan(0);
      expect(c.width, `${c.kind}: width`).toBeGreaterThan(200);
    }
    // The resolve-rate chart: 4 points (train M0, M1; eval M0, M1) and 2 lines, all visible.
    expect(charts.find((c) => c.kind === 'resolve-rate')).toMatchObject({ marks: 6, drawn: 6 });

    const text = await page.evaluate<string>('document.body.innerText');
    expect(text).toContain(SCRIPT_ERROR);
    expect(text).toContain('4/9 (44.4%)');
    expect(await page.evaluate<number>("document.querySelectorAll('script').length")).toBe(0);

    const others = requests.filter((u) => u !== url);
    expect(others).toEqual([]);
    expect(requests).toEqual([url]);

    const shot = path.join(screenshotDir, 'report-1280.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(20_000);
    await page.close();
  });

  it('fits a phone-wide window: charts shrink, wide tables scroll inside their box', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await page.goto(pathToFileURL(html).href, { waitUntil: 'load' });
    const overflow = await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth');
    expect(overflow).toBeLessThanOrEqual(0);
    const charts = await page.evaluate<ChartCheck[]>(CHECK_CHARTS);
    for (const c of charts) {
      expect(c.drawn, c.kind).toBeGreaterThan(0);
      expect(c.width, c.kind).toBeLessThanOrEqual(390);
    }
    const shot = path.join(screenshotDir, 'report-390.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(10_000);
    await page.close();
  });
});
