import { readFile } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, post } from './helpers/admin.js';
import { downloadCsv, expectAccessible, hasChromium, launchBrowser, openUi, screenshot, signIn, type UiPage } from './helpers/browser.js';
import { FAST_DELIVERY, startReceiver, waitForState, type Receiver } from './helpers/delivery-receiver.js';
import { ADMIN, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { reconcile, windowNow } from './helpers/reconcile.js';
import { deliveryRows, postConversion, type Seeded } from './helpers/review.js';

/**
 * The Conversions and Deliveries tabs in Chromium: search and filters reach the API and show names,
 * the CSV button downloads what the filters select, and an admin re-enables an endpoint a 410 disabled
 * and replays a delivery, while finance only reads.
 */

const HOSTING = '2.56.16.1'; // M247 Europe, a VPN provider's network: datacenter_ip at 15, so a fresh click is flagged, not rejected
const run = hasChromium();

describe.skipIf(!run)('conversions and deliveries in a browser', () => {
  let t: TestEngine;
  let rx: Receiver;
  let s: Seeded;
  let browser: Browser;
  let ui: UiPage;
  let page: Page;
  let base: string;
  let accepted: { conversionId: string; txid: string };
  let flagged: { conversionId: string; txid: string };

  beforeAll(async () => {
    // The publisher's first answer is 410 Gone, which disables its endpoint; every later one is 200.
    [rx, browser] = await Promise.all([startReceiver((_req, nth) => ({ status: nth === 1 ? 410 : 200, body: 'ok' })), launchBrowser()]);
    t = await startTestEngine(FAST_DELIVERY);
    s = await seedCatalog(t.app, { advertiser: { name: 'Northwind' }, publisher: { name: 'Blue Media', postbackUrl: `${rx.url}/pb?c={clickid}`, method: 'GET' }, offer: { name: 'Summer Sale' } });
    rx.secret = (s.publisher as unknown as { secret: string }).secret;
    const strict = await post(t.app, '/v1/offers', { advertiserId: s.advertiser.id, name: 'Strict Offer', url: 'https://adv.example/lp?cid={clickid}', payout: '2.50', currency: 'USD', fraud: {} });
    expect(strict.statusCode, strict.body).toBe(201);
    accepted = await postConversion(t.app, s);
    flagged = await postConversion(t.app, { ...s, offer: strict.json() }, { click: { ip: HOSTING } });
    expect(flagged).toMatchObject({ decision: 'flagged' });
    const [delivery] = await deliveryRows(t.sql, accepted.conversionId);
    await rx.waitFor((r) => r.length >= 1);
    for (const deadline = Date.now() + 15_000; ; await new Promise((r) => setTimeout(r, 25))) {
      const [p] = await t.sql`select disabled_at from publishers where id = ${s.publisher.id}`;
      if (p?.disabled_at) break;
      if (Date.now() > deadline) throw new Error('the 410 did not disable the publisher endpoint');
    }
    expect(delivery).toBeDefined();
    base = await t.app.listen({ port: 0, host: '127.0.0.1' });
    ui = await openUi(browser, base);
    page = ui.page;
    await signIn(page, ADMIN);
  });
  afterAll(async () => {
    await ui?.context.close();
    await browser?.close();
    await t?.close();
    await rx?.close();
  });

  const conversionsTable = () => page.getByRole('table', { name: 'Conversions' });
  const rowIds = () => conversionsTable().getByRole('button', { name: /^Open conversion/ }).allTextContents();

  it('lists accepted and flagged conversions with offer and publisher names, and searches by txid', async () => {
    await page.getByRole('tab', { name: 'Conversions' }).click();
    await expect.poll(rowIds).toEqual([flagged.conversionId, accepted.conversionId]);
    expect(await conversionsTable().textContent()).toContain('Summer Sale');
    expect(await conversionsTable().textContent()).toContain('Blue Media');
    await page.getByLabel('Transaction ID (txid)').fill(accepted.txid);
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(rowIds).toEqual([accepted.conversionId]);
    await page.getByLabel('Transaction ID (txid)').fill('');
    await page.getByLabel('Decision').selectOption('flagged');
    await page.getByLabel('Reason').selectOption('datacenter_ip');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(rowIds).toEqual([flagged.conversionId]);
    await conversionsTable().getByRole('button', { name: `Open conversion ${flagged.conversionId}` }).click();
    await page.getByRole('heading', { name: flagged.conversionId }).waitFor();
    // Read-only here: decisions are made in the review queue.
    expect(await page.locator('#conv-detail').getByRole('button', { name: /Approve/ }).count()).toBe(0);
    await expectAccessible(page, 'the conversions tab');
    await screenshot(page, 'conversions-detail');
    expect(ui.problems).toEqual([]);
  });

  it('filters by UTC day, the "to" day included', async () => {
    const [row] = await t.sql`select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD') as day, to_char((created_at at time zone 'UTC') + interval '1 day', 'YYYY-MM-DD') as next from conversions where id = ${flagged.conversionId}`;
    await page.getByLabel('From day (UTC)').fill(row?.day as string);
    await page.getByLabel('To day (UTC, included)').fill(row?.day as string);
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(rowIds).toEqual([flagged.conversionId]);
    await page.getByLabel('From day (UTC)').fill(row?.next as string);
    await page.getByLabel('To day (UTC, included)').fill('');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => page.locator('#conv-result').textContent()).toContain('No conversions.');
    await page.getByLabel('From day (UTC)').fill('');
    await page.getByRole('button', { name: 'Search' }).click();
    await expect.poll(rowIds).toEqual([flagged.conversionId]);
  });

  it('downloads the filtered selection as CSV', async () => {
    const csv = await downloadCsv(page, () => page.getByRole('button', { name: 'Download CSV' }).click());
    expect(csv.name).toMatch(/^conversions_\d{4}-\d{2}-\d{2}\.csv$/);
    expect(csv.rows.map((r) => r.id)).toEqual([flagged.conversionId]);
    expect(csv.rows[0]).toMatchObject({ offerName: 'Strict Offer', publisherName: 'Blue Media', advertiserName: 'Northwind', decision: 'flagged' });
  });

  it('an admin re-enables the disabled endpoint, the delivery goes through, and a replay sends one more try', async () => {
    await page.getByRole('tab', { name: 'Deliveries' }).click();
    const deliveries = page.getByRole('table', { name: 'Deliveries' });
    await expect.poll(() => deliveries.textContent()).toContain('endpoint disabled');
    await expectAccessible(page, 'the deliveries tab');
    await page.getByRole('table', { name: 'Deliveries' }).getByText(/^1 · last HTTP 410/).click();
    await screenshot(page, 'deliveries-attempts');
    await page.getByRole('button', { name: 'Re-enable the endpoint of Blue Media' }).click();
    const [delivery] = await deliveryRows(t.sql, accepted.conversionId);
    await waitForState(t.sql, delivery?.id as string, 'delivered');
    const [publisher] = await t.sql`select disabled_at from publishers where id = ${s.publisher.id}`;
    expect(publisher?.disabled_at).toBeNull();

    await page.getByRole('button', { name: 'Show deliveries' }).click();
    await expect.poll(() => deliveries.textContent()).not.toContain('endpoint disabled');
    const before = rx.received.length;
    await page.getByRole('button', { name: `Replay delivery ${delivery?.id}` }).click();
    await rx.waitFor((r) => r.length > before);
    await expect.poll(async () => (await t.sql`select count(*)::int as n from delivery_attempts where delivery_id = ${delivery?.id as string} and replay`)[0]?.n).toBe(1);
    expect(rx.received.at(-1)?.webhookId).toBe(delivery?.id);
    expect(ui.problems).toEqual([]);
  });

  it('a reconciliation run downloads as CSV and as an HTML report, rendered from the database', async () => {
    const run = await reconcile(t.app, windowNow());
    await page.getByRole('tab', { name: 'Reconciliation' }).click();
    await page.getByRole('heading', { name: new RegExp(run.id) }).waitFor();
    const csv = await downloadCsv(page, () => page.getByRole('button', { name: 'Download CSV' }).click());
    expect(csv.name).toBe(`reconciliation-${run.id}.csv`);
    const stored = await t.sql`select offer_id, s2s from reconciliation_rows where run_id = ${run.id} order by hour, offer_id, publisher_id`;
    expect(stored.length).toBeGreaterThan(0);
    expect(csv.rows.map((r) => [r.offerId, Number(r.s2s)])).toEqual(stored.map((r) => [r.offer_id, r.s2s]));
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download HTML report' }).click()]);
    expect(download.suggestedFilename()).toBe(`reconciliation-${run.id}.html`);
    const html = await readFile(await download.path(), 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain(run.id);
    expect(ui.problems).toEqual([]);
  });

  it('finance reads deliveries but is offered no replay or re-enable', async () => {
    const finance = await createToken(t.app, 'finance');
    const other = await openUi(browser, base);
    await signIn(other.page, finance.token);
    await other.page.getByRole('tab', { name: 'Deliveries' }).click();
    const deliveries = other.page.getByRole('table', { name: 'Deliveries' });
    await expect.poll(() => deliveries.textContent()).toContain('admin only');
    expect(await other.page.getByRole('button', { name: /^Replay/ }).count()).toBe(0);
    await other.context.close();
  });
});
