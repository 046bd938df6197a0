import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, get } from './helpers/admin.js';
import { expectAccessible, hasChromium, launchBrowser, openUi, screenshot, signIn, utcDay, visibleTabs, type UiPage } from './helpers/browser.js';
import { ADMIN, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { postConversion, type Seeded } from './helpers/review.js';

/**
 * The web UI's shell in a real Chromium against a real engine: signing in (and being refused), the
 * sections each role's token is shown, every section scanned by axe-core with a screenshot, and the
 * FX rates form storing a day's rates. The review queue and the finance pages have their own files
 * (ui-browser-review, ui-browser-finance).
 */

const run = hasChromium();

/** What each role's token may use (the routes' requireRole), as the page names its tabs. */
const TABS = {
  analyst: ['Review queue', 'Conversions', 'Refused postbacks', 'Rule quality'],
  finance: ['Conversions', 'Deliveries', 'Reconciliation', 'Payouts', 'FX rates'],
  admin: ['Review queue', 'Conversions', 'Deliveries', 'Reconciliation', 'Payouts', 'Refused postbacks', 'FX rates', 'Rule quality', 'Audit'],
};

describe.skipIf(!run)('the web UI in a browser', () => {
  let t: TestEngine;
  let s: Seeded;
  let tokens: Record<'analyst' | 'finance', string>;
  let browser: Browser;
  let base: string;
  let ui: UiPage;
  let page: Page;

  beforeAll(async () => {
    browser = await launchBrowser();
    t = await startTestEngine();
    s = await seedCatalog(t.app, { offer: { fraud: {} } });
    tokens = { analyst: (await createToken(t.app, 'analyst')).token, finance: (await createToken(t.app, 'finance')).token };
    // Something in every section: a flagged conversion, and a postback refused for its signature.
    await postConversion(t.app, s);
    const refused = await t.app.inject({ method: 'GET', url: `/postback/${s.advertiser.id}?clickid=x&txid=tx_refused&ts=1&sig=${'0'.repeat(64)}` });
    expect(refused.statusCode).toBe(401);
    base = await t.app.listen({ port: 0, host: '127.0.0.1' });
    ui = await openUi(browser, base);
    page = ui.page;
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('the sign-in page is accessible and refuses an unknown token in the server’s words', async () => {
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await expectAccessible(page, 'the sign-in page');
    await screenshot(page, 'sign-in');
    await page.getByLabel('API token').fill('not-a-token-anyone-issued');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: /The server refused this token \(unauthorized\)/ }).waitFor();
    expect(await page.getByRole('tablist').count()).toBe(0);
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(ui.problems).toEqual([]);
  });

  for (const role of ['analyst', 'finance'] as const) {
    it(`the ${role} token shows the ${role}'s sections only, and signing out forgets it`, async () => {
      await signIn(page, tokens[role]);
      expect(await visibleTabs(page)).toEqual(TABS[role]);
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
      expect(ui.problems).toEqual([]);
    });
  }

  it('the admin token shows every section, and the arrow keys move between them', async () => {
    await signIn(page, ADMIN);
    const tabs = await visibleTabs(page);
    expect(tabs).toEqual(TABS.admin);
    await page.getByRole('tab', { name: /Review queue/ }).click();
    await page.keyboard.press('ArrowRight');
    await expect.poll(() => page.getByRole('tab', { selected: true }).textContent()).toBe(tabs[1]);
    await page.keyboard.press('End');
    await expect.poll(() => page.getByRole('tab', { selected: true }).textContent()).toBe(tabs[tabs.length - 1]);
    expect(ui.problems).toEqual([]);
  });

  // The review and finance files photograph their own sections with their data in them.
  const photographedElsewhere = new Set(['Review queue', 'Reconciliation', 'Payouts']);
  for (const name of TABS.admin) {
    it(`the ${name} section passes axe`, async () => {
      await page.getByRole('tab', { name: new RegExp(`^${name}`) }).click();
      const panel = page.getByRole('tabpanel', { name: new RegExp(`^${name}`) });
      await panel.waitFor();
      // Each section loads its first view on opening; wait until nothing in it says it is still loading.
      await expect.poll(() => panel.getByText(/^Loading/).count()).toBe(0);
      await expectAccessible(page, `the ${name} section`);
      if (!photographedElsewhere.has(name)) await screenshot(page, name.toLowerCase().replace(/\s+/g, '-'));
      expect(ui.problems).toEqual([]);
    });
  }

  it('the refused postbacks section lists the one refused for its signature', async () => {
    await page.getByRole('tab', { name: 'Refused postbacks' }).click();
    await expect.poll(() => page.getByRole('tabpanel').textContent()).toContain('tx_refused');
    const attempts = (await get(t.app, '/v1/postback-attempts?limit=10')).json();
    expect(attempts.items.map((a: { txid: string }) => a.txid)).toContain('tx_refused');
  });

  it('the FX rates form stores a day’s rates as typed, which the API then returns', async () => {
    const day = utcDay(new Date());
    await page.getByRole('tab', { name: 'FX rates' }).click();
    const panel = page.getByRole('tabpanel');
    await panel.getByLabel('Day (UTC)').fill(day);
    await panel.getByLabel('Base currency').fill('USD');
    await panel.getByLabel(/^Rates/).fill('EUR 0.92\nJPY 151.3');
    await panel.getByRole('button', { name: /Store the day/ }).click();
    await expect.poll(async () => (await get(t.app, `/v1/fx-rates/${day}`, tokens.finance)).statusCode).toBe(200);
    expect((await get(t.app, `/v1/fx-rates/${day}`, tokens.finance)).json()).toMatchObject({ date: day, base: 'USD', rates: { EUR: '0.92', JPY: '151.3' } });
    expect(await t.sql`select currency, rate::text from fx_rates where day = ${day}::date order by currency`).toEqual([
      { currency: 'EUR', rate: '0.92' },
      { currency: 'JPY', rate: '151.3' },
    ]);
    expect(ui.problems).toEqual([]);
  });
});
