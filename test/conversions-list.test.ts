import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONVERSION_CSV_COLUMNS, conversionsCsv } from '../src/conversions/csv.js';
import { createToken, expectApiError, get, patch } from './helpers/admin.js';
import { seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { postConversion, review, type Seeded } from './helpers/review.js';

/**
 * GET /v1/conversions for the people in the web UI: every item names its offer, publisher and
 * advertiser (analysts and finance may not list those), `reason` filters by a reason code, and
 * `format=csv` downloads every conversion the filters select.
 */

const HOSTING = '2.56.16.1'; // M247 Europe, a VPN provider's network: datacenter_ip at 15, so a fresh click is flagged, not rejected

let t: TestEngine;
let analyst: string;
let finance: string;
let flaggedShop: Seeded;
let plainShop: Seeded;
let ids: { flagged: string; datacenter: string; accepted: string };

beforeAll(async () => {
  t = await startTestEngine();
  analyst = (await createToken(t.app, 'analyst')).token;
  finance = (await createToken(t.app, 'finance')).token;
  // The default fraud rules flag a postback sent right after its click (ctit_too_short).
  flaggedShop = await seedCatalog(t.app, { advertiser: { name: 'Northwind' }, publisher: { name: 'Blue Media' }, offer: { name: 'Summer Sale', fraud: {} } });
  plainShop = await seedCatalog(t.app, { advertiser: { name: 'Contoso' }, publisher: { name: 'Red Clicks' }, offer: { name: 'Winter Deal' } });
  const flagged = await postConversion(t.app, flaggedShop);
  const datacenter = await postConversion(t.app, flaggedShop, { click: { ip: HOSTING } });
  const accepted = await postConversion(t.app, plainShop);
  expect([flagged.decision, datacenter.decision, accepted.decision]).toEqual(['flagged', 'flagged', 'accepted']);
  expect(datacenter.reasons).toContain('datacenter_ip');
  ids = { flagged: flagged.conversionId, datacenter: datacenter.conversionId, accepted: accepted.conversionId };
});
afterAll(async () => t?.close());

const list = async (query: string, token = analyst) => {
  const res = await get(t.app, `/v1/conversions${query}`, token);
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { items: Record<string, unknown>[]; nextCursor: string | null };
};

describe('names from the catalog', () => {
  it('each listed conversion names its offer, publisher and advertiser, for analysts and finance alike', async () => {
    for (const token of [analyst, finance]) {
      const byId = new Map((await list('', token)).items.map((i) => [i.id, i]));
      expect(byId.get(ids.flagged)).toMatchObject({ offerId: flaggedShop.offer.id, offerName: 'Summer Sale', publisherName: 'Blue Media', advertiserName: 'Northwind' });
      expect(byId.get(ids.accepted)).toMatchObject({ offerId: plainShop.offer.id, offerName: 'Winter Deal', publisherName: 'Red Clicks', advertiserName: 'Contoso' });
    }
  });

  it('the detail, the queue and a review answer name them too, deliveries included', async () => {
    const detail = (await get(t.app, `/v1/conversions/${ids.accepted}`, finance)).json();
    expect(detail).toMatchObject({ offerName: 'Winter Deal', publisherName: 'Red Clicks', advertiserName: 'Contoso' });
    expect(detail.deliveries.length).toBeGreaterThan(0);
    for (const d of detail.deliveries) expect(d).toMatchObject({ publisherId: plainShop.publisher.id, publisherName: 'Red Clicks' });
    // The delivery log (finance reads it, but may not list publishers) names the publisher too.
    const log = (await get(t.app, `/v1/deliveries?conversionId=${ids.accepted}`, finance)).json();
    expect(log.items.map((d: { id: string }) => d.id)).toEqual(detail.deliveries.map((d: { id: string }) => d.id));
    for (const d of log.items) expect(d).toMatchObject({ publisherId: plainShop.publisher.id, publisherName: 'Red Clicks' });
    const queue = (await get(t.app, '/v1/reviews/queue', analyst)).json();
    expect(queue.items.map((i: { offerName: string }) => i.offerName)).toEqual(['Summer Sale', 'Summer Sale']);
    const decided = await review(t.app, ids.accepted, { decision: 'approve' }, analyst);
    expect(decided.statusCode, decided.body).toBe(201);
    expect(decided.json().conversion).toMatchObject({ id: ids.accepted, offerName: 'Winter Deal', publisherName: 'Red Clicks', advertiserName: 'Contoso' });
  });

  it('a rename shows on the next read; the stored conversion keeps only the IDs', async () => {
    expect((await patch(t.app, `/v1/offers/${plainShop.offer.id}`, { name: 'Winter Deal 2' })).statusCode).toBe(200);
    expect((await list(`?offerId=${plainShop.offer.id}`)).items.map((i) => i.offerName)).toEqual(['Winter Deal 2']);
    const [row] = await t.sql`select offer_id from conversions where id = ${ids.accepted}`;
    expect(row?.offer_id).toBe(plainShop.offer.id);
  });
});

describe('?reason=', () => {
  it('lists only conversions whose reasons include the code, newest first, with the other filters', async () => {
    const expected = await t.sql`select id from conversions where 'datacenter_ip' = any(reasons) order by created_at desc, id desc`;
    expect(expected.map((r) => r.id)).toEqual([ids.datacenter]);
    expect((await list('?reason=datacenter_ip')).items.map((i) => i.id)).toEqual([ids.datacenter]);
    expect((await list('?reason=ctit_too_short')).items.map((i) => i.id)).toEqual([ids.datacenter, ids.flagged]);
    expect((await list(`?reason=ctit_too_short&decision=accepted`)).items).toEqual([]);
    expect((await list(`?reason=ctit_too_short&publisherId=${plainShop.publisher.id}`)).items).toEqual([]);
    expect((await list('?reason=no_such_rule')).items).toEqual([]);
  });

  it('refuses a value that is not a reason code with the contract 400, naming the field', async () => {
    for (const bad of ['Datacenter_IP', 'ctit too short', '', `a${'b'.repeat(64)}`, "x'or'1"]) {
      expectApiError(await get(t.app, `/v1/conversions?reason=${encodeURIComponent(bad)}`, analyst), 400, 'invalid_request', ['reason']);
    }
    expectApiError(await get(t.app, '/v1/conversions?reason=a&reason=b', analyst), 400, 'invalid_request', ['reason']);
  });
});

describe('?format=csv', () => {
  const csvOf = async (query: string, token = finance) => {
    const res = await get(t.app, `/v1/conversions?format=csv${query}`, token);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8; header=present');
    expect(res.headers['content-disposition']).toBe('attachment; filename="conversions.csv"');
    return { text: res.body, rows: parseCsv(res.body, { columns: true }) as Record<string, string>[] };
  };

  it('downloads every conversion, newest first, one row each with names, as the database holds them', async () => {
    const { text, rows } = await csvOf('');
    expect(text.split('\r\n')[0]).toBe(CONVERSION_CSV_COLUMNS.join(','));
    const db = await t.sql`select id, txid, click_id, reasons, payout_minor, decision from conversions order by created_at desc, id desc`;
    expect(rows.map((r) => r.id)).toEqual(db.map((r) => r.id));
    const datacenter = rows.find((r) => r.id === ids.datacenter);
    const stored = db.find((r) => r.id === ids.datacenter);
    expect(datacenter).toMatchObject({ txid: stored?.txid, clickid: stored?.click_id, decision: 'flagged', offerName: 'Summer Sale', publisherName: 'Blue Media', advertiserName: 'Northwind', currency: 'USD' });
    expect(datacenter?.reasons).toBe((stored?.reasons as string[]).join(' '));
    expect(datacenter?.payout).toBe((Number(stored?.payout_minor) / 100).toFixed(2));
  });

  it('applies the same filters as the JSON list, for analysts too', async () => {
    expect((await csvOf('&reason=datacenter_ip', analyst)).rows.map((r) => r.id)).toEqual([ids.datacenter]);
    expect((await csvOf('&decision=accepted')).rows.map((r) => r.id)).toEqual([ids.accepted]);
    expect((await csvOf(`&offerId=${flaggedShop.offer.id}`)).rows.map((r) => r.id)).toEqual([ids.datacenter, ids.flagged]);
    const none = await csvOf('&txid=tx_nobody_has_this');
    expect(none.rows).toEqual([]);
    expect(none.text).toBe(`${CONVERSION_CSV_COLUMNS.join(',')}\r\n`);
  });

  it('pages through the list with its cursor: a page size of one gives the same rows', async () => {
    const stream = await conversionsCsv(t.sql, t.engine.catalog, { decision: 'flagged' }, 1);
    let text = '';
    for await (const chunk of stream) text += String(chunk);
    const expected = await t.sql`select id from conversions where decision = 'flagged' order by created_at desc, id desc`;
    expect(expected.length).toBe(2);
    expect((parseCsv(text, { columns: true }) as { id: string }[]).map((r) => r.id)).toEqual(expected.map((r) => r.id));
  });

  it('keeps a spreadsheet from running a txid or name as a formula, and a negative margin a number', async () => {
    const risky = await seedCatalog(t.app, { advertiser: { name: 'Fabrikam' }, publisher: { name: '+Plus Media' }, offer: { name: '=HYPERLINK("https://x.example")', payout: '2.50', revenue: '1.00' } });
    const sale = await postConversion(t.app, risky, { txid: '@SUM(A1)' });
    const { rows } = await csvOf(`&advertiserId=${risky.advertiser.id}`);
    expect(rows).toEqual([expect.objectContaining({ id: sale.conversionId, txid: "'@SUM(A1)", offerName: `'=HYPERLINK("https://x.example")`, publisherName: "'+Plus Media", margin: '-1.50', payout: '2.50', revenue: '1.00' })]);
    const [row] = await t.sql`select txid, revenue_minor - payout_minor as margin from conversions where id = ${sale.conversionId}`;
    expect(row).toEqual({ txid: '@SUM(A1)', margin: -150n });
    // The payout report's CSV (the UI's Payouts download) keeps the negative margin a number too.
    const [at] = await t.sql`select created_at from conversions where id = ${sale.conversionId}`;
    const window = new URLSearchParams({ from: new Date((at?.created_at as Date).getTime() - 3600_000).toISOString(), to: new Date((at?.created_at as Date).getTime() + 3600_000).toISOString() });
    const report = await get(t.app, `/v1/reports/payouts?${window}&publisherId=${risky.publisher.id}&format=csv`, finance);
    expect(report.statusCode, report.body).toBe(200);
    expect(parseCsv(report.body, { columns: true })).toEqual([expect.objectContaining({ publisherId: risky.publisher.id, publisherName: "'+Plus Media", margin: '-1.50' })]);
  });

  it('refuses a bad format, and a limit or cursor with csv, with the contract 400; roles as the list', async () => {
    expectApiError(await get(t.app, '/v1/conversions?format=xlsx', analyst), 400, 'invalid_request', ['format']);
    expectApiError(await get(t.app, '/v1/conversions?format=csv&limit=10&cursor=abc', analyst), 400, 'invalid_request', ['limit', 'cursor']);
    expectApiError(await get(t.app, '/v1/conversions?format=csv&reason=Bad', analyst), 400, 'invalid_request', ['reason']);
    expectApiError(await t.app.inject({ method: 'GET', url: '/v1/conversions?format=csv' }), 401, 'unauthorized');
    // The JSON list still pages as before.
    const page = await list('?limit=1');
    expect(page.items.length).toBe(1);
    expect(page.nextCursor).not.toBeNull();
  });
});
