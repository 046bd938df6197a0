import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, expectApiError, post } from './helpers/admin.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { businessSnapshot, insertConversion, type ConversionSeed } from './helpers/reconcile.js';

/**
 * CONTRACT §10 reports: revenue and margin in the payout report, the advertiser report, and totals
 * converted to a reporting currency per conversion at its own UTC day's rate (or the latest earlier
 * day's), half up, with amounts that have no rate listed as unconverted. Every figure below is worked
 * out by hand from the rates and amounts seeded here, at fixed times.
 */

let t: TestEngine;
let advA: string;
let advB: string;
let pub: string;
const window = 'from=2026-02-28T00:00:00Z&to=2026-03-04T00:00:00Z';

beforeAll(async () => {
  t = await startTestEngine();
  await t.engine.deliveries.stop();
  const seeded = await seedCatalog(t.app, { advertiser: { name: 'Acme' } });
  const beta = await post(t.app, '/v1/advertisers', { name: 'Beta, "Co"', ipAllowlist: [], auth: ['hmac'] });
  advA = seeded.advertiser.id;
  advB = beta.json().id;
  pub = seeded.publisher.id;
  const offer = async (advertiserId: string, payout: string, currency: string) =>
    (await post(t.app, '/v1/offers', { advertiserId, name: currency, url: 'https://adv.example/?c={clickid}', payout, currency })).json().id as string;
  const usdOffer = seeded.offer.id as string;
  const jpyOffer = await offer(advA, '1000', 'JPY');
  const kwdOffer = await offer(advB, '1.000', 'KWD');

  // 1 USD = 150 JPY = 0.3 KWD on 1 March; on 3 March only JPY is priced (160); nothing before 1 March.
  for (const [day, rates] of [['2026-03-01', { JPY: '150', KWD: '0.3' }], ['2026-03-03', { JPY: '160' }]] as const) {
    const res = await t.app.inject({ method: 'PUT', url: `/v1/fx-rates/${day}`, headers: auth(), payload: { base: 'USD', rates } });
    expect(res.statusCode, res.body).toBeLessThan(300);
  }

  const add = async (c: Partial<ConversionSeed> & { txid: string; at: string; reasons?: string[] }) => {
    const id = await insertConversion(t.sql, {
      advertiserId: advA, offerId: usdOffer, publisherId: pub, currency: 'USD', payoutMinor: 0n, ...c, createdAt: new Date(c.at),
    });
    if (c.reasons) await t.sql`update conversions set reasons = ${c.reasons} where id = ${id}`;
  };
  const jpy = { offerId: jpyOffer, currency: 'JPY' };
  const kwd = { advertiserId: advB, offerId: kwdOffer, currency: 'KWD' };
  await add({ txid: 'usd-approved', at: '2026-03-01T10:00:00Z', revenueMinor: 1000n, payoutMinor: 700n });
  await add({ txid: 'usd-pending', at: '2026-03-01T11:00:00Z', revenueMinor: 500n, payoutMinor: 400n, status: 'pending' });
  await add({ txid: 'usd-cap-rejected', at: '2026-03-01T12:00:00Z', revenueMinor: 900n, payoutMinor: 800n, decision: 'rejected', reasons: ['over_cap'] });
  await add({ txid: 'usd-cap-flagged', at: '2026-03-02T12:00:00Z', revenueMinor: 300n, payoutMinor: 200n, decision: 'flagged', reasons: ['over_cap'] });
  await add({ txid: 'usd-outside', at: '2026-03-04T00:00:00Z', revenueMinor: 99999n, payoutMinor: 1n });
  await add({ ...jpy, txid: 'jpy-day1', at: '2026-03-01T12:00:00Z', revenueMinor: 1000n, payoutMinor: 999n });
  await add({ ...jpy, txid: 'jpy-day2-a', at: '2026-03-02T05:00:00Z', revenueMinor: 1n, payoutMinor: 0n });
  await add({ ...jpy, txid: 'jpy-day2-b', at: '2026-03-02T23:59:59Z', revenueMinor: 1n, payoutMinor: 0n });
  await add({ ...jpy, txid: 'jpy-day3', at: '2026-03-03T01:00:00Z', revenueMinor: 2000n, payoutMinor: 1000n });
  await add({ ...kwd, txid: 'kwd-day1', at: '2026-03-01T00:00:00Z', revenueMinor: 1500n, payoutMinor: 1000n });
  await add({ ...kwd, txid: 'kwd-day3', at: '2026-03-03T08:00:00Z', revenueMinor: 5n, payoutMinor: 0n });
  await add({ ...kwd, txid: 'kwd-before-rates', at: '2026-02-28T23:59:59Z', revenueMinor: 2000n, payoutMinor: 1250n });
});
afterAll(async () => t?.close());

const get = (path: string, token?: string) => t.app.inject({ url: path, headers: auth(token) });
const byCurrency = (rows: { currency: string }[], currency: string) => rows.find((r) => r.currency === currency);

// To USD, each conversion rounded half up to cents on its own:
// JPY: 1000/150 = 6.666… → 6.67 and 999/150 = 6.66 (1 Mar); ¥1 on 2 Mar at 1 March's 150 = 0.0066… → 0.01,
//   twice (summed first, ¥2 would give 0.01, not 0.02); 2000/160 = 12.50 and 1000/160 = 6.25 (3 Mar).
// KWD: 1.500/0.3 = 5.00 and 1.000/0.3 = 3.333… → 3.33 (1 Mar); 0.005 KWD on 3 Mar (no KWD that day,
//   1 March's 0.3) = 0.01666… → 0.02; 2.000/1.250 KWD on 28 Feb have no rate at or before: unconverted.
const usdRow = { currency: 'USD', revenue: '10.00', payout: '7.00', margin: '3.00', unconverted: [] };
const jpyRowInUsd = { currency: 'USD', revenue: '19.19', payout: '12.91', margin: '6.28', unconverted: [] };
const kwdUnconverted = { currency: 'KWD', revenue: '2.000', payout: '1.250', margin: '0.750' };
const kwdRowInUsd = { currency: 'USD', revenue: '5.02', payout: '3.33', margin: '1.69', unconverted: [kwdUnconverted] };
const totalInUsd = { currency: 'USD', revenue: '34.21', payout: '23.24', margin: '10.97', unconverted: [kwdUnconverted] };

describe('advertiser report', () => {
  it('counts per advertiser and currency, with over-cap conversions, and money over approved conversions only', async () => {
    const res = await get(`/v1/reports/advertisers?${window}`);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ from: '2026-02-28T00:00:00.000Z', to: '2026-03-04T00:00:00.000Z', advertiserId: null, currency: null });
    expect(body).not.toHaveProperty('converted');
    const a = { advertiserId: advA, advertiserName: 'Acme' };
    const b = { advertiserId: advB, advertiserName: 'Beta, "Co"' };
    const expected = [
      { ...a, currency: 'JPY', conversions: 4, approved: 4, pending: 0, flagged: 0, rejected: 0, overCap: 0, revenue: '3002', payout: '1999', margin: '1003' },
      { ...a, currency: 'USD', conversions: 4, approved: 1, pending: 1, flagged: 1, rejected: 1, overCap: 2, revenue: '10.00', payout: '7.00', margin: '3.00' },
      { ...b, currency: 'KWD', conversions: 3, approved: 3, pending: 0, flagged: 0, rejected: 0, overCap: 0, revenue: '3.505', payout: '2.250', margin: '1.255' },
    ];
    expect(body.rows).toEqual(advA < advB ? expected : [expected[2], expected[0], expected[1]]);
    expect(body.totals).toEqual([
      { currency: 'JPY', conversions: 4, approved: 4, pending: 0, flagged: 0, rejected: 0, overCap: 0, revenue: '3002', payout: '1999', margin: '1003' },
      { currency: 'KWD', conversions: 3, approved: 3, pending: 0, flagged: 0, rejected: 0, overCap: 0, revenue: '3.505', payout: '2.250', margin: '1.255' },
      { currency: 'USD', conversions: 4, approved: 1, pending: 1, flagged: 1, rejected: 1, overCap: 2, revenue: '10.00', payout: '7.00', margin: '3.00' },
    ]);
    const onlyB = (await get(`/v1/reports/advertisers?${window}&advertiserId=${advB}`)).json();
    expect(onlyB.rows.map((r: { advertiserId: string }) => r.advertiserId)).toEqual([advB]);
  });

  it('converts each conversion at its own day or the latest earlier one, per conversion, leaving rateless amounts unconverted', async () => {
    const body = (await get(`/v1/reports/advertisers?${window}&currency=USD`)).json();
    expect(body.currency).toBe('USD');
    const rowsOfA = body.rows.filter((r: { advertiserId: string }) => r.advertiserId === advA);
    expect(byCurrency(rowsOfA, 'USD')).toMatchObject({ revenue: '10.00', converted: usdRow });
    expect(byCurrency(rowsOfA, 'JPY')).toMatchObject({ revenue: '3002', converted: jpyRowInUsd });
    expect(body.rows.find((r: { advertiserId: string }) => r.advertiserId === advB).converted).toEqual(kwdRowInUsd);
    expect(body.converted).toEqual(totalInUsd);
  });

  it('converts into zero- and three-decimal currencies, rounding half up', async () => {
    // To JPY: 1.500 KWD × 150/0.3 = ¥750, 1.000 → ¥500; 0.005 KWD → ¥2.5 → ¥3 (half up). USD 10.00 → ¥1500, 7.00 → ¥1050.
    const inJpy = (await get(`/v1/reports/advertisers?${window}&currency=JPY`)).json();
    const b = inJpy.rows.find((r: { advertiserId: string }) => r.advertiserId === advB);
    expect(b.converted).toEqual({ currency: 'JPY', revenue: '753', payout: '500', margin: '253', unconverted: [kwdUnconverted] });
    const usdOfA = inJpy.rows.find((r: { advertiserId: string; currency: string }) => r.advertiserId === advA && r.currency === 'USD');
    expect(usdOfA.converted).toEqual({ currency: 'JPY', revenue: '1500', payout: '1050', margin: '450', unconverted: [] });
    // To KWD: USD 10.00 × 0.3 = 3.000 KWD, 7.00 → 2.100; the KWD rows stay as they are, unconverted ones included.
    const inKwd = (await get(`/v1/reports/advertisers?${window}&currency=KWD`)).json();
    const usdOfAInKwd = inKwd.rows.find((r: { advertiserId: string; currency: string }) => r.advertiserId === advA && r.currency === 'USD');
    expect(usdOfAInKwd.converted).toEqual({ currency: 'KWD', revenue: '3.000', payout: '2.100', margin: '0.900', unconverted: [] });
    const bInKwd = inKwd.rows.find((r: { advertiserId: string }) => r.advertiserId === advB);
    expect(bInKwd.converted).toEqual({ currency: 'KWD', revenue: '3.505', payout: '2.250', margin: '1.255', unconverted: [] });
  });

  it('as RFC 4180 CSV with the same figures, converted columns only with a currency', async () => {
    const plain = await get(`/v1/reports/advertisers?${window}&format=csv`);
    expect(plain.statusCode).toBe(200);
    expect(plain.headers['content-type']).toMatch(/^text\/csv; charset=utf-8/);
    expect(plain.body.split('\r\n')[0]).toBe('advertiserId,advertiserName,currency,conversions,approved,pending,flagged,rejected,overCap,revenue,payout,margin');
    expect(plain.body).toContain('"Beta, ""Co"""');
    const json = (await get(`/v1/reports/advertisers?${window}`)).json();
    expect(parse(plain.body, { columns: true })).toEqual(json.rows.map((r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)]))));

    const converted = parse((await get(`/v1/reports/advertisers?${window}&currency=USD&format=csv`)).body, { columns: true }) as Record<string, string>[];
    const b = converted.find((r) => r.advertiserId === advB);
    expect(b).toMatchObject({ advertiserName: 'Beta, "Co"', currency: 'KWD', revenue: '3.505', convertedCurrency: 'USD', convertedRevenue: '5.02', convertedPayout: '3.33', convertedMargin: '1.69', unconvertedRevenue: '2.000', unconvertedPayout: '1.250' });
    const jpyOfA = converted.find((r) => r.advertiserId === advA && r.currency === 'JPY');
    expect(jpyOfA).toMatchObject({ convertedRevenue: '19.19', convertedPayout: '12.91', convertedMargin: '6.28', unconvertedRevenue: '0', unconvertedPayout: '0' });
  });
});

describe('payout report money', () => {
  it('adds revenue, margin and converted totals per publisher row and overall, in JSON and CSV', async () => {
    const body = (await get(`/v1/reports/payouts?${window}&currency=USD`)).json();
    expect(body.currency).toBe('USD');
    expect(body.rows.map((r: { currency: string }) => r.currency)).toEqual(['JPY', 'KWD', 'USD']);
    expect(byCurrency(body.rows, 'USD')).toMatchObject({ publisherId: pub, approved: 1, payout: '7.00', revenue: '10.00', margin: '3.00', converted: usdRow });
    expect(byCurrency(body.rows, 'JPY')).toMatchObject({ approved: 4, payout: '1999', revenue: '3002', margin: '1003', converted: jpyRowInUsd });
    expect(byCurrency(body.rows, 'KWD')).toMatchObject({ approved: 3, payout: '2.250', revenue: '3.505', margin: '1.255', converted: kwdRowInUsd });
    expect(byCurrency(body.totals, 'USD')).toMatchObject({ payout: '7.00', revenue: '10.00', margin: '3.00' });
    expect(body.converted).toEqual(totalInUsd);

    const csv = parse((await get(`/v1/reports/payouts?${window}&currency=USD&format=csv`)).body, { columns: true }) as Record<string, string>[];
    expect(csv.map((r) => [r.currency, r.revenue, r.margin, r.convertedRevenue, r.convertedPayout, r.convertedMargin, r.unconvertedRevenue, r.unconvertedPayout])).toEqual([
      ['JPY', '3002', '1003', '19.19', '12.91', '6.28', '0', '0'],
      ['KWD', '3.505', '1.255', '5.02', '3.33', '1.69', '2.000', '1.250'],
      ['USD', '10.00', '3.00', '10.00', '7.00', '3.00', '0.00', '0.00'],
    ]);
  });
});

describe('both reports', () => {
  const paths = ['/v1/reports/advertisers', '/v1/reports/payouts'];

  it('are for finance and admin: 401 without a token, 403 for an analyst', async () => {
    const analyst = await createToken(t.app, 'analyst');
    const finance = await createToken(t.app, 'finance');
    for (const path of paths) {
      expectApiError(await t.app.inject({ url: `${path}?currency=USD` }), 401, 'unauthorized');
      expectApiError(await get(`${path}?currency=USD`, analyst.token), 403, 'forbidden');
      expect((await get(`${path}?${window}&currency=USD`, finance.token)).json().converted).toEqual(totalInUsd);
      expect((await get(`${path}?currency=USD`)).statusCode).toBe(200);
    }
  });

  it('refuse bad windows and currencies with the fields named, and no report call changes the database', async () => {
    const tables = async () => ({
      ...(await businessSnapshot(t.sql)),
      fx_rate_days: [...(await t.sql`select * from fx_rate_days order by day`)],
      fx_rates: [...(await t.sql`select * from fx_rates order by day, currency`)],
    });
    const before = await tables();
    for (const path of paths) {
      expectApiError(await get(`${path}?currency=usd`), 400, 'invalid_request', ['currency']);
      expectApiError(await get(`${path}?currency=XYZ`), 400, 'invalid_request', ['currency']);
      expectApiError(await get(`${path}?currency=US`), 400, 'invalid_request', ['currency']);
      expectApiError(await get(`${path}?from=yesterday&currency=EURO`), 400, 'invalid_request', ['from', 'currency']);
      expectApiError(await get(`${path}?from=2026-03-02&to=2026-03-01`), 400, 'invalid_request', ['to']);
      expectApiError(await get(`${path}?to=2026-03-01T00:00:00`), 400, 'invalid_request', ['to']);
      expectApiError(await get(`${path}?format=xml`), 400, 'invalid_request', ['format']);
      for (const q of [`${window}&currency=USD`, `${window}&currency=JPY&format=csv`, '']) expect((await get(`${path}?${q}`)).statusCode).toBe(200);
    }
    expect(await tables()).toEqual(before);
  });
});
