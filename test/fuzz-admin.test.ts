import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN, auth, TEST_TRAFFIC_FRAUD } from './helpers/engine.js';
import {
  bodies, formBody, fuzzRoute, headerText, hostileJson, isAdminRoute, methodFor, pathParam, rawQuery, rowCounter, runsPerRoute, startFuzzEngine,
  type Campaign, type FuzzEngine, type FuzzRequest, type FuzzRoute,
} from './helpers/fuzz.js';
import { mintClick, signedGetUrl } from './helpers/postback.js';

/**
 * Property-based campaign over every /v1 route: any method, path, query, token and body (JSON, form,
 * CSV, raw bytes) is answered without a 5xx other than 503 `unavailable`, refusals carry the contract's
 * error shape, and a refused request (any 4xx) writes no row anywhere. Accepted admin writes may write;
 * the run count bounds them.
 */

// CI runs the whole campaign; a local `npm test` a tenth of it, to stay quick.
const RUNS = runsPerRoute(process.env.CI ? 2000 : 100);

let t: FuzzEngine;
let campaign: Campaign;
let ids: { [kind: string]: string[] };
let tokens: { analyst: string; finance: string; revoked: string };

beforeAll(async () => {
  t = await startFuzzEngine();
  const post = async (url: string, payload: object) => {
    const res = await t.app.inject({ method: 'POST', url, headers: auth(), payload });
    if (res.statusCode !== 201) throw new Error(`${url} -> ${res.statusCode} ${res.body}`);
    return res.json();
  };
  const rateLimit = { perS: 1_000_000 };
  const advertiser = await post('/v1/advertisers', { name: 'Acme', ipAllowlist: [], auth: ['hmac'], rateLimit });
  const spare = await post('/v1/advertisers', { name: 'Spare', ipAllowlist: ['203.0.113.0/24'], auth: ['hmac'], rateLimit });
  const spareSecrets = [spare.secrets[0].id, (await post(`/v1/advertisers/${spare.id}/secrets`, {})).id, (await post(`/v1/advertisers/${spare.id}/secrets`, {})).id];
  const delivering = await post('/v1/publishers', { name: 'Delivering', postbackUrl: 'https://pub.example/pb?c={clickid}' });
  const idle = await post('/v1/publishers', { name: 'Idle', postbackUrl: 'https://idle.example/pb?c={clickid}', method: 'POST' });
  const offer = await post('/v1/offers', {
    advertiserId: advertiser.id, name: 'O', url: 'https://adv.example/lp?cid={clickid}', payout: '2.50', currency: 'USD', fraud: TEST_TRAFFIC_FRAUD,
  });
  // A 410 leaves a publisher disabled with its deliveries waiting: no delivery attempt lands mid-campaign.
  await t.sql`update publishers set disabled_at = now(), disabled_reason = 'fuzz campaign' where id = ${delivering.id}`;
  await t.engine.catalog.load();
  const clickid = await mintClick(t.app, offer.id, delivering.id);
  const conversion = await t.app.inject({ method: 'GET', url: signedGetUrl(advertiser.id, `clickid=${clickid}&txid=T1`, advertiser.secrets[0].secret) });
  if (conversion.statusCode !== 200) throw new Error(`postback -> ${conversion.statusCode} ${conversion.body}`);
  const [delivery] = await t.sql<{ id: string }[]>`select id from deliveries`;
  const run = await post('/v1/reconciliations', { from: '2026-01-01T00:00:00Z', to: '2026-01-01T01:00:00Z' });
  const fx = await t.app.inject({ method: 'PUT', url: '/v1/fx-rates/2026-01-15', headers: auth(), payload: { base: 'USD', rates: { EUR: '0.92' } } });
  if (fx.statusCode >= 300) throw new Error(`fx -> ${fx.statusCode} ${fx.body}`);
  const analyst = await post('/v1/tokens', { role: 'analyst', name: 'analyst' });
  const finance = await post('/v1/tokens', { role: 'finance', name: 'finance' });
  const revoked = await post('/v1/tokens', { role: 'admin', name: 'revoked' });
  await t.app.inject({ method: 'DELETE', url: `/v1/tokens/${revoked.id}`, headers: auth() });
  const spareToken = await post('/v1/tokens', { role: 'finance', name: 'spare' });
  tokens = { analyst: analyst.token, finance: finance.token, revoked: revoked.token };
  ids = {
    // The tokens that sign the campaign's own requests are not offered for revocation; a spare one is.
    id: [advertiser.id, spare.id, delivering.id, idle.id, offer.id, conversion.json().conversionId, delivery!.id, run.id, spareToken.id, revoked.id],
    // Re-enabling the delivering publisher would start deliveries in the background, writing between cases.
    enableId: [idle.id, spare.id],
    secretId: spareSecrets,
    date: ['2026-01-15', '2026-01-16', '2024-02-29', '2025-02-29', '1970-01-01', '9999-12-31'],
  };
  campaign = { t, counts: await rowCounter(t.sql) };
});
afterAll(async () => t?.close());

const QUERY_KEYS = [
  'from', 'to', 'limit', 'cursor', 'advertiserId', 'offerId', 'publisherId', 'conversionId', 'state', 'decision', 'source', 'status', 'txid',
  'clickid', 'format', 'entity', 'entityId', 'code', 'currency', 'cause',
] as const;
const BODY_KEYS = [
  'name', 'role', 'ipAllowlist', 'auth', 'jwt', 'rateLimit', 'perS', 'postbackUrl', 'method', 'advertiserId', 'url', 'payout', 'currency', 'clickTtlS',
  'dailyCap', 'fraud', 'flagAt', 'rejectAt', 'rules', 'decision', 'note', 'from', 'to', 'base', 'rates', 'EUR', 'revenue', 'goals', 'caps', 'events',
  'onStatusChange', 'jwks', 'keys', 'issuer', 'algorithms', 'mode',
] as const;

const knownValues = () =>
  fc.oneof(
    fc.constantFrom(...Object.values(ids).flat()),
    fc.constantFrom(
      '2026-01-01T00:00:00Z', '2026-01-01T00:00:00.000Z', '2026-01-02', '2026-13-45T99:99:99Z', '2026-01-01T00:00:00+01:00', 'yesterday', '1', '0', '50',
      '500', '501', '-1', '1e3', 'json', 'csv', 'xml', 'pending', 'delivered', 'failed', 'expired', 'accepted', 'flagged', 'rejected', 's2s', 'pixel',
      'approve', 'reject', 'admin', 'analyst', 'finance', 'hmac', 'jwt', 'USD', 'EUR', 'JPY', '2.50', '0.92', 'https://pub.example/pb?c={clickid}',
      'http://127.0.0.1/pb', 'GET', 'POST', '203.0.113.0/24', '2001:db8::/32', '10.0.0.0/8', 'advertiser', 'offer', 'publisher', 'token',
    ),
  );

/** Bodies a route might accept: arrays and objects built of the known keys and values, next to hostile ones. */
const jsonValues = () =>
  fc.oneof(knownValues(), fc.array(knownValues(), { maxLength: 3 }), fc.dictionary(fc.constantFrom('EUR', 'JPY', 'usd', '__proto__'), knownValues(), { maxKeys: 3 }));

/** CSV as an advertiser's report arrives: header row, quoted fields with commas, quotes and line breaks, or not. */
const csvText = () =>
  fc
  .tuple(
    fc.constantFrom('txid,clickid,payout,currency,status,time', 'txid,clickid', '', '\ufefftxid,clickid,payout,currency,status,time'),
    fc.array(fc.array(fc.oneof(knownValues(), fc.string({ maxLength: 10 }), fc.constantFrom('"a,b"', '"say ""hi"""', '"line\nbreak"', '"', '=cmd()')), { maxLength: 7 }), { maxLength: 5 }),
  )
  .map(([header, rows]) => [header, ...rows.map((r) => r.join(','))].join('\r\n'));

const AUTH = () =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant(`Bearer ${ADMIN}`) },
    { weight: 2, arbitrary: fc.constantFrom(`Bearer ${tokens.analyst}`, `Bearer ${tokens.finance}`) },
    { weight: 1, arbitrary: fc.constantFrom(`Bearer ${tokens.revoked}`, 'Bearer wrong-token', `Bearer ${ADMIN}x`, `bearer ${ADMIN}`, `Basic ${Buffer.from(`admin:${ADMIN}`).toString('base64')}`, 'Bearer ', '') },
    { weight: 1, arbitrary: headerText },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );

const strategies = (): Record<string, readonly string[]> => ({ id: ids.id!, secretId: ids.secretId!, date: ids.date! });
/** Path parameters with a strategy; a route with any other parameter fails the campaign until it gets one. */
const paramPool = (route: FuzzRoute, name: string) => (route.url === '/v1/publishers/:id/enable' && name === 'id' ? ids.enableId! : strategies()[name]!);

function recipeFor(route: FuzzRoute) {
  const json = hostileJson(BODY_KEYS, jsonValues());
  return fc.record({
    method: methodFor(route),
    params: fc.tuple(...route.params.map((name) => pathParam(paramPool(route, name)))),
    query: rawQuery(QUERY_KEYS, knownValues()),
    body: bodies(json, fc.oneof(formBody(BODY_KEYS, knownValues()), csvText())),
    authorization: AUTH(),
    ifNoneMatch: fc.option(headerText, { nil: undefined }),
  });
}

type Recipe = ReturnType<typeof recipeFor> extends fc.Arbitrary<infer R> ? R : never;

function build(route: FuzzRoute, r: Recipe): FuzzRequest {
  let i = 0;
  const path = route.url.replace(/:([A-Za-z0-9_]+)/g, () => r.params[i++] as string);
  const headers: Record<string, string> = {};
  if (r.authorization !== undefined) headers.authorization = r.authorization;
  if (r.ifNoneMatch !== undefined) headers['if-none-match'] = r.ifNoneMatch;
  return { method: r.method, url: r.query ? `${path}?${r.query}` : path, headers, body: r.body, remoteAddress: '198.51.100.20' };
}

describe('every /v1 route', () => {
  it('is known to the campaign, with a strategy for each path parameter', () => {
    const mine = t.routes.filter(isAdminRoute);
    const urls = new Set(mine.map((r) => r.url));
    for (const expected of ['/v1/advertisers/:id/secrets/:secretId', '/v1/fx-rates/:date', '/v1/reconciliations/advertiser-report', '/v1/tokens/:id']) expect(urls).toContain(expected);
    const missing = mine.flatMap((r) => r.params.filter((p) => !(p in strategies())).map((p) => `${r.method} ${r.url} :${p}`));
    expect(missing, 'path parameters without a generator strategy').toEqual([]);
  });

  it('never answers 5xx, refuses in the contract shape and writes nothing on refusal', async () => {
    const mine = t.routes.filter(isAdminRoute);
    const ran: Record<string, number> = {};
    for (const route of mine) ran[`${route.method} ${route.url}`] = await fuzzRoute(campaign, route, recipeFor(route), (r) => build(route, r), RUNS);
    expect(Object.keys(ran).length).toBe(mine.length);
    for (const [route, n] of Object.entries(ran)) expect(n, route).toBeGreaterThanOrEqual(RUNS);
    console.log(`fuzz-admin: ${mine.length} routes, ${Object.values(ran).reduce((a, b) => a + b, 0)} cases`);
  }, 900_000);
});
