import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, expectApiError, get } from './helpers/admin.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { mintClick, signedGetUrl, uniqueTx } from './helpers/postback.js';

/** GET /v1/postback-attempts: refused postbacks, why, newest first, filtered by advertiser and code. */

const ALLOWED = '203.0.113.9';
const OUTSIDE = '198.51.100.200';

let t: TestEngine;
let a: { id: string; secret: string; offerId: string; publisherId: string };
let bId: string;
/** What each refused postback answered, oldest first. */
const refusals: { advertiserId: string; status: number; body: { error: { code: string; message: string; reason?: string; details?: unknown } }; txid: string }[] = [];

const wrongSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

async function send(advertiserId: string, query: string, secret: string, ip = ALLOWED) {
  const res = await t.app.inject({ method: 'GET', url: signedGetUrl(advertiserId, query, secret), remoteAddress: ip });
  expect(res.statusCode).toBeGreaterThanOrEqual(400);
  const txid = new URLSearchParams(query).get('txid') as string;
  refusals.push({ advertiserId, status: res.statusCode, body: res.json(), txid });
  return res;
}

beforeAll(async () => {
  t = await startTestEngine();
  const s = await seedCatalog(t.app, { advertiser: { ipAllowlist: ['203.0.113.0/24'] } });
  a = { id: s.advertiser.id, secret: s.advertiser.secrets[0].secret, offerId: s.offer.id, publisherId: s.publisher.id };
  bId = (await t.app.inject({ method: 'POST', url: '/v1/advertisers', headers: auth(), payload: { name: 'Other', auth: ['hmac'] } })).json().id;
  const click = await mintClick(t.app, a.offerId, a.publisherId);

  expect((await send(a.id, `clickid=${click}&txid=${uniqueTx()}`, wrongSecret())).statusCode).toBe(401);
  expect((await send(a.id, `clickid=${click}&txid=${uniqueTx()}`, a.secret, OUTSIDE)).statusCode).toBe(403);
  expect((await send(a.id, `clickid=not-a-click&txid=${uniqueTx()}`, a.secret)).statusCode).toBe(422);
  expect((await send(a.id, `clickid=${click}&txid=${uniqueTx()}&status=maybe`, a.secret)).statusCode).toBe(400);
  expect((await send(bId, `clickid=${click}&txid=${uniqueTx()}`, wrongSecret())).statusCode).toBe(401);
  await t.engine.intake.attempts.flush();
});
afterAll(async () => {
  await t?.close();
});

describe('GET /v1/postback-attempts', () => {
  it('lists every refusal newest first with the code, reason, message and field details the sender got', async () => {
    const res = await get(t.app, '/v1/postback-attempts');
    expect(res.statusCode, res.body).toBe(200);
    const { items, nextCursor } = res.json();
    expect(nextCursor).toBeNull();
    const expected = [...refusals].reverse().map((r) => ({
      receivedAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
      advertiserId: r.advertiserId,
      advertiserName: r.advertiserId === a.id ? 'Acme' : r.advertiserId === bId ? 'Other' : null,
      sourceIp: r.status === 403 ? OUTSIDE : ALLOWED,
      clickid: expect.any(String),
      txid: r.txid,
      status: r.status,
      code: r.body.error.code,
      reason: r.body.error.reason ?? null,
      message: r.body.error.message,
      ...(r.body.error.details !== undefined ? { details: r.body.error.details } : {}),
    }));
    expect(items).toEqual(expected);
    expect(items.map((i: { code: string }) => i.code)).toEqual(['bad_signature', 'invalid_request', 'invalid_click', 'ip_not_allowed', 'bad_signature']);
    const malformed = items.find((i: { code: string }) => i.code === 'invalid_click');
    expect(malformed).toMatchObject({ reason: 'malformed', clickid: 'not-a-click' });
    const invalid = items.find((i: { code: string }) => i.code === 'invalid_request');
    expect(invalid.details).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'status' })]));
  });

  it('filters by advertiser, by code, and by both', async () => {
    const byAdvertiser = (await get(t.app, `/v1/postback-attempts?advertiserId=${a.id}`)).json().items;
    expect(byAdvertiser.map((i: { code: string }) => i.code)).toEqual(['invalid_request', 'invalid_click', 'ip_not_allowed', 'bad_signature']);
    const byCode = (await get(t.app, '/v1/postback-attempts?code=bad_signature')).json().items;
    expect(byCode.map((i: { advertiserId: string }) => i.advertiserId)).toEqual([bId, a.id]);
    const both = (await get(t.app, `/v1/postback-attempts?advertiserId=${bId}&code=bad_signature`)).json().items;
    expect(both).toHaveLength(1);
    expect((await get(t.app, `/v1/postback-attempts?advertiserId=${bId}&code=ip_not_allowed`)).json().items).toEqual([]);
  });

  it('filters by time and pages by cursor without gaps or repeats', async () => {
    const all = (await get(t.app, '/v1/postback-attempts')).json().items as { receivedAt: string; txid: string }[];
    const paged: string[] = [];
    let cursor: string | null = null;
    do {
      const res = await get(t.app, `/v1/postback-attempts?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.statusCode, res.body).toBe(200);
      paged.push(...res.json().items.map((i: { txid: string }) => i.txid));
      cursor = res.json().nextCursor;
    } while (cursor);
    expect(paged).toEqual(all.map((i) => i.txid));

    const [row] = await t.sql<{ at: Date }[]>`select max(received_at) as at from postback_attempts`;
    const newest = (row?.at as Date).toISOString();
    const from = (await get(t.app, `/v1/postback-attempts?from=${newest}`)).json().items as { receivedAt: string }[];
    const to = (await get(t.app, `/v1/postback-attempts?to=${newest}`)).json().items as { receivedAt: string }[];
    expect(from.length).toBeGreaterThan(0);
    expect(from.length + to.length).toBe(all.length);
    expect(to.every((i) => i.receivedAt < newest)).toBe(true);
    expect((await get(t.app, '/v1/postback-attempts?to=2000-01-01')).json().items).toEqual([]);
  });

  it('refuses bad filters in the contract shape', async () => {
    expectApiError(await get(t.app, '/v1/postback-attempts?limit=0'), 400, 'invalid_request', ['limit']);
    expectApiError(await get(t.app, '/v1/postback-attempts?limit=501'), 400, 'invalid_request', ['limit']);
    expectApiError(await get(t.app, '/v1/postback-attempts?from=2026-02-30'), 400, 'invalid_request', ['from']);
    expectApiError(await get(t.app, '/v1/postback-attempts?to=soon'), 400, 'invalid_request', ['to']);
    expectApiError(await get(t.app, '/v1/postback-attempts?code=Bad%20Sig'), 400, 'invalid_request', ['code']);
    expectApiError(await get(t.app, '/v1/postback-attempts?cursor=xyz'), 400, 'invalid_request', ['cursor']);
    expectApiError(await get(t.app, '/v1/postback-attempts?advertiser=x'), 400, 'invalid_request', ['advertiser']);
  });

  it('is for admins and analysts, not finance', async () => {
    const analyst = await createToken(t.app, 'analyst');
    const finance = await createToken(t.app, 'finance');
    const res = await get(t.app, `/v1/postback-attempts?advertiserId=${a.id}`, analyst.token);
    expect(res.statusCode).toBe(200);
    expect(res.json().items).toHaveLength(4);
    expectApiError(await get(t.app, '/v1/postback-attempts', finance.token), 403, 'forbidden');
    expectApiError(await t.app.inject({ method: 'GET', url: '/v1/postback-attempts' }), 401, 'unauthorized');
  });
});
