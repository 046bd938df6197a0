import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CLICK_TTL_S, DEFAULT_FLAG_AT, DEFAULT_REJECT_AT } from '../src/admin/schemas.js';
import {
  adminTablesSnapshot,
  createToken,
  eventually,
  expectApiError,
  get,
  patch,
  post,
  startSecondNode,
  type SecondNode,
} from './helpers/admin.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';

let t: TestEngine;
let advertiserId: string;
let publisherId: string;
beforeAll(async () => {
  t = await startTestEngine();
  const seeded = await seedCatalog(t.app);
  advertiserId = seeded.advertiser.id;
  publisherId = seeded.publisher.id;
});
afterAll(async () => {
  await t?.close();
});

const LANDING = 'https://adv.example/lp?cid={clickid}';

async function createOffer(body: object = {}) {
  const res = await post(t.app, '/v1/offers', { advertiserId, name: 'Offer', url: LANDING, payout: '2.50', currency: 'USD', ...body });
  expect(res.statusCode, res.body).toBe(201);
  return res.json();
}

async function storedOffer(id: string) {
  const [row] = await t.sql`select advertiser_id, name, url, payout_minor, currency, click_ttl_s, daily_cap, fraud from offers where id = ${id}`;
  return row;
}

describe('offers: happy path', () => {
  it('stores the payout as integer minor units and returns it as a decimal string', async () => {
    const body = await createOffer({ payout: '2.50', currency: 'USD' });
    expect(body.id).toMatch(/^off_[A-Za-z0-9_-]+$/);
    expect(body).toMatchObject({ advertiserId, name: 'Offer', url: LANDING, payout: '2.50', currency: 'USD' });
    const row = await storedOffer(body.id);
    expect(row?.payout_minor).toBe(250n);
    expect(typeof row?.payout_minor).toBe('bigint');
    expect(row?.currency).toBe('USD');
  });

  const amounts: Array<[string, string, bigint, string]> = [
    ['2.5', 'USD', 250n, '2.50'],
    ['0', 'USD', 0n, '0.00'],
    ['0.01', 'USD', 1n, '0.01'],
    ['1234567.89', 'EUR', 123456789n, '1234567.89'],
    ['500', 'JPY', 500n, '500'],
    ['1.234', 'KWD', 1234n, '1.234'],
  ];
  for (const [payout, currency, minor, shown] of amounts) {
    it(`"${payout}" ${currency} is stored as ${minor} minor units and shown as "${shown}"`, async () => {
      const body = await createOffer({ payout, currency });
      expect(body.payout).toBe(shown);
      expect(body.currency).toBe(currency);
      expect((await storedOffer(body.id))?.payout_minor).toBe(minor);
      expect((await get(t.app, `/v1/offers/${body.id}`)).json().payout).toBe(shown);
    });
  }

  it('applies defaults for click TTL, daily cap and fraud thresholds, and stores explicit ones', async () => {
    const plain = await createOffer();
    expect(plain).toMatchObject({
      clickTtlS: DEFAULT_CLICK_TTL_S,
      dailyCap: null,
      fraud: { flagAt: DEFAULT_FLAG_AT, rejectAt: DEFAULT_REJECT_AT, rules: {} },
    });
    expect(await storedOffer(plain.id)).toMatchObject({ click_ttl_s: DEFAULT_CLICK_TTL_S, daily_cap: null, fraud: {} });

    const tuned = await createOffer({ clickTtlS: 3600, dailyCap: 1000, fraud: { flagAt: 30, rejectAt: 70 } });
    expect(tuned).toMatchObject({ clickTtlS: 3600, dailyCap: 1000, fraud: { flagAt: 30, rejectAt: 70, rules: {} } });
    expect(await storedOffer(tuned.id)).toMatchObject({ click_ttl_s: 3600, daily_cap: 1000, fraud: { flagAt: 30, rejectAt: 70 } });
  });

  it('GET on the item and the collection returns what was stored', async () => {
    const created = await createOffer({ name: 'Listed', payout: '7.00', currency: 'GBP' });
    const item = await get(t.app, `/v1/offers/${created.id}`);
    expect(item.statusCode).toBe(200);
    expect(item.json()).toEqual(created);
    const list = await get(t.app, '/v1/offers');
    expect(list.statusCode).toBe(200);
    expect(list.json().items).toContainEqual(created);
  });

  it('PATCH changes payout, URL, TTL and cap in the stored row, keeping the currency', async () => {
    const created = await createOffer({ payout: '2.50', currency: 'USD', dailyCap: 10 });
    const res = await patch(t.app, `/v1/offers/${created.id}`, {
      name: 'Renamed',
      payout: '3',
      url: 'https://adv.example/v2?c={clickid}&s={sub1}',
      clickTtlS: 60,
      dailyCap: null,
    });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ name: 'Renamed', payout: '3.00', currency: 'USD', clickTtlS: 60, dailyCap: null });
    expect(await storedOffer(created.id)).toMatchObject({
      name: 'Renamed',
      url: 'https://adv.example/v2?c={clickid}&s={sub1}',
      payout_minor: 300n,
      currency: 'USD',
      click_ttl_s: 60,
      daily_cap: null,
    });
  });

  it('PATCH of the landing URL reaches click redirects on another node within 5 s', async () => {
    const created = await createOffer();
    let other: SecondNode | undefined;
    try {
      other = await startSecondNode(t.url);
      const node = other;
      const res = await patch(t.app, `/v1/offers/${created.id}`, { url: 'https://moved.example/lp?cid={clickid}' });
      expect(res.statusCode, res.body).toBe(200);
      const click = await eventually(
        () => node.app.inject({ method: 'GET', url: `/c/${created.id}?pub=${publisherId}` }),
        (r) => String(r.headers.location).startsWith('https://moved.example/lp?cid='),
      );
      expect(click.statusCode).toBe(302);
    } finally {
      await other?.close();
    }
  });
});

describe('offers: errors', () => {
  const invalid: Array<{ why: string; body: Record<string, unknown>; paths: string[] }> = [
    { why: '"2.505" USD (more decimals than the currency has)', body: { payout: '2.505' }, paths: ['payout'] },
    { why: '"500.5" JPY (JPY has no decimals)', body: { payout: '500.5', currency: 'JPY' }, paths: ['payout'] },
    { why: 'a negative payout', body: { payout: '-1.00' }, paths: ['payout'] },
    { why: 'an exponent', body: { payout: '1e3' }, paths: ['payout'] },
    { why: 'a payout given as a JSON number', body: { payout: 2.5 }, paths: ['payout'] },
    { why: 'a payout with a thousands separator', body: { payout: '1,000.00' }, paths: ['payout'] },
    { why: 'an absurdly large payout', body: { payout: '99999999999999999' }, paths: ['payout'] },
    { why: 'a lower-case currency', body: { currency: 'usd' }, paths: ['currency'] },
    { why: 'an invented currency', body: { currency: 'ABC' }, paths: ['currency'] },
    { why: 'an unknown advertiser', body: { advertiserId: 'adv_missing' }, paths: ['advertiserId'] },
    { why: 'a javascript: landing URL', body: { url: 'javascript:alert(document.cookie)' }, paths: ['url'] },
    { why: 'an ftp: landing URL', body: { url: 'ftp://adv.example/lp' }, paths: ['url'] },
    { why: 'a file: landing URL', body: { url: 'file:///etc/passwd' }, paths: ['url'] },
    { why: 'a data: landing URL', body: { url: 'data:text/html,<script>alert(1)</script>' }, paths: ['url'] },
    { why: 'a macro in the host', body: { url: 'https://{sub1}/lp' }, paths: ['url'] },
    { why: 'a zero click TTL', body: { clickTtlS: 0 }, paths: ['clickTtlS'] },
    { why: 'a fractional daily cap', body: { dailyCap: 1.5 }, paths: ['dailyCap'] },
    { why: 'flagAt above rejectAt', body: { fraud: { flagAt: 90, rejectAt: 50 } }, paths: ['fraud.flagAt'] },
    { why: 'a score threshold over 100', body: { fraud: { rejectAt: 101 } }, paths: ['fraud.rejectAt'] },
    { why: 'unknown fields, each reported', body: { payoutMinor: 250, status: 'live', fraud: { mode: 'strict' } }, paths: ['payoutMinor', 'status', 'fraud.mode'] },
  ];
  for (const c of invalid) {
    it(`POST refuses ${c.why} with 400 naming the fields, storing nothing`, async () => {
      const before = await adminTablesSnapshot(t.sql);
      const res = await post(t.app, '/v1/offers', { advertiserId, name: 'Bad', url: LANDING, payout: '2.50', currency: 'USD', ...c.body });
      expectApiError(res, 400, 'invalid_request', c.paths);
      expect(await adminTablesSnapshot(t.sql)).toEqual(before);
    });
  }

  it('POST lists every bad field at once', async () => {
    const res = await post(t.app, '/v1/offers', { name: '', url: 'ftp://x', payout: 'two', currency: 'XYZ1' });
    expectApiError(res, 400, 'invalid_request', ['advertiserId', 'name', 'url', 'payout', 'currency']);
  });

  it('PATCH refuses a payout too precise for the offer’s currency, a changed currency, or a bad URL; the row stays', async () => {
    const yen = await createOffer({ payout: '500', currency: 'JPY' });
    const before = await adminTablesSnapshot(t.sql);
    expectApiError(await patch(t.app, `/v1/offers/${yen.id}`, { payout: '1.50' }), 400, 'invalid_request', ['payout']);
    expectApiError(await patch(t.app, `/v1/offers/${yen.id}`, { currency: 'USD' }), 400, 'invalid_request', ['currency']);
    expectApiError(await patch(t.app, `/v1/offers/${yen.id}`, { advertiserId: 'adv_other' }), 400, 'invalid_request', ['advertiserId']);
    expectApiError(await patch(t.app, `/v1/offers/${yen.id}`, { url: 'javascript:void(0)' }), 400, 'invalid_request', ['url']);
    expect(await adminTablesSnapshot(t.sql)).toEqual(before);
    expect((await get(t.app, `/v1/offers/${yen.id}`)).json().payout).toBe('500');
  });

  it('unknown offer IDs are 404 on GET and PATCH', async () => {
    expectApiError(await get(t.app, '/v1/offers/off_missing'), 404, 'not_found');
    expectApiError(await patch(t.app, '/v1/offers/off_missing', { name: 'x' }), 404, 'not_found');
  });
});

describe('offers: security', () => {
  it('401 without a valid token and 403 for analyst and finance tokens on every offer route; nothing changes', async () => {
    const created = await createOffer();
    const tokens = [await createToken(t.app, 'analyst'), await createToken(t.app, 'finance')];
    const before = await adminTablesSnapshot(t.sql);
    const routes = [
      { method: 'GET', url: '/v1/offers' },
      { method: 'GET', url: `/v1/offers/${created.id}` },
      { method: 'POST', url: '/v1/offers', payload: { advertiserId, name: 'x', url: LANDING, payout: '1.00', currency: 'USD' } },
      { method: 'PATCH', url: `/v1/offers/${created.id}`, payload: { payout: '100.00' } },
    ] as const;
    for (const route of routes) {
      expectApiError(await t.app.inject({ ...route }), 401, 'unauthorized');
      expectApiError(await t.app.inject({ ...route, headers: auth('Zm9yZ2VkLXRva2VuLWZvcmdlZA') }), 401, 'unauthorized');
      for (const { token } of tokens) expectApiError(await t.app.inject({ ...route, headers: auth(token) }), 403, 'forbidden');
    }
    expect(await adminTablesSnapshot(t.sql)).toEqual(before);
  });
});
