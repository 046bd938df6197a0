import { existsSync, mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { AxeBuilder } from '@axe-core/playwright';
import { parse } from 'csv-parse/sync';
import { chromium, type Browser, type BrowserContext, type Download, type Page } from 'playwright-core';
import { expect } from 'vitest';

/**
 * The web UI (src/ui) in a real Chromium: Debian's /usr/bin/chromium driven by playwright-core. One
 * browser per test file; pages signed in as a user would, through the form. Console errors and uncaught
 * exceptions in the page are collected so a test can insist there were none.
 */

export const CHROMIUM = '/usr/bin/chromium';

/** Without the background-networking flags this machine's closed network refuses Chromium's connections. */
const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Screenshots a person looks at in review, committed beside the other UI reports: refreshed there only
 * when asked (`UI_SCREENSHOTS=1`), since every run's IDs and times differ and a plain test run should
 * leave the tree as it found it. Otherwise they are still taken (a page that cannot be rendered fails
 * the test) into a temporary directory.
 */
const SCREENSHOT_DIR = process.env.UI_SCREENSHOTS === '1' ? path.resolve('reports/ui') : path.join(tmpdir(), 'postback-engine-ui-screenshots');

/** Like the Redis check in test/global-setup.ts: skip and say how to install it, except in CI, which must not skip. */
export function hasChromium(): boolean {
  if (existsSync(CHROMIUM)) return true;
  const message = `${CHROMIUM} not found: the browser tests of the web UI are skipped. Install it with \`apt-get install -y chromium\`.`;
  if (process.env.CI) throw new Error(`${message} CI must not skip them.`);
  process.stderr.write(`\n${message}\n\n`);
  return false;
}

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

export type UiPage = { context: BrowserContext; page: Page; problems: string[] };

/** A fresh tab (own sessionStorage) at `${base}/ui/`, 1280×800, recording the page's own errors. */
export async function openUi(browser: Browser, base: string): Promise<UiPage> {
  // A zone far from UTC at an odd offset: the page says its times are UTC, and any slip into local time
  // would move a window by hours and 45 minutes, or a day.
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, acceptDownloads: true, locale: 'en-US', timezoneId: 'Asia/Kathmandu' });
  context.setDefaultTimeout(10_000);
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`uncaught: ${err.message}`));
  // The sign-in probes answer 403 and 400 on purpose (app.js): 4xx answers are shown in the page, where a
  // test looks for them; a server error or a script error is always a problem.
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) problems.push(`console: ${msg.text()}`);
  });
  page.on('response', (res) => {
    if (res.status() >= 500) problems.push(`${res.status()} from ${res.request().method()} ${res.url()}`);
  });
  // The page's own clock, so a test can jump over the review queue's undo delay; it starts at the
  // real time, which the engine's database also uses, and runs on from there.
  await page.clock.install();
  await page.goto(`${base}/ui/`);
  return { context, page, problems };
}

/** Signs in through the form and waits for the section tabs. */
export async function signIn(page: Page, token: string): Promise<void> {
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('tablist').waitFor();
}

/** The names of the tabs the signed-in token can see, in order. */
export async function visibleTabs(page: Page): Promise<string[]> {
  const names = await page.getByRole('tab').allTextContents();
  return names.map((n) => n.replace(/\s+\d+\+?\s*$/, '').trim());
}

/** axe-core over the whole page as it stands: nothing serious or critical. */
export async function expectAccessible(page: Page, what: string): Promise<void> {
  // Only violations are needed; collecting passes and incomplete results too makes each scan much slower.
  const results = await new AxeBuilder({ page }).options({ resultTypes: ['violations'] }).analyze();
  const bad = results.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const described = bad.map((v) => `${v.impact} ${v.id}: ${v.help}\n${v.nodes.map((n) => `    ${n.target.join(' ')}: ${n.failureSummary?.replace(/\n/g, ' ')}`).join('\n')}`);
  expect(described, `axe on ${what}`).toEqual([]);
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), animations: 'disabled' });
}

/** Clicks `trigger` and returns the file the page saved: its suggested name and its rows, parsed. */
export async function downloadCsv(page: Page, trigger: () => Promise<void>): Promise<{ name: string; text: string; rows: Record<string, string>[] }> {
  const [download] = await Promise.all([page.waitForEvent('download'), trigger()]);
  const text = await readDownload(download);
  return { name: download.suggestedFilename(), text, rows: parseCsv(text) };
}

async function readDownload(download: Download): Promise<string> {
  const file = await download.path();
  return readFile(file, 'utf8');
}

export function parseCsv(text: string): Record<string, string>[] {
  return parse(text, { columns: true, bom: true, skip_empty_lines: true }) as Record<string, string>[];
}

/** `YYYY-MM-DDTHH:MM` in UTC, as the reconciliation form's datetime-local inputs take it (their labels say UTC). */
export const utcMinute = (d: Date) => d.toISOString().slice(0, 16);
export const utcDay = (d: Date) => d.toISOString().slice(0, 10);
