import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trajectoryPageName } from '../../src/report/trajectory-page.js';
import { createReport } from '../../src/report/write.js';
import { writeFixtureRun } from './fixture.js';
import { appendHostileTrajectory, EVIL_CODE, EVIL_ID, EVIL_SCRIPT, FAILING_TEST } from './hostile-trajectory.js';

/**
 * The report's trajectory pages in headless Chromium (as browser.test.ts: Debian's chromium,
 * installed by npm test's pretest): the filters are separate pages reached by plain links, a
 * trajectory with a 1 MB prompt and hostile text renders that text as text, nothing runs and
 * nothing is fetched but the page itself.
 */

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

describe('trajectory pages in headless Chromium', () => {
  let browser: Browser;
  let dir: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run \`bash scripts/setup-chromium.sh\` (npm test runs it before the suite)`);
    const runDir = writeFixtureRun();
    appendHostileTrajectory(runDir);
    dir = path.dirname(createReport({ runDirs: [runDir] }).files.trajectories[0]!);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  });

  afterAll(async () => {
    await browser?.close();
  });

  /** Opens a page and records every request and dialog it makes. */
  async function open(file: string, width = 1280): Promise<{ page: Page; requests: string[]; dialogs: string[]; url: string }> {
    const page = await browser.newPage({ viewport: { width, height: 900 } });
    const requests: string[] = [];
    const dialogs: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    const url = pathToFileURL(path.join(dir, file)).href;
    const response = await page.goto(url, { waitUntil: 'load' });
    expect(response?.ok()).toBe(true);
    return { page, requests, dialogs, url };
  }

  it('filters by following links between index pages, no script needed', async () => {
    const { page, requests, url } = await open('index.html');
    expect(requests).toEqual([url]);
    expect(await page.evaluate<number>("document.querySelectorAll('script').length")).toBe(0);
    expect(await page.evaluate<number>("document.querySelectorAll('td a').length")).toBe(25);
    await page.click('nav a[href="resolved.html"]');
    await page.waitForURL(/resolved\.html$/);
    const resolved = await page.evaluate<string>('document.body.innerText');
    expect(resolved).toContain('resolved (12)');
    expect(await page.evaluate<number>("document.querySelectorAll('td a').length")).toBe(12);
    expect(resolved).not.toContain(EVIL_ID);
    await page.click('nav a[href="unresolved.html"]');
    await page.waitForURL(/unresolved\.html$/);
    expect(await page.evaluate<string>('document.body.innerText')).toContain(EVIL_ID);
    await page.click('nav a[href="error.html"]');
    await page.waitForURL(/error\.html$/);
    expect(await page.evaluate<number>("document.querySelectorAll('td a').length")).toBe(1);
    await page.close();
  });

  it('shows a 1 MB prompt and hostile text as text, runs nothing, fetches nothing', async () => {
    const file = trajectoryPageName('iter-0', EVIL_ID, 0);
    expect(statSync(path.join(dir, file)).size).toBeGreaterThan(1024 * 1024);
    const { page, requests, dialogs, url } = await open(file);
    const text = await page.evaluate<string>('document.body.innerText');
    expect(text).toContain(EVIL_ID);
    expect(text).toContain(EVIL_SCRIPT);
    expect(text).toContain(EVIL_CODE.split('\n')[1]!.trim());
    expect(text).toContain('\\x1b[31mRED\\x1b[0m');
    expect(text).toContain('abc<U+202E>dcba');
    expect(text).toContain(FAILING_TEST);
    expect(text).toContain('AssertionError: <div>expected</div> \\x00 got');
    expect(await page.evaluate<number>("document.querySelectorAll('script, img, iframe, object').length")).toBe(0);
    // The big prompt is collapsed; opening its <details> (no script) shows all of it.
    expect(await page.evaluate<boolean>("document.body.innerText.includes('END-OF-PROMPT')")).toBe(false);
    await page.click('details summary');
    expect(await page.evaluate<boolean>("document.body.innerText.includes('END-OF-PROMPT')")).toBe(true);
    expect(requests).toEqual([url]);
    expect(dialogs).toEqual([]);
    // Back to the index through its link.
    await page.click('nav a[href="index.html"]');
    await page.waitForURL(/index\.html$/);
    await page.close();
  });

  it('fits a phone-wide window', async () => {
    const { page } = await open(trajectoryPageName('iter-0', EVIL_ID, 0), 390);
    expect(await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth')).toBeLessThanOrEqual(0);
    await page.close();
  });
});
