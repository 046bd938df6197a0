import { parse as parseCsv } from 'csv-parse/sync';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, expectApiError } from './helpers/admin.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { insertConversion } from './helpers/reconcile.js';

/**
 * POST /v1/reconciliations/advertiser-report (CONTRACT §8): the advertiser's CSV against the engine's
 * records. Real-world files: BOM, CRLF, quoted fields with commas, quotes and line breaks; a
 * malformed one is a 400 naming the line, and nothing is ever written.
 */

let t: TestEngine;
let advId: string;
const ids: Record<string, string> = {};
const day = '2026-03-10';
const at = (hhmm: string) => new Date(`${day}T${hhmm}:00Z`);

beforeAll(async () => {
  t = await startTestEngine();
  const seeded = await seedCatalog(t.app);
  const other = await seedCatalog(t.app, { advertiser: { name: 'Other' } });
  advId = seeded.advertiser.id;
  const base = { advertiserId: advId, offerId: seeded.offer.id, publisherId: seeded.publisher.id, currency: 'USD', payoutMinor: 250n };
  ids.match = await insertConversion(t.sql, { ...base, txid: 'tx-match', clickId: 'clk-match', createdAt: at('10:00') });
  ids.payout = await insertConversion(t.sql, { ...base, txid: 'tx-payout', createdAt: at('10:05') });
  ids.status = await insertConversion(t.sql, { ...base, txid: 'tx-status', createdAt: at('10:10') });
  ids.click = await insertConversion(t.sql, { ...base, txid: 'tx-click', clickId: 'clk-engine', createdAt: at('10:15') });
  ids.extra = await insertConversion(t.sql, { ...base, txid: 'tx-extra', source: 'pixel', decision: 'flagged', createdAt: at('11:00') });
  ids.outside = await insertConversion(t.sql, { ...base, txid: 'tx-outside', createdAt: at('23:00') });
  // Another advertiser's txid is not this advertiser's conversion.
  await insertConversion(t.sql, { ...base, advertiserId: other.advertiser.id, offerId: other.offer.id, publisherId: other.publisher.id, txid: 'tx-missing', createdAt: at('10:20') });
});
afterAll(async () => t?.close());

const upload = (body: string | Buffer, query = `advertiserId=${advId}`, headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'POST', url: `/v1/reconciliations/advertiser-report?${query}`, headers: { ...auth(), 'content-type': 'text/csv', ...headers }, payload: body });

const snapshot = async () => [...(await t.sql`select * from conversions order by id`), ...(await t.sql`select * from reconciliation_runs`)];

describe('advertiser CSV against the engine', () => {
  it('finds matched, missing, extra and differing conversions in a file with BOM, CRLF and quoted fields', async () => {
    const before = await snapshot();
    const csv =
      '\uFEFFTime,Note,TXID,ClickID,Payout,Currency,Status\r\n' +
      `${day}T10:00:00Z,"plain",tx-match,clk-match,2.5,usd,Approved\r\n` +
      // A quoted field spanning two lines, with a CRLF inside it.
      `"${day} 10:05:00","said ""three"", then\r\nchanged it",tx-payout,,3.00,USD,approved\r\n` +
      '\r\n' +
      `${day}T10:10:00+00:00,"",tx-status,,2.50,USD,rejected\r\n` +
      `${day}T10:15:00Z,,"tx-click","clk-advertiser","2.50",USD,approved\r\n` +
      `${day}T10:20:00Z,"a, b",tx-missing,clk-x,1.00,EUR,pending\r\n` +
      `${day}T11:30:00Z,last,tx-match-2,,2.50,USD,approved\r\n`;
    const res = await upload(csv);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body).toMatchObject({ advertiserId: advId, from: `${day}T10:00:00.000Z`, to: `${day}T11:30:00.000Z` });
    expect(body.summary).toEqual({ rows: 6, matched: 1, differing: 3, missing: 2, extra: 1 });
    expect(body.matched).toEqual([{ line: 2, txid: 'tx-match', conversionId: ids.match }]);
    expect(body.differing).toEqual([
      { line: 3, txid: 'tx-payout', conversionId: ids.payout, differences: [{ field: 'payout', advertiser: '3.00', engine: '2.50' }] },
      { line: 6, txid: 'tx-status', conversionId: ids.status, differences: [{ field: 'status', advertiser: 'rejected', engine: 'approved' }] },
      { line: 7, txid: 'tx-click', conversionId: ids.click, differences: [{ field: 'clickid', advertiser: 'clk-advertiser', engine: 'clk-engine' }] },
    ]);
    expect(body.missing).toEqual([
      { line: 8, txid: 'tx-missing', clickid: 'clk-x', payout: '1.00', currency: 'EUR', status: 'pending', time: `${day}T10:20:00.000Z` },
      { line: 9, txid: 'tx-match-2', clickid: null, payout: '2.50', currency: 'USD', status: 'approved', time: `${day}T11:30:00.000Z` },
    ]);
    expect(body.extra).toEqual([
      expect.objectContaining({ conversionId: ids.extra, txid: 'tx-extra', payout: '2.50', currency: 'USD', source: 'pixel', decision: 'flagged' }),
    ]);
    expect(await snapshot()).toEqual(before);
  });

  it('gives the same findings as a spreadsheet with format=csv: one row per txid, both sides side by side', async () => {
    const csv =
      'txid,clickid,payout,currency,status,time\n' +
      `tx-match,clk-match,2.50,USD,approved,${day}T10:00:00Z\n` +
      `tx-payout,,=1+2,USD,approved,${day}T10:05:00Z\n`;
    const before = await snapshot();
    expectApiError(await upload(csv, `advertiserId=${advId}&format=csv`), 400, 'invalid_request');
    expectApiError(await upload(csv.replace('=1+2', '3.00'), `advertiserId=${advId}&format=xlsx`), 400, 'invalid_request');
    const good = csv.replace('=1+2', '3.00') + `tx-missing,clk-x,1.00,EUR,pending,${day}T10:20:00Z\n`;
    const res = await upload(good, `advertiserId=${advId}&format=csv&from=${day}T10:00:00Z&to=${day}T11:00:00Z`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    expect(res.headers['content-disposition']).toContain('advertiser-report.csv');
    const sheet = parseCsv(res.body, { columns: true }) as Record<string, string>[];
    expect(sheet.map((r) => [r.finding, r.line, r.txid, r.differences])).toEqual([
      ['matched', '2', 'tx-match', ''],
      ['differing', '3', 'tx-payout', 'payout'],
      ['missing', '4', 'tx-missing', ''],
      ['extra', '', 'tx-status', ''],
      ['extra', '', 'tx-click', ''],
      ['extra', '', 'tx-extra', ''],
    ]);
    expect(sheet[1]).toMatchObject({ conversion_id: ids.payout, advertiser_payout: '3.00', engine_payout: '2.50', advertiser_currency: 'USD', engine_currency: 'USD' });
    expect(sheet[2]).toMatchObject({ conversion_id: '', advertiser_clickid: 'clk-x', advertiser_payout: '1.00', engine_payout: '' });
    expect(sheet[5]).toMatchObject({ conversion_id: ids.extra, engine_payout: '2.50', advertiser_payout: '', engine_created_at: `${day}T11:00:00.000Z` });
    expect(await snapshot()).toEqual(before);
  });

  it('takes an explicit window for extras, and accepts LF files, a header row alone and files above 16 KiB', async () => {
    const wide = await upload(`txid,clickid,payout,currency,status,time\ntx-match,,2.50,USD,approved,${day}T10:00:00Z\n`, `advertiserId=${advId}&from=${day}T00:00:00Z&to=${day}T23:59:59Z`);
    expect(wide.statusCode, wide.body).toBe(200);
    expect(wide.json().extra.map((e: { txid: string }) => e.txid).sort()).toEqual(['tx-click', 'tx-extra', 'tx-outside', 'tx-payout', 'tx-status']);
    const headerOnly = await upload('txid,clickid,payout,currency,status,time\r\n');
    expect(headerOnly.json().summary).toEqual({ rows: 0, matched: 0, differing: 0, missing: 0, extra: 0 });
    const rows = Array.from({ length: 2000 }, (_, i) => `bulk-${i},,1.00,USD,approved,${day}T12:00:00Z`);
    const big = await upload(`txid,clickid,payout,currency,status,time\r\n${rows.join('\r\n')}\r\n`);
    expect(big.statusCode, big.body.slice(0, 200)).toBe(200);
    expect(big.json().summary).toMatchObject({ rows: 2000, missing: 2000 });
  });
});

describe('a malformed file is a 400 naming the line, and changes nothing', () => {
  const header = 'txid,clickid,payout,currency,status,time\r\n';
  const good = (txid: string) => `${txid},,2.50,USD,approved,${day}T10:00:00Z\r\n`;

  it('names the line of a structural or field error', async () => {
    const before = await snapshot();
    const cases: [string | Buffer, RegExp, string[]?][] = [
      [`${header}${good('a')}"unclosed,,2.50,USD,approved,${day}T10:00:00Z\r\n`, /line 3/i],
      [`${header}${good('a')}b,,2.50,USD,approved,${day}T10:00:00Z,surplus\r\n`, /line 3/i],
      [`${header}${good('a')}${good('b')}c,,2.5x,USD,approved,${day}T10:00:00Z\r\n`, /line 4: payout/, ['line 4.payout']],
      [`${header}${good('a')}"a\u0007b",,2.50,USD,approved,${day}T10:00:00Z\r\n`, /line 3: txid/, ['line 3.txid']],
      [`${header}${good('a')}${good('a')}`, /line 3: txid repeats the txid of line 2/, ['line 3.txid']],
      [`${header}x,,2.50,XXX,maybe,noon\r\n`, /line 2/, ['line 2.currency', 'line 2.status', 'line 2.time']],
      [`${header}x,,2.505,USD,approved,${day}T10:00:00Z\r\n`, /line 2: payout USD has 2 decimal places/, ['line 2.payout']],
      ['txid,payout,currency,status,time\r\nx,2.50,USD,approved,2026-01-01\r\n', /line 1.*clickid/, ['line 1']],
      ['\r\n\r\n', /line 1/, ['line 1']],
      [Buffer.from([0x74, 0x78, 0x69, 0x64, 0x0d, 0x0a, 0xff, 0xfe, 0x0d, 0x0a]), /UTF-8/, ['body']],
    ];
    for (const [body, message, paths] of cases) {
      const res = await upload(body);
      expectApiError(res, 400, 'invalid_request', paths);
      expect(res.json().error.message, String(body)).toMatch(message);
    }
    expect(await snapshot()).toEqual(before);
  });

  it('refuses the wrong content type, advertiser or size, and callers without the finance role', async () => {
    const analyst = await createToken(t.app, 'analyst');
    const csv = `${header}${good('a')}`;
    expectApiError(await upload(csv, `advertiserId=${advId}`, { 'content-type': 'application/json' }), 400, 'invalid_request');
    expectApiError(await upload('{"a":1}', `advertiserId=${advId}`, { 'content-type': 'application/json' }), 415, 'unsupported_media_type');
    const plain = await upload(csv, `advertiserId=${advId}`, { 'content-type': 'text/plain' });
    expectApiError(plain, 415, 'unsupported_media_type');
    expect(plain.json().error.message).toContain('text/csv');
    expectApiError(await upload(csv, 'advertiserId=adv_nope'), 404, 'unknown_advertiser');
    expectApiError(await upload(csv, ''), 400, 'invalid_request', ['advertiserId']);
    expectApiError(await upload(csv, `advertiserId=${advId}&from=${day}`), 400, 'invalid_request', ['to']);
    const huge = Buffer.alloc(10 * 1024 * 1024 + 1, 0x61);
    const tooBig = await upload(huge);
    expectApiError(tooBig, 413, 'payload_too_large');
    expect(tooBig.json().error.message).toContain('10 MiB');
    expectApiError(await upload(csv, `advertiserId=${advId}`, { authorization: `Bearer ${analyst.token}` }), 403, 'forbidden');
    expectApiError(await t.app.inject({ method: 'POST', url: `/v1/reconciliations/advertiser-report?advertiserId=${advId}`, headers: { 'content-type': 'text/csv' }, payload: csv }), 401, 'unauthorized');
  });
});
