import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadFxHistory } from '../src/fx/fx-store.js';
import { convertTotals } from '../src/fx/convert.js';
import { createToken, expectApiError, get } from './helpers/admin.js';
import { auth, startTestEngine, type TestEngine } from './helpers/engine.js';

/** PUT/GET /v1/fx-rates against real PostgreSQL, and the reports' loader over what was stored. */

let t: TestEngine;
let finance: string;

const put = (date: string, payload: unknown, token?: string) =>
  t.app.inject({ method: 'PUT', url: `/v1/fx-rates/${date}`, headers: auth(token), payload: payload as object });

const storedRates = () => t.sql`select d.day::text as day, d.base, r.currency, r.rate::text as rate
  from fx_rate_days d left join fx_rates r on r.day = d.day order by d.day, r.currency`;

beforeAll(async () => {
  t = await startTestEngine();
  finance = (await createToken(t.app, 'finance')).token;
});
afterAll(async () => {
  await t?.close();
});

describe('PUT /v1/fx-rates/:date', () => {
  it('stores the day exactly as sent and returns it; GET returns the same', async () => {
    const res = await put('2026-03-01', { base: 'USD', rates: { EUR: '0.920', JPY: '151.3', KWD: '0.307512345678' } }, finance);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body).toEqual({ date: '2026-03-01', base: 'USD', rates: { EUR: '0.920', JPY: '151.3', KWD: '0.307512345678' }, updatedAt: expect.any(String) });
    expect(await storedRates()).toEqual([
      { day: '2026-03-01', base: 'USD', currency: 'EUR', rate: '0.920' },
      { day: '2026-03-01', base: 'USD', currency: 'JPY', rate: '151.3' },
      { day: '2026-03-01', base: 'USD', currency: 'KWD', rate: '0.307512345678' },
    ]);
    const got = await get(t.app, '/v1/fx-rates/2026-03-01', finance);
    expect(got.statusCode).toBe(200);
    expect(got.json()).toEqual(body);
  });

  it('a second PUT of the day replaces its whole set, base included', async () => {
    const res = await put('2026-03-01', { base: 'EUR', rates: { USD: '1.09' } }, finance);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ date: '2026-03-01', base: 'EUR', rates: { USD: '1.09' } });
    expect(await storedRates()).toEqual([{ day: '2026-03-01', base: 'EUR', currency: 'USD', rate: '1.09' }]);
  });

  it('refuses impossible days, unknown currencies and bad rates, changing nothing', async () => {
    const before = await storedRates();
    const cases: [string, unknown, string[]][] = [
      ['2026-02-30', { base: 'USD', rates: { EUR: '0.9' } }, ['date']],
      ['2026-13-01', { base: 'USD', rates: { EUR: '0.9' } }, ['date']],
      ['20260301', { base: 'USD', rates: { EUR: '0.9' } }, ['date']],
      ['2026-03-02', { base: 'XXY', rates: { EUR: '0.9' } }, ['base']],
      ['2026-03-02', { base: 'USD', rates: { EUR: '0' } }, ['rates.EUR']],
      ['2026-03-02', { base: 'USD', rates: { EUR: '-0.9' } }, ['rates.EUR']],
      ['2026-03-02', { base: 'USD', rates: { EUR: '1e3' } }, ['rates.EUR']],
      ['2026-03-02', { base: 'USD', rates: { EUR: 0.92 } }, ['rates.EUR']],
      ['2026-03-02', { base: 'USD', rates: { EUR: '0.1234567890123' } }, ['rates.EUR']],
      ['2026-03-02', { base: 'USD', rates: { eur: '0.9', USD: '1' } }, ['rates.eur', 'rates.USD']],
      ['2026-03-02', { base: 'USD', rates: {} }, ['rates']],
      ['2026-03-02', { base: 'USD', rates: { EUR: '0.9' }, note: 'x' }, ['note']],
      ['2026-02-29', { base: 'usd', rates: { EUR: '0.9' } }, ['date', 'base']],
      ['2026-02-29', { rates: { EUR: '0.9' } }, ['date', 'base']],
    ];
    for (const [date, payload, paths] of cases) {
      expectApiError(await put(date, payload, finance), 400, 'invalid_request', paths);
    }
    expect(await storedRates()).toEqual(before);
    const [{ n } = { n: -1 }] = await t.sql<{ n: number }[]>`select count(*)::int as n from admin_audit where entity = 'fx_rates'`;
    expect(n).toBe(2);
  });

  it('is for finance (and admin), not analysts', async () => {
    const analyst = (await createToken(t.app, 'analyst')).token;
    expectApiError(await put('2026-03-05', { base: 'USD', rates: { EUR: '0.9' } }, analyst), 403, 'forbidden');
    expectApiError(await get(t.app, '/v1/fx-rates/2026-03-01', analyst), 403, 'forbidden');
    expect((await put('2026-03-05', { base: 'USD', rates: { EUR: '0.9' } })).statusCode).toBe(200);
  });
});

describe('GET /v1/fx-rates', () => {
  it('lists day sets newest first within from/to, paged; an unknown day is a 404', async () => {
    await put('2026-03-03', { base: 'USD', rates: { EUR: '0.95' } }, finance);
    await put('2026-03-04', { base: 'USD', rates: { JPY: '150' } }, finance);
    const all = (await get(t.app, '/v1/fx-rates', finance)).json();
    expect(all.items.map((i: { date: string }) => i.date)).toEqual(['2026-03-05', '2026-03-04', '2026-03-03', '2026-03-01']);
    const ranged = (await get(t.app, '/v1/fx-rates?from=2026-03-02&to=2026-03-04', finance)).json();
    expect(ranged.items.map((i: { date: string }) => i.date)).toEqual(['2026-03-04', '2026-03-03']);
    const first = (await get(t.app, '/v1/fx-rates?limit=3', finance)).json();
    expect(first.items).toHaveLength(3);
    const second = (await get(t.app, `/v1/fx-rates?limit=3&cursor=${first.nextCursor}`, finance)).json();
    expect(second).toEqual({ items: [all.items[3]], nextCursor: null });
    expectApiError(await get(t.app, '/v1/fx-rates/2026-03-02', finance), 404, 'not_found');
    expectApiError(await get(t.app, '/v1/fx-rates/2026-02-29', finance), 400, 'invalid_request', ['date']);
    expectApiError(await get(t.app, '/v1/fx-rates?from=2026-02-30', finance), 400, 'invalid_request', ['from']);
  });

  it('feeds the reports: totals from the stored history, falling back to earlier days, never guessing', async () => {
    const history = await loadFxHistory(t.sql);
    const totals = convertTotals(
      [
        { day: '2026-03-04', currency: 'EUR', amountMinor: 950n }, // 3 March: 9.50 EUR / 0.95 = 10.00 USD
        { day: '2026-03-01', currency: 'USD', amountMinor: 109n }, // already in the target currency: no rate needed
        { day: '2026-03-04', currency: 'JPY', amountMinor: 75n }, // 4 March: 75 / 150 = 0.50 USD
        { day: '2026-02-27', currency: 'EUR', amountMinor: 100n }, // no rate at or before
      ],
      'USD',
      history,
    );
    expect(totals).toEqual({ currency: 'USD', convertedTotalMinor: 1000n + 109n + 50n, unconverted: { EUR: 100n } });
  });
});
