import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestEngine, type TestEngine } from './helpers/engine.js';

/**
 * /docs in a real Chromium, with every request to another origin refused: the reference renders the
 * engine's own document, and the page's content security policy lets Redoc run (no violation).
 */

const CHROMIUM = '/usr/bin/chromium';

// Like the Redis check in test/global-setup.ts: skip and say how to install it, except in CI, which must not skip.
const present = existsSync(CHROMIUM);
if (!present) {
  const message = `${CHROMIUM} not found: the /docs browser test is skipped. Install it with \`apt-get install -y chromium\`.`;
  if (process.env.CI) throw new Error(`${message} CI must not skip it.`);
  process.stderr.write(`\n${message}\n\n`);
}

let t: TestEngine;
let browser: Browser;
let base: string;

beforeAll(async () => {
  if (!present) return;
  t = await startTestEngine();
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const address = t.app.server.address();
  if (!address || typeof address === 'string') throw new Error('no listening address');
  base = `http://127.0.0.1:${address.port}`;
  // The background-networking flags keep Chromium itself from calling out on a closed network.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

afterAll(async () => {
  await browser?.close();
  await t?.close();
});

describe.skipIf(!present)('/docs in a browser', () => {
  it('renders every operation from /openapi.json without a request elsewhere or a policy violation', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const elsewhere: string[] = [];
    const problems: string[] = [];
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(`${base}/`) || url.startsWith('blob:') || url.startsWith('data:')) return route.continue();
      elsewhere.push(url);
      return route.abort();
    });
    page.on('console', (msg) => {
      if (msg.type() === 'error') problems.push(msg.text());
    });
    page.on('pageerror', (err) => problems.push(err.message));
    await page.goto(`${base}/docs`);
    await page.getByRole('heading', { name: 'Postback engine', exact: false }).first().waitFor({ timeout: 20_000 });
    const document = (await (await fetch(`${base}/openapi.json`)).json()) as { paths: Record<string, Record<string, { summary: string }>> };
    const text = (await page.locator('body').textContent()) ?? '';
    const summaries = Object.values(document.paths).flatMap((item) => Object.values(item).map((op) => op.summary));
    expect(summaries.filter((s) => !text.includes(s)), 'operations missing from the rendered page').toEqual([]);
    const violations = await page.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name).filter((n) => !n.startsWith(location.origin)));
    expect(violations).toEqual([]);
    expect(elsewhere).toEqual([]);
    expect(problems).toEqual([]);
    await context.close();
  }, 60_000);
});
