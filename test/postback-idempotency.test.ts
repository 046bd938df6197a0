import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { mintClick, signedGetUrl, uniqueTx, webhookHeaders } from './helpers/postback.js';

/** Exactly once per (advertiser, txid): retries, replays, conflicts and status changes. */

let t: TestEngine;
let advId: string;
let whsec: string;
let offerId: string;
let pubId: string;

const get = (query: string) => t.app.inject({ method: 'GET', url: signedGetUrl(advId, query, whsec), remoteAddress: '192.0.2.1' });
const post = (body: object, id?: string) => {
  const text = JSON.stringify(body);
  return t.app.inject({ method: 'POST', url: `/postback/${advId}`, payload: text, remoteAddress: '192.0.2.1', headers: webhookHeaders(whsec, text, { id }) });
};
const countFor = async (txid: string) => Number((await t.sql`select count(*)::int as n from conversions where txid = ${txid}`)[0]?.n);

beforeAll(async () => {
  t = await startTestEngine();
  const seeded = await seedCatalog(t.app, { advertiser: { rateLimit: { perS: 5 } } });
  advId = seeded.advertiser.id;
  whsec = seeded.advertiser.secrets[0].secret;
  offerId = seeded.offer.id;
  pubId = seeded.publisher.id;
  // A second advertiser with a generous limit for everything but the rate-limit test.
  const patch = await t.app.inject({ method: 'PATCH', url: `/v1/advertisers/${advId}`, headers: auth(), payload: { rateLimit: { perS: 10_000 } } });
  expect(patch.statusCode).toBe(200);
});

afterAll(async () => t?.close());

describe('retries and replays', () => {
  it('the same postback again is a duplicate with the original result, never a second conversion', async () => {
    const clickid = await mintClick(t.app, offerId, pubId);
    const txid = uniqueTx();
    const first = await get(`clickid=${clickid}&txid=${txid}&payout=2.50`);
    const again = await get(`clickid=${clickid}&txid=${txid}&payout=2.50`);
    const omitted = await get(`clickid=${clickid}&txid=${txid}`);
    expect(first.json()).toMatchObject({ duplicate: false, decision: 'accepted' });
    for (const res of [again, omitted]) {
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ ...first.json(), duplicate: true });
    }
    expect(await countFor(txid)).toBe(1);
    const deliveries = await t.sql`select count(*)::int as n from deliveries where conversion_id = ${first.json().conversionId}`;
    expect(deliveries[0]?.n).toBe(1);
  });

  it('a Standard Webhooks retry (same webhook-id and body, new timestamp) is a duplicate', async () => {
    const clickid = await mintClick(t.app, offerId, pubId);
    const body = { clickid, txid: uniqueTx() };
    const first = await post(body, 'msg_retry_1');
    const retry = await post(body, 'msg_retry_1');
    expect(first.json().duplicate).toBe(false);
    expect(retry.json()).toMatchObject({ duplicate: true, conversionId: first.json().conversionId });
  });
});

describe('409 conflict: the original stands', () => {
  it('same txid with a different click, payout or currency', async () => {
    const clickid = await mintClick(t.app, offerId, pubId);
    const other = await mintClick(t.app, offerId, pubId);
    const txid = uniqueTx();
    const first = await get(`clickid=${clickid}&txid=${txid}&payout=2.50`);
    const cases = [
      await get(`clickid=${other}&txid=${txid}&payout=2.50`),
      await get(`clickid=${clickid}&txid=${txid}&payout=3.00`),
      await get(`clickid=${clickid}&txid=${txid}&payout=2.50&currency=EUR`),
    ];
    for (const res of cases) {
      expect(res.statusCode).toBe(409);
      expect(res.json().error.code).toBe('conflict');
    }
    const [row] = await t.sql`select click_id, payout_minor, currency from conversions where txid = ${txid}`;
    expect(row).toMatchObject({ click_id: clickid, payout_minor: 250n, currency: 'USD' });
    expect(await countFor(txid)).toBe(1);
    await t.engine.intake.attempts.flush();
    const logged = await t.sql`select count(*)::int as n from postback_attempts where txid = ${txid} and http_status = 409`;
    expect(logged[0]?.n).toBe(3);
    expect(first.statusCode).toBe(200);
  });

  it('a reused webhook-id with different content', async () => {
    const clickid = await mintClick(t.app, offerId, pubId);
    const first = await post({ clickid, txid: uniqueTx() }, 'msg_reuse');
    expect(first.statusCode).toBe(200);
    const secondTx = uniqueTx();
    const reuse = await post({ clickid, txid: secondTx }, 'msg_reuse');
    expect(reuse.statusCode).toBe(409);
    expect(await countFor(secondTx)).toBe(0);
  });
});

describe('status changes', () => {
  it('pending → approved → rejected (chargeback) is one conversion with its history', async () => {
    const clickid = await mintClick(t.app, offerId, pubId);
    const txid = uniqueTx();
    const steps = ['pending', 'approved', 'rejected'];
    const answers = [];
    for (const status of steps) answers.push(await get(`clickid=${clickid}&txid=${txid}&status=${status}`));
    for (const res of answers) expect(res.statusCode).toBe(200);
    expect(new Set(answers.map((a) => a.json().conversionId)).size).toBe(1);
    expect(answers.map((a) => a.json().status)).toEqual(steps);
    const [row] = await t.sql`select id, status from conversions where txid = ${txid}`;
    expect(row?.status).toBe('rejected');
    const history = await t.sql`select from_status, to_status from conversion_status_history where conversion_id = ${row?.id} order by id`;
    expect(history.map((h) => [h.from_status, h.to_status])).toEqual([[null, 'pending'], ['pending', 'approved'], ['approved', 'rejected']]);
  });

  it('an impossible status change (rejected → approved, approved → pending) is a 409', async () => {
    const clickid = await mintClick(t.app, offerId, pubId);
    const txid = uniqueTx();
    expect((await get(`clickid=${clickid}&txid=${txid}&status=approved`)).statusCode).toBe(200);
    expect((await get(`clickid=${clickid}&txid=${txid}&status=pending`)).statusCode).toBe(409);
    expect((await get(`clickid=${clickid}&txid=${txid}&status=rejected`)).statusCode).toBe(200);
    expect((await get(`clickid=${clickid}&txid=${txid}&status=approved`)).statusCode).toBe(409);
    const [row] = await t.sql`select status from conversions where txid = ${txid}`;
    expect(row?.status).toBe('rejected');
  });
});

describe('429 rate limit', () => {
  it('over the advertiser rate answers 429 with Retry-After and counts instead of logging', async () => {
    const patch = await t.app.inject({ method: 'PATCH', url: `/v1/advertisers/${advId}`, headers: auth(), payload: { rateLimit: { perS: 3 } } });
    expect(patch.statusCode).toBe(200);
    const clickid = await mintClick(t.app, offerId, pubId);
    const answers = await Promise.all(Array.from({ length: 8 }, () => get(`clickid=${clickid}&txid=${uniqueTx()}`)));
    const limited = answers.filter((a) => a.statusCode === 429);
    expect(limited.length).toBeGreaterThanOrEqual(5);
    expect(Number(limited[0]?.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(limited[0]?.json().error.code).toBe('rate_limited');
    await t.engine.intake.attempts.flush();
    const [counted] = await t.sql`select sum(count)::int as n from postback_rate_limited where advertiser_id = ${advId}`;
    expect(counted?.n).toBe(limited.length);
    const [logged] = await t.sql`select count(*)::int as n from postback_attempts where error_code = 'rate_limited'`;
    expect(logged?.n).toBe(0);
    await t.app.inject({ method: 'PATCH', url: `/v1/advertisers/${advId}`, headers: auth(), payload: { rateLimit: { perS: 10_000 } } });
  });
});

describe('conversions API', () => {
  it('lists newest first with filters and a stable cursor, and shows one with its history', async () => {
    const clickid = await mintClick(t.app, offerId, pubId);
    const txids = Array.from({ length: 5 }, () => uniqueTx());
    for (const txid of txids) expect((await get(`clickid=${clickid}&txid=${txid}`)).statusCode).toBe(200);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const res: { statusCode: number; json: () => { items: { txid: string }[]; nextCursor: string | null } } = await t.app.inject({
        method: 'GET',
        url: `/v1/conversions?clickid=${clickid}&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        headers: auth(),
      });
      expect(res.statusCode).toBe(200);
      const page: { items: { txid: string }[]; nextCursor: string | null } = res.json();
      seen.push(...page.items.map((i) => i.txid));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...txids].reverse());
    const list = await t.app.inject({ method: 'GET', url: `/v1/conversions?txid=${txids[0]}`, headers: auth() });
    const item = list.json().items[0];
    expect(item).toMatchObject({ txid: txids[0], clickid, decision: 'accepted', payout: '2.50', currency: 'USD', source: 's2s', status: 'approved' });
    const one = await t.app.inject({ method: 'GET', url: `/v1/conversions/${item.id}`, headers: auth() });
    expect(one.json()).toMatchObject({ id: item.id, statusHistory: [{ from: null, to: 'approved' }], click: { id: clickid } });
    expect(one.json().deliveries).toHaveLength(1);
    const bad = await t.app.inject({ method: 'GET', url: '/v1/conversions?cursor=zzz&decision=maybe', headers: auth() });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details.map((d: { path: string }) => d.path)).toContain('decision');
  });

  it('requires analyst or finance', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/v1/conversions' })).statusCode).toBe(401);
    const token = await t.app.inject({ method: 'POST', url: '/v1/tokens', headers: auth(), payload: { role: 'analyst', name: 'ann' } });
    const res = await t.app.inject({ method: 'GET', url: '/v1/conversions', headers: auth(token.json().token) });
    expect(res.statusCode).toBe(200);
  });
});

describe('503 when PostgreSQL is gone', () => {
  it('answers 503 unavailable and acknowledges nothing', async () => {
    const clickid = await mintClick(t.app, offerId, pubId);
    await t.engine.clickWriter.flush();
    await Promise.all([t.sql.end({ timeout: 1 }), t.engine.plannedSql.end({ timeout: 1 })]);
    const res = await get(`clickid=${clickid}&txid=${uniqueTx()}`);
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('unavailable');
  });
});
