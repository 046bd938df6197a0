import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCidr } from '../src/net/cidr.js';
import { auth, TEST_TRAFFIC_FRAUD } from './helpers/engine.js';
import {
  bodies, formBody, fuzzRoute, headerText, hostileJson, isAdminRoute, methodFor, pathParam, percentEncode, rawQuery, rowCounter, runsPerRoute,
  startFuzzEngine, type Body, type Campaign, type FuzzEngine, type FuzzRequest, type FuzzRoute,
} from './helpers/fuzz.js';
import { es256Keys, mintClick, nowS, secretKey, signJwt } from './helpers/postback.js';
import { Webhook } from 'standardwebhooks';

/**
 * Property-based campaign over every public route outside /v1 (postbacks, clicks, pixel, operations,
 * UI): whatever arrives, the answer is never a 5xx other than 503 `unavailable`, refusals carry the
 * contract's error shape, the pixel always answers its image, and a refusal writes nothing, except
 * the one attempt-log row the contract asks a refused postback to leave.
 */

// CI runs the whole campaign (1,000 cases per route: over partitions each case costs more, and 2,000
// took 9 of CI's 20 minutes); a local `npm test` a tenth of it, to stay quick.
const RUNS = runsPerRoute(process.env.CI ? 1000 : 100);

let t: FuzzEngine;
let campaign: Campaign;
let hmac: { id: string; whsec: string };
let jwtAdvertiserId: string;
let allowlistedAdvertiserId: string;
let offerIds: string[];
let publisherIds: string[];
let clickIds: string[];
let keys: Awaited<ReturnType<typeof es256Keys>>;

beforeAll(async () => {
  t = await startFuzzEngine({ trustProxy: [parseCidr('127.0.0.1')!] });
  keys = await es256Keys();
  const post = async (url: string, payload: object) => {
    const res = await t.app.inject({ method: 'POST', url, headers: auth(), payload });
    if (res.statusCode !== 201) throw new Error(`${url} -> ${res.statusCode} ${res.body}`);
    return res.json();
  };
  const rateLimit = { perS: 1_000_000 };
  const hmacAdv = await post('/v1/advertisers', { name: 'HMAC', ipAllowlist: [], auth: ['hmac'], rateLimit });
  hmac = { id: hmacAdv.id, whsec: hmacAdv.secrets[0].secret };
  jwtAdvertiserId = (await post('/v1/advertisers', {
    name: 'JWT', ipAllowlist: [], auth: ['jwt', 'hmac'], rateLimit, jwt: { jwks: { keys: [keys.jwk] }, issuer: 'https://adv.example', algorithms: ['ES256'] },
  })).id;
  allowlistedAdvertiserId = (await post('/v1/advertisers', { name: 'Allowlisted', ipAllowlist: ['192.0.2.0/24', '2001:db8::/32'], auth: ['hmac'], rateLimit })).id;
  const publisher = await post('/v1/publishers', { name: 'Pub', postbackUrl: 'https://pub.example/pb?c={clickid}&p={payout}' });
  const offer = (advertiserId: string, extra: object = {}) =>
    post('/v1/offers', { advertiserId, name: 'O', url: 'https://adv.example/lp?cid={clickid}&s={sub1}', payout: '2.50', currency: 'USD', fraud: TEST_TRAFFIC_FRAUD, ...extra });
  const offers = [
    await offer(hmac.id),
    await offer(hmac.id, { dailyCap: 5 }),
    await offer(jwtAdvertiserId),
    await offer(allowlistedAdvertiserId),
  ];
  offerIds = offers.map((o) => o.id);
  publisherIds = [publisher.id];
  // The state a 410 leaves: conversions accepted during the campaign queue their deliveries and wait,
  // so no delivery attempt lands in the tables in the middle of another case.
  await t.sql`update publishers set disabled_at = now(), disabled_reason = 'fuzz campaign' where id = ${publisher.id}`;
  await t.engine.catalog.load();
  clickIds = [];
  for (const o of offers) for (let i = 0; i < 3; i++) clickIds.push(await mintClick(t.app, o.id, publisher.id));
  campaign = {
    t,
    counts: await rowCounter(t.sql),
    refusalWrites: (route): Record<string, number> => (route.url.startsWith('/postback/') ? { postback_attempts: 1 } : {}),
    extraCheck: (route, req, res, what) => {
      if (route.url === '/pixel.gif' && req.method === route.method && req.url.split('?')[0] === '/pixel.gif') {
        expect(res.statusCode, what).toBe(200);
        expect(res.headers['content-type'], what).toBe('image/gif');
      }
    },
  };
});
afterAll(async () => t?.close());

const forgedClickIds = () => clickIds.map((c) => c.slice(0, -2) + (c.endsWith('A') ? 'BB' : 'AA'));

/** Field values a real advertiser would send, next to the ones that break them. */
const fieldValues = () =>
  fc.oneof(
    fc.constantFrom(...clickIds, ...forgedClickIds()),
    fc.constantFrom('approved', 'pending', 'rejected', 'conversion', 'deposit', 'USD', 'EUR', 'usd', '2.50', '0', '-1', '999999999999999999999.99', '', '203.0.113.5', '::ffff:203.0.113.5', 'Mozilla/5.0'),
    fc.string({ maxLength: 12 }).map((s) => `tx_${s}`),
    fc.integer({ min: 0, max: 50 }).map((n) => `tx_fixed_${n}`),
    fc.constant(String(nowS())),
  );

const POSTBACK_KEYS = ['clickid', 'txid', 'event', 'status', 'payout', 'currency', 'revenue', 'amount', 'ip', 'ua', 'ts', 'sig', 'token'] as const;
const REMOTE = fc.constantFrom('127.0.0.1', '203.0.113.9', '192.0.2.44', '::ffff:192.0.2.44', '2001:db8::1', '::1');
const XFF = fc.oneof(fc.constant(undefined), fc.constantFrom('192.0.2.7', '203.0.113.1, 192.0.2.7', '127.1', '0x7f.0.0.1', '2130706433', '::ffff:192.0.2.7', 'unknown', ''), headerText);

/** How an advertiser's server proves itself, right or wrong; applied to the request already generated. */
type Signing = 'none' | 'hmac' | 'hmac-stale' | 'jwt' | 'junk';
const SIGNING = fc.constantFrom<Signing>('none', 'hmac', 'hmac', 'hmac-stale', 'jwt', 'junk');

function signGet(path: string, query: string, signing: Signing, junk: string): string {
  const base = query ? `${path}?${query}` : `${path}?`;
  if (signing === 'none') return query ? base : path;
  const ts = signing === 'hmac-stale' ? nowS() - 3600 : nowS();
  const signed = `${base}${query ? '&' : ''}ts=${ts}`;
  if (signing === 'junk') return `${signed}&sig=${percentEncode(junk)}`;
  if (signing === 'jwt') return `${base}${query ? '&' : ''}token=${percentEncode(junk)}`;
  return `${signed}&sig=${createHmac('sha256', secretKey(hmac.whsec)).update(signed).digest('hex')}`;
}

async function signPost(body: Body, signing: Signing, junk: string, claims: unknown): Promise<Record<string, string>> {
  const raw = body.payload === undefined ? '' : Buffer.isBuffer(body.payload) ? body.payload.toString('latin1') : body.payload;
  const id = `msg_${nowS()}_${Math.random().toString(36).slice(2, 10)}`;
  switch (signing) {
    case 'none':
      return {};
    case 'junk':
      return { 'webhook-id': junk.slice(0, 80), 'webhook-timestamp': junk.slice(0, 20), 'webhook-signature': `v1,${junk}`, authorization: `Bearer ${junk}` };
    case 'jwt':
      return { authorization: `Bearer ${await signJwt(keys.privateKey, claimsOf(claims))}` };
    case 'hmac':
    case 'hmac-stale': {
      // Buffers are signed over their exact bytes; the library takes text, so only text bodies get a valid signature.
      const at = new Date((signing === 'hmac' ? nowS() : nowS() - 3600) * 1000);
      return { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(hmac.whsec).sign(id, at, raw) };
    }
  }
}

/** Path parameters with a strategy; a route with any other parameter fails the campaign until it gets one. */
const pathParams = (): Record<string, readonly string[]> => ({
  // Weighted towards the HMAC advertiser, whose clicks and secret the generated postbacks mostly carry.
  advertiserId: [hmac.id, hmac.id, hmac.id, jwtAdvertiserId, allowlistedAdvertiserId],
  offerId: offerIds,
});

function recipeFor(route: FuzzRoute) {
  const strategies = pathParams();
  const isPostback = route.url.startsWith('/postback/');
  // Postbacks and clicks for objects that exist reach the checks behind the lookup; the rest is a 404 quickly.
  const params = route.params.map((name) => pathParam(strategies[name] as readonly string[], 12));
  const queryKeys = isPostback || route.url === '/pixel.gif' ? POSTBACK_KEYS : route.url.startsWith('/c/') ? CLICK_KEYS : ['format', 'x', 'v'];
  const values = fc.oneof(fieldValues(), fc.constantFrom(...publisherIds, ...offerIds));
  const json = hostileJson(POSTBACK_KEYS, values);
  return fc.record({
    method: methodFor(route),
    params: fc.tuple(...params),
    // A redirected click costs a click-batch COPY before the next case can be judged: one click in three starts well-formed.
    query: fc.tuple(
      fc.oneof({ weight: route.url.startsWith('/c/') ? 1 : 4, arbitrary: wellFormedStart(route) }, { weight: route.url.startsWith('/c/') ? 2 : 1, arbitrary: fc.constant('') }),
      rawQuery(queryKeys, values),
    ).map(([start, rest]) => [start, rest].filter(Boolean).join('&')),
    body: isPostback ? fc.oneof(bodies(json, formBody(POSTBACK_KEYS, values)), wellFormedBody(json, formBody(POSTBACK_KEYS, values))) : bodies(json, formBody(POSTBACK_KEYS, values)),
    signing: isPostback ? SIGNING : fc.constant<Signing>('none'),
    junk: headerText,
    claims: fc.oneof(json, fc.tuple(fc.constantFrom(...clickIds), values, json).map(([clickid, txid, extra]) => ({ clickid, txid, ...claimsOf(extra) }))),
    remoteAddress: REMOTE,
    xff: XFF,
    userAgent: fc.option(headerText, { nil: undefined }),
  });
}

type Recipe = ReturnType<typeof recipeFor> extends fc.Arbitrary<infer R> ? R : never;

async function build(route: FuzzRoute, r: Recipe): Promise<FuzzRequest> {
  let i = 0;
  const path = route.url.replace(/:([A-Za-z0-9_]+)/g, () => r.params[i++] as string);
  const headers: Record<string, string> = {};
  if (r.xff !== undefined) headers['x-forwarded-for'] = r.xff;
  if (r.userAgent !== undefined) headers['user-agent'] = r.userAgent;
  let url = r.query ? `${path}?${r.query}` : path;
  if (route.url.startsWith('/postback/')) {
    if (r.method === 'GET' || r.method === 'HEAD') url = signGet(path, r.query, r.signing, r.signing === 'jwt' ? await signJwt(keys.privateKey, claimsOf(r.claims)) : r.junk);
    else Object.assign(headers, await signPost(r.body, r.signing, r.junk, r.claims));
  }
  return { method: r.method, url, headers, body: r.body, remoteAddress: r.remoteAddress };
}

const claimsOf = (claims: unknown): Record<string, unknown> =>
  claims !== null && typeof claims === 'object' && !Array.isArray(claims) ? (claims as Record<string, unknown>) : { claims };

/**
 * The start of a query an honest sender would send (a click's publisher, a postback's click and txid),
 * so that the hostile parts after it are judged by the code behind the first checks, not only by them.
 */
function wellFormedStart(route: FuzzRoute): fc.Arbitrary<string> {
  if (route.url.startsWith('/c/')) return fc.constantFrom(...publisherIds).map((pub) => `pub=${pub}`);
  if (route.url.startsWith('/postback/') || route.url === '/pixel.gif') {
    return fc.tuple(fc.constantFrom(...clickIds), txids).map(([clickid, txid]) => `clickid=${clickid}&txid=${percentEncode(txid)}`);
  }
  return fc.constant('');
}

/** Mostly new transactions, sometimes one already sent (a duplicate or a conflict). */
const txids = fc.oneof({ weight: 3, arbitrary: fc.string({ minLength: 1, maxLength: 20 }).map((s) => `tx_${s}`) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 20 }).map((n) => `tx_fixed_${n}`) });

/** A JSON or form postback body with a real click and a txid, and hostile fields beside them. */
function wellFormedBody(json: fc.Arbitrary<unknown>, form: fc.Arbitrary<string>): fc.Arbitrary<Body> {
  const start = fc.tuple(fc.constantFrom(...clickIds), txids);
  return fc.oneof(
    fc.tuple(start, json).map(([[clickid, txid], extra]): Body => ({ contentType: 'application/json', payload: JSON.stringify({ clickid, txid, ...claimsOf(extra) }) })),
    fc.tuple(start, form).map(([[clickid, txid], extra]): Body => ({
      contentType: 'application/x-www-form-urlencoded',
      payload: [`clickid=${clickid}&txid=${percentEncode(txid)}`, extra].filter(Boolean).join('&'),
    })),
  );
}

const CLICK_KEYS = ['pub', 'sub1', 'sub2', 'sub3', 'sub4', 'sub5', 'utm_source'] as const;

describe('every route outside /v1', () => {
  it('is known to the campaign, with a strategy for each path parameter', () => {
    const mine = t.routes.filter((r) => !isAdminRoute(r));
    const urls = new Set(mine.map((r) => r.url));
    for (const expected of ['/postback/:advertiserId', '/c/:offerId', '/pixel.gif', '/healthz', '/readyz', '/metrics', '/ui/']) expect(urls).toContain(expected);
    const strategies = pathParams();
    const missing = mine.flatMap((r) => r.params.filter((p) => !(p in strategies)).map((p) => `${r.method} ${r.url} :${p}`));
    expect(missing, 'path parameters without a generator strategy').toEqual([]);
  });

  it('never answers 5xx, refuses in the contract shape and writes nothing on refusal', async () => {
    const mine = t.routes.filter((r) => !isAdminRoute(r));
    const ran: Record<string, number> = {};
    for (const route of mine) {
      ran[`${route.method} ${route.url}`] = await fuzzRoute(campaign, route, recipeFor(route), (r) => build(route, r), RUNS);
    }
    expect(Object.keys(ran).length).toBe(mine.length);
    for (const [route, n] of Object.entries(ran)) expect(n, route).toBeGreaterThanOrEqual(RUNS);
    console.log(`fuzz-intake: ${mine.length} routes, ${Object.values(ran).reduce((a, b) => a + b, 0)} cases`);
  }, 600_000);
});
