import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, get, post } from './helpers/admin.js';
import { downloadCsv, expectAccessible, hasChromium, launchBrowser, openUi, parseCsv, screenshot, signIn, utcDay, utcMinute, type UiPage } from './helpers/browser.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { firePixel } from './helpers/reconcile.js';
import { postConversion, type Seeded } from './helpers/review.js';

/**
 * Finance in a real Chromium against a real engine: a reconciliation run from the form and its rows,
 * the advertiser's own CSV uploaded and compared, and every CSV the pages offer (the run's, the
 * comparison's, payouts and advertisers), captured as the browser saves it and compared with what the API answers for the same question.
 */

const run = hasChromium();

type Sale = { conversionId: string; clickid: string; txid: string; createdAt: Date };

describe.skipIf(!run)('finance pages in a browser', () => {
  let t: TestEngine;
  let s: Seeded;
  let second: { id: string; name: string };
  let finance: { id: string; token: string };
  let browser: Browser;
  let ui: UiPage;
  let page: Page;
  /** Three sales through publisher one (one also seen by the pixel), one through publisher two. */
  let sales: Sale[];
  /** The days and minutes around the sales, read from the engine's own timestamps: right on any date. */
  let first: Date;
  let last: Date;

  const csvUpload = () =>
    [
      'txid,clickid,payout,currency,status,time',
      `${sales[0]?.txid},${sales[0]?.clickid},2.50,USD,approved,${sales[0]?.createdAt.toISOString()}`,
      `${sales[1]?.txid},${sales[1]?.clickid},3.10,USD,approved,${sales[1]?.createdAt.toISOString()}`,
      // Recorded by the advertiser after the engine's last sale, so the compared window covers them all.
      `tx_only_at_the_advertiser,,1.00,USD,approved,${new Date((sales[3]?.createdAt.getTime() as number) + 1000).toISOString()}`,
      '',
    ].join('\r\n');

  beforeAll(async () => {
    browser = await launchBrowser();
    t = await startTestEngine();
    s = await seedCatalog(t.app);
    const pub2 = await post(t.app, '/v1/publishers', { name: 'Pub Two', postbackUrl: 'https://pub2.example/pb?c={clickid}' });
    expect(pub2.statusCode, pub2.body).toBe(201);
    second = pub2.json();
    finance = await createToken(t.app, 'finance');
    const sell = async (seeded: Seeded): Promise<Sale> => {
      const pb = await postConversion(t.app, seeded);
      expect(pb.decision).toBe('accepted');
      const body = (await get(t.app, `/v1/conversions/${pb.conversionId}`, finance.token)).json();
      return { ...pb, createdAt: new Date(body.createdAt) };
    };
    sales = [await sell(s), await sell(s), await sell(s), await sell({ ...s, publisher: second })];
    await firePixel(t.app, sales[0]?.clickid as string, sales[0]?.txid as string);
    first = sales[0]?.createdAt as Date;
    last = sales[3]?.createdAt as Date;
    const base = await t.app.listen({ port: 0, host: '127.0.0.1' });
    ui = await openUi(browser, base);
    page = ui.page;
    await signIn(page, finance.token);
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  /** The shown section: hidden panels hold fields with the same labels. */
  const panel = () => page.getByRole('tabpanel');

  const apiCsv = async (url: string, payload?: string) => {
    const res = payload
      ? await t.app.inject({ method: 'POST', url, headers: { ...auth(finance.token), 'content-type': 'text/csv' }, payload })
      : await t.app.inject({ method: 'GET', url, headers: auth(finance.token) });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    return res.body;
  };

  it('runs a reconciliation over a window typed in UTC and shows its rows as the API has them', async () => {
    await page.getByRole('tab', { name: 'Reconciliation' }).click();
    await page.getByText('No runs yet.').waitFor();
    const from = new Date(first.getTime() - 3600_000);
    const to = new Date(last.getTime() + 120_000);
    await panel().getByLabel('From (UTC)').fill(utcMinute(from));
    await panel().getByLabel('To (UTC)').fill(utcMinute(to));
    await panel().getByRole('button', { name: 'Run reconciliation' }).click();
    const rows = panel().getByRole('table', { name: 'Reconciliation rows' });
    await rows.waitFor();

    const list = (await get(t.app, '/v1/reconciliations', finance.token)).json();
    expect(list.items).toHaveLength(1);
    const runBody = (await get(t.app, `/v1/reconciliations/${list.items[0].id}`, finance.token)).json();
    // The window is the one typed, read as UTC, to the minute.
    expect([runBody.from, runBody.to]).toEqual([`${utcMinute(from)}:00.000Z`, `${utcMinute(to)}:00.000Z`]);
    await page.getByRole('heading', { name: new RegExp(`Run ${runBody.id}`) }).waitFor();
    const byPair = (offerId: string, publisherId: string) =>
      runBody.rows.filter((r: { offerId: string; publisherId: string }) => r.offerId === offerId && r.publisherId === publisherId);
    const sum = (rs: Record<string, number>[], k: string) => rs.reduce((a, r) => a + (r[k] ?? 0), 0);
    expect([sum(byPair(s.offer.id, s.publisher.id), 's2s'), sum(byPair(s.offer.id, s.publisher.id), 'pixel'), sum(byPair(s.offer.id, s.publisher.id), 'matched')]).toEqual([3, 1, 1]);
    expect(sum(byPair(s.offer.id, second.id), 's2s')).toBe(1);

    // One line per API row, each with the API's counts in the column order the header names.
    const header = (await rows.getByRole('columnheader').allTextContents()).map((h) => h.trim());
    expect(header.slice(0, 4)).toEqual(['Hour (UTC)', 'Offer / publisher', 'S2S', 'Pixel']);
    const shown = await rows.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent?.trim() ?? '')));
    expect(shown).toHaveLength(runBody.rows.length);
    const keys = ['s2s', 'pixel', 'matched', 's2sOnly', 'pixelOnly', 'recovered', 'refired', 'expired'];
    const expected = runBody.rows.map((r: Record<string, number>) => keys.map((k) => String(r[k])));
    expect(shown.map((cells) => cells.slice(2)).sort()).toEqual(expected.sort());
    for (const cells of shown) expect(cells[1]).toMatch(new RegExp(s.offer.id));

    const stat = (label: string) => page.getByRole('definition').filter({ has: page.locator('xpath=preceding-sibling::dt[1]', { hasText: new RegExp(`^${label}$`) }) });
    expect(await stat('S2S').textContent()).toBe(String(runBody.totals.s2s));
    expect(await stat('Matched').textContent()).toBe(String(runBody.totals.matched));

    const saved = await downloadCsv(page, () => panel().getByRole('button', { name: 'Download CSV' }).click());
    expect(saved.name).toBe(`reconciliation-${runBody.id}.csv`);
    expect(saved.text).toBe(await apiCsv(`/v1/reconciliations/${runBody.id}?format=csv`));
    expect(saved.rows.map((r) => [r.hour, r.offerId, r.publisherId, ...keys.map((k) => r[k])]).sort()).toEqual(
      runBody.rows.map((r: Record<string, string | number>) => [r.hour, r.offerId, r.publisherId, ...keys.map((k) => String(r[k]))]).sort(),
    );

    await expectAccessible(page, 'the reconciliation tab with a run');
    await screenshot(page, 'reconciliation');
    expect(ui.problems).toEqual([]);
  });

  it("compares the advertiser's uploaded CSV and downloads the same findings as the API's CSV", async () => {
    const upload = csvUpload();
    await panel().getByLabel('Advertiser ID').fill(s.advertiser.id);
    await panel().getByLabel('CSV file').setInputFiles({ name: 'acme-december.csv', mimeType: 'text/csv', buffer: Buffer.from(upload) });
    await panel().getByRole('button', { name: 'Compare' }).click();
    await page.getByRole('heading', { name: 'acme-december.csv: 3 rows' }).waitFor();

    const api = (await t.app.inject({ method: 'POST', url: `/v1/reconciliations/advertiser-report?advertiserId=${s.advertiser.id}`, headers: { ...auth(finance.token), 'content-type': 'text/csv' }, payload: upload })).json();
    expect(api.summary).toMatchObject({ rows: 3, matched: 1, differing: 1, missing: 1 });
    const findings = page.locator('#advlist-result');
    for (const [label, n] of [['Matched', api.summary.matched], ['Differing', api.summary.differing], ['Missing in the engine', api.summary.missing], ['Only in the engine', api.summary.extra]]) {
      await findings.getByRole('listitem').filter({ hasText: new RegExp(`^${n} ${label}$`) }).waitFor();
    }
    const differing = panel().getByRole('table', { name: 'Differing conversions' });
    expect(await differing.getByRole('row').nth(1).textContent()).toMatch(new RegExp(`${sales[1]?.txid}.*payout.*3\\.10.*2\\.50`));
    const missing = panel().getByRole('table', { name: 'Conversions missing in the engine' });
    expect(await missing.textContent()).toContain('tx_only_at_the_advertiser');
    const extraTxids = (await panel().getByRole('table', { name: 'Conversions only in the engine' }).locator('tbody tr td:first-child').allTextContents()).sort();
    expect(extraTxids).toEqual(api.extra.map((e: { txid: string }) => e.txid).sort());
    expect(extraTxids).toEqual(expect.arrayContaining([sales[2]?.txid, sales[3]?.txid]));

    const saved = await downloadCsv(page, () => panel().getByRole('button', { name: 'Download as CSV' }).click());
    expect(saved.name).toBe(`advertiser-report_${s.advertiser.id}.csv`);
    const fromApi = parseCsv(await apiCsv(`/v1/reconciliations/advertiser-report?advertiserId=${s.advertiser.id}&format=csv`, upload));
    expect(saved.rows).toEqual(fromApi);
    expect(saved.rows.map((r) => r.finding).sort()).toEqual(['differing', 'matched', 'missing', ...api.extra.map(() => 'extra')].sort());
    expect(saved.rows.find((r) => r.finding === 'matched')?.txid).toBe(sales[0]?.txid);

    await findings.scrollIntoViewIfNeeded();
    await expectAccessible(page, "the advertiser's CSV findings");
    await screenshot(page, 'advertiser-report');
    expect(ui.problems).toEqual([]);
  });

  it("shows a CSV the API refuses in the API's own words, line and field, and keeps no findings", async () => {
    const bad = `txid,clickid,payout,currency,status,time\r\ntx_bad_payout,,twelve,USD,approved,${first.toISOString()}\r\n`;
    const refused = await t.app.inject({ method: 'POST', url: `/v1/reconciliations/advertiser-report?advertiserId=${s.advertiser.id}`, headers: { ...auth(finance.token), 'content-type': 'text/csv' }, payload: bad });
    expect(refused.statusCode, refused.body).toBe(400);
    const error = refused.json().error;
    expect(error).toMatchObject({ code: 'invalid_request', details: [{ path: 'line 2.payout' }] });
    const before = await t.sql`select count(*)::int as n from conversions`;

    await panel().getByLabel('CSV file').setInputFiles({ name: 'broken.csv', mimeType: 'text/csv', buffer: Buffer.from(bad) });
    await panel().getByRole('button', { name: 'Compare' }).click();
    const alert = panel().getByRole('alert').filter({ hasText: 'Could not compare the file.' });
    await alert.waitFor();
    expect(await alert.textContent()).toContain(error.message);
    expect(await alert.textContent()).toContain('400 invalid_request');
    expect(await alert.getByRole('listitem').allTextContents()).toEqual(error.details.map((d: { path: string; message: string }) => `${d.path} ${d.message}`));
    // The previous file's findings are gone, so nobody reads them as this file's.
    expect(await panel().getByRole('heading', { name: /acme-december\.csv/ }).count()).toBe(0);
    expect(await t.sql`select count(*)::int as n from conversions`).toEqual(before);
    expect(ui.problems).toEqual([]);
  });

  it('shows the payouts report per publisher for whole UTC days and downloads its CSV as the API sends it', async () => {
    await page.getByRole('tab', { name: 'Payouts' }).click();
    await panel().getByLabel('From', { exact: true }).fill(utcDay(first));
    await panel().getByLabel('To', { exact: true }).fill(utcDay(last));
    await panel().getByRole('button', { name: 'Show report' }).click();
    const report = panel().getByRole('table', { name: /^Payout report/ });
    await report.waitFor();
    const rowFor = (publisherId: string) => report.getByRole('row').filter({ has: page.getByRole('rowheader', { name: new RegExp(publisherId) }) });
    await expect.poll(() => rowFor(s.publisher.id).textContent()).toMatch(/USD.*3.*7\.50/);
    await expect.poll(() => rowFor(second.id).textContent()).toMatch(/USD.*1.*2\.50/);
    await expectAccessible(page, 'the payouts report');
    await screenshot(page, 'payouts');

    const dayAfterLast = new Date(`${utcDay(last)}T00:00:00Z`);
    dayAfterLast.setUTCDate(dayAfterLast.getUTCDate() + 1);
    const window = `from=${encodeURIComponent(`${utcDay(first)}T00:00:00.000Z`)}&to=${encodeURIComponent(dayAfterLast.toISOString())}`;
    const saved = await downloadCsv(page, () => panel().getByRole('button', { name: 'Download CSV' }).click());
    expect(saved.name).toBe(`publishers_${utcDay(first)}_${utcDay(last)}.csv`);
    const fromApi = await apiCsv(`/v1/reports/payouts?${window}&format=csv`);
    expect(saved.text).toBe(fromApi);
    const byPublisher = Object.fromEntries(saved.rows.map((r) => [r.publisherId, r]));
    expect(byPublisher[s.publisher.id]).toMatchObject({ publisherName: 'Pub One', currency: 'USD', approved: '3', payout: '7.50', s2s: '3' });
    expect(byPublisher[second.id]).toMatchObject({ publisherName: 'Pub Two', currency: 'USD', approved: '1', payout: '2.50' });
    expect(saved.rows).toHaveLength(2);


    await panel().getByRole('combobox', { name: 'Report' }).selectOption({ label: 'By advertiser' });
    await panel().getByRole('button', { name: 'Show report' }).click();
    await panel().getByRole('table', { name: /^Advertiser report/ }).waitFor();
    const advertisers = await downloadCsv(page, () => panel().getByRole('button', { name: 'Download CSV' }).click());
    expect(advertisers.name).toBe(`advertisers_${utcDay(first)}_${utcDay(last)}.csv`);
    expect(advertisers.text).toBe(await apiCsv(`/v1/reports/advertisers?${window}&format=csv`));
    expect(advertisers.rows).toEqual([expect.objectContaining({ advertiserId: s.advertiser.id, advertiserName: 'Acme', currency: 'USD', approved: '4', payout: '10.00' })]);
    await expectAccessible(page, 'the advertisers report');
    expect(ui.problems).toEqual([]);
  });

  it('refuses a window that ends before it starts, in words, and runs nothing', async () => {
    await page.getByRole('tab', { name: 'Reconciliation' }).click();
    await panel().getByLabel('From (UTC)').fill(utcMinute(last));
    await panel().getByLabel('To (UTC)').fill(utcMinute(first));
    await panel().getByRole('button', { name: 'Run reconciliation' }).click();
    await page.getByRole('alert').filter({ hasText: '“From” must be before “To”.' }).waitFor();
    expect((await t.sql`select count(*)::int as n from reconciliation_runs`)[0]?.n).toBe(1);
  });
});
