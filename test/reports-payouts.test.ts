import { parse } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, expectApiError, post } from './helpers/admin.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { insertConversion } from './helpers/reconcile.js';

/** GET /v1/reports/payouts (CONTRACT §8): per publisher and currency, money as decimal strings, JSON or RFC 4180 CSV. */

let t: TestEngine;
let pub1: string;
let pub2: string;
const from = new Date(Date.now() - 3600_000).toISOString();
const to = new Date(Date.now() + 3600_000).toISOString();

beforeAll(async () => {
  // Deliveries in this file are rows only: no worker traffic may change them.
  t = await startTestEngine();
  await t.engine.deliveries.stop();
  const seeded = await seedCatalog(t.app, { publisher: { name: 'Pub, "One"' } });
  const other = await post(t.app, '/v1/publishers', { name: 'Pub Two', postbackUrl: 'https://two.example/pb' });
  const jpyOffer = await post(t.app, '/v1/offers', { advertiserId: seeded.advertiser.id, name: 'JP', url: 'https://adv.example/?c={clickid}', payout: '300', currency: 'JPY' });
  pub1 = seeded.publisher.id;
  pub2 = other.json().id;
  const base = { advertiserId: seeded.advertiser.id, offerId: seeded.offer.id, currency: 'USD' };
  const usd = (txid: string, payoutMinor: bigint, extra: object = {}) => insertConversion(t.sql, { ...base, publisherId: pub1, txid, payoutMinor, ...extra });
  const paid = await usd('p1-accepted', 250n);
  await usd('p1-recovered-approved', 125n, { source: 'pixel', decision: 'flagged', reviewState: 'approved' });
  await usd('p1-flagged', 300n, { decision: 'flagged' });
  await usd('p1-fraud', 500n, { decision: 'rejected' });
  await usd('p1-chargeback', 250n, { status: 'rejected' });
  await usd('p1-pending', 250n, { status: 'pending' });
  await usd('p1-old', 999n, { createdAt: new Date(Date.now() - 2 * 86_400_000) });
  await insertConversion(t.sql, { ...base, offerId: jpyOffer.json().id, currency: 'JPY', publisherId: pub1, txid: 'p1-yen', payoutMinor: 300n });
  for (let i = 0; i < 3; i++) await insertConversion(t.sql, { ...base, publisherId: pub2, txid: `p2-${i}`, payoutMinor: 10n });
  // Two deliveries of one conversion: its first and a status change's (sql/000075 numbers them).
  await t.sql`insert into deliveries (id, conversion_id, conversion_created_at, publisher_id, state, deadline_at, refired_at, sequence)
    select v.id, c.id, c.created_at, ${pub1}, v.state, v.deadline_at, v.refired_at, v.sequence
    from conversions c, (values
      ('dlv_r', 'delivered', now() + interval '1 day', now(), 0),
      ('dlv_x', 'expired', now() - interval '1 day', null, 1)) as v(id, state, deadline_at, refired_at, sequence)
    where c.id = ${paid}`;
});
afterAll(async () => t?.close());

const report = (query: string, token?: string) => t.app.inject({ url: `/v1/reports/payouts?${query}`, headers: auth(token) });

describe('payout report', () => {
  it('sums per publisher and currency, each conversion in exactly one state, never adding currencies', async () => {
    const res = await report(`from=${from}&to=${to}`);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ from: new Date(from).toISOString(), to: new Date(to).toISOString(), publisherId: null, currency: null });
    expect(body).not.toHaveProperty('converted');
    expect(body.rows).toEqual([
      { publisherId: pub1, publisherName: 'Pub, "One"', currency: 'JPY', conversions: 1, approved: 1, payout: '300', revenue: '300', margin: '0', pending: 0, flagged: 0, rejected: 0, s2s: 1, pixel: 0, refired: 0, expired: 0 },
      { publisherId: pub1, publisherName: 'Pub, "One"', currency: 'USD', conversions: 6, approved: 2, payout: '3.75', revenue: '3.75', margin: '0.00', pending: 1, flagged: 1, rejected: 2, s2s: 5, pixel: 1, refired: 1, expired: 1 },
      { publisherId: pub2, publisherName: 'Pub Two', currency: 'USD', conversions: 3, approved: 3, payout: '0.30', revenue: '0.30', margin: '0.00', pending: 0, flagged: 0, rejected: 0, s2s: 3, pixel: 0, refired: 0, expired: 0 },
    ].sort((a, b) => (a.publisherId === b.publisherId ? (a.currency < b.currency ? -1 : 1) : a.publisherId < b.publisherId ? -1 : 1)));
    expect(body.totals).toEqual([
      { currency: 'JPY', conversions: 1, approved: 1, payout: '300', revenue: '300', margin: '0', pending: 0, flagged: 0, rejected: 0, s2s: 1, pixel: 0, refired: 0, expired: 0 },
      { currency: 'USD', conversions: 9, approved: 5, payout: '4.05', revenue: '4.05', margin: '0.00', pending: 1, flagged: 1, rejected: 2, s2s: 8, pixel: 1, refired: 1, expired: 1 },
    ]);
  });

  it('filters by publisher and by time; without a window it covers everything', async () => {
    const only2 = (await report(`from=${from}&to=${to}&publisherId=${pub2}`)).json();
    expect(only2.rows.map((r: { publisherId: string }) => r.publisherId)).toEqual([pub2]);
    expect(only2.publisherId).toBe(pub2);
    const all = (await report('')).json();
    expect(all.totals.find((x: { currency: string }) => x.currency === 'USD')).toMatchObject({ conversions: 10, approved: 6, payout: '14.04' });
    const empty = (await report('from=2020-01-01&to=2020-01-02')).json();
    expect(empty).toMatchObject({ rows: [], totals: [] });
  });

  it('as RFC 4180 CSV: a header row, CRLF, quoted where needed, the same figures as the JSON', async () => {
    const json = (await report(`from=${from}&to=${to}`)).json();
    const res = await report(`from=${from}&to=${to}&format=csv`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv; charset=utf-8/);
    expect(res.headers['content-disposition']).toContain('attachment');
    const lines = res.body.split('\r\n');
    expect(lines[0]).toBe('publisherId,publisherName,currency,conversions,approved,payout,revenue,margin,pending,flagged,rejected,s2s,pixel,refired,expired');
    expect(res.body).toContain('"Pub, ""One"""');
    expect(lines[lines.length - 1]).toBe('');
    const records = parse(res.body, { columns: true }) as Record<string, string>[];
    expect(records).toEqual(json.rows.map((r: Record<string, unknown>) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)]))));
  });

  it('is for finance: 401 without a token, 403 for an analyst; bad queries are 400 with the field named', async () => {
    const analyst = await createToken(t.app, 'analyst');
    const finance = await createToken(t.app, 'finance');
    expectApiError(await t.app.inject({ url: '/v1/reports/payouts' }), 401, 'unauthorized');
    expectApiError(await report('', analyst.token), 403, 'forbidden');
    expect((await report('', finance.token)).statusCode).toBe(200);
    expectApiError(await report('from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z'), 400, 'invalid_request', ['to']);
    expectApiError(await report('format=xml'), 400, 'invalid_request', ['format']);
    expectApiError(await report('from=yesterday'), 400, 'invalid_request', ['from']);
    expectApiError(await report('currency=usd'), 400, 'invalid_request', ['currency']);
    expectApiError(await report('currency=XYZ'), 400, 'invalid_request', ['currency']);
    expectApiError(await report('surprise=1'), 400, 'invalid_request');
  });
});
