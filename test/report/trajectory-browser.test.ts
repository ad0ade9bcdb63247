import { existsSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instancePageName, trajectoryPageName } from '../../src/report/trajectory-page.js';
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
    expect(await page.evaluate<number>("document.querySelectorAll('td a[href*=\"--s\"]').length")).toBe(25);
    // Each instance row links its instance page.
    expect(await page.evaluate<number>("document.querySelectorAll('td:first-child a').length")).toBe(13);
    await page.click('nav a[href="resolved.html"]');
    await page.waitForURL(/resolved\.html$/);
    const resolved = await page.evaluate<string>('document.body.innerText');
    expect(resolved).toContain('resolved (12)');
    expect(await page.evaluate<number>("document.querySelectorAll('td a[href*=\"--s\"]').length")).toBe(12);
    expect(resolved).not.toContain(EVIL_ID);
    await page.click('nav a[href="unresolved.html"]');
    await page.waitForURL(/unresolved\.html$/);
    expect(await page.evaluate<string>('document.body.innerText')).toContain(EVIL_ID);
    await page.click('nav a[href="error.html"]');
    await page.waitForURL(/error\.html$/);
    expect(await page.evaluate<number>("document.querySelectorAll('td a[href*=\"--s\"]').length")).toBe(1);
    await page.close();
  });

  it('shows a 1 MB prompt and hostile text as text, runs nothing, fetches nothing', async () => {
    const file = trajectoryPageName('iter-0', EVIL_ID, 0);
    expect(statSync(path.join(dir, file)).size).toBeGreaterThan(1024 * 1024);
    const { page, requests, dialogs, url } = await open(file);
    // The big prompt is collapsed twice (its call, then its text); opening both (no script) shows all of it.
    expect(await page.evaluate<boolean>("document.body.innerText.includes('END-OF-PROMPT')")).toBe(false);
    await page.click('#call-2 > summary');
    expect(await page.evaluate<boolean>("document.body.innerText.includes('END-OF-PROMPT')")).toBe(false);
    await page.click('#call-2 details summary');
    expect(await page.evaluate<boolean>("document.body.innerText.includes('END-OF-PROMPT')")).toBe(true);
    // Everything opened, every hostile text reads as text.
    await page.evaluate('document.querySelectorAll("details").forEach((d) => { d.open = true; })');
    const text = await page.evaluate<string>('document.body.innerText');
    expect(text).toContain(EVIL_ID);
    expect(text).toContain(EVIL_SCRIPT);
    expect(text).toContain(EVIL_CODE.split('\n')[1]!.trim());
    expect(text).toContain('\\x1b[31mRED\\x1b[0m');
    expect(text).toContain('abc<U+202E>dcba');
    expect(text).toContain(FAILING_TEST);
    expect(text).toContain('AssertionError: <div>expected</div> \\x00 got');
    expect(await page.evaluate<number>("document.querySelectorAll('script, img, iframe, object').length")).toBe(0);
    expect(requests).toEqual([url]);
    expect(dialogs).toEqual([]);
    // Back to the index through its link.
    await page.click('nav a[href="index.html"]');
    await page.waitForURL(/index\.html$/);
    await page.close();
  });

  /** Where an element's box is, in the first screen's coordinates. */
  const box = (page: Page, selector: string) =>
    page.evaluate<{ top: number; bottom: number } | null>(`(() => { const el = document.querySelector(${JSON.stringify(selector)}); if (!el) return null; const b = el.getBoundingClientRect(); return { top: b.top, bottom: b.bottom }; })()`);

  it('opens on the answer: verdict, datasets, patch and its first lines in the first screen (screenshot)', async () => {
    const shots = mkdtempSync(path.join(tmpdir(), 'rft-trajectory-shot-'));
    for (const [phase, id, sample] of [
      ['iter-0', 'a', 0],
      ['iter-0', EVIL_ID, 0],
    ] as const) {
      const { page } = await open(trajectoryPageName(phase, id, sample));
      const height = await page.evaluate<number>('window.innerHeight');
      for (const selector of ['#verdict', '#summary', '#patch h2', 'pre.diff span:nth-child(4)']) {
        const b = await box(page, selector);
        expect(b, selector).not.toBeNull();
        expect(b!.bottom, `${id}: ${selector} ends within the first screen`).toBeLessThanOrEqual(height);
      }
      // The calls come after, collapsed: none is open, and the first call's action is not shown until opened.
      expect(await page.evaluate<number>('document.querySelectorAll("details.step[open]").length')).toBe(0);
      expect((await box(page, '#calls'))!.top).toBeGreaterThan((await box(page, '#patch'))!.top);
      const shot = path.join(shots, `${phase}-${sample}-${id === 'a' ? 'a' : 'evil'}.png`);
      await page.screenshot({ path: shot });
      expect(statSync(shot).size).toBeGreaterThan(10_000);
      await page.close();
    }
  });

  it('shows a resolved sample\'s datasets, its coloured diff, and moves to the next sample and the instance page by links', async () => {
    const { page } = await open(trajectoryPageName('iter-0', 'a', 0));
    const text = await page.evaluate<string>('document.querySelector("#summary").innerText');
    expect(text).toContain('datasets: kept');
    expect(text).toContain('kept in iter-0/datasets/cap-1 (trained on)');
    // Added lines are green, removed red: the colour is the page's, not the browser default.
    const colours = await page.evaluate<string[]>('[...document.querySelectorAll("pre.diff span.add, pre.diff span.del")].map((s) => getComputedStyle(s).backgroundColor)');
    expect(new Set(colours)).toEqual(new Set(['rgb(230, 255, 236)', 'rgb(255, 235, 233)']));
    await page.click('nav a[rel="next"]');
    await page.waitForURL(/--s1\.html$/);
    expect(await page.evaluate<string>('document.querySelector("h1").innerText')).toBe('a · sample 1');
    // a#1 lost to a#0 under cap 1.
    expect(await page.evaluate<string>('document.querySelector("#summary").innerText')).toContain('not kept in iter-0/datasets/cap-1 (trained on): over cap');
    await page.click('nav a[rel="prev"]');
    await page.waitForURL(/--s0\.html$/);
    await page.click(`nav a[href="${instancePageName('iter-0', 'a')}"]`);
    await page.waitForURL(/--a-[0-9a-f]{8}\.html$/);
    expect(await page.evaluate<number>('document.querySelectorAll("#samples tbody tr").length')).toBe(3);
    expect(await page.evaluate<string>('document.querySelector("#samples").innerText')).toMatch(/#2\s+unresolved\s+finished\s+4/);
    await page.close();
  });

  it('fits a phone-wide window', async () => {
    const { page } = await open(trajectoryPageName('iter-0', EVIL_ID, 0), 390);
    expect(await page.evaluate<number>('document.documentElement.scrollWidth - window.innerWidth')).toBeLessThanOrEqual(0);
    await page.close();
  });
});
