import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, expectApiError } from './helpers/admin.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { es256Keys, mintClick, signedGetUrl, signJwt, webhookHeaders } from './helpers/postback.js';

/**
 * What real advertisers send and what attackers send: order numbers of any text are stored and read
 * back exactly; `__proto__`/`constructor` keys are refused and change nothing; an unexpanded click
 * macro is a click-validity refusal, not a format lesson.
 */

let t: TestEngine;
let hmacAdv: { id: string; secrets: { secret: string }[] };
let jwtAdv: { id: string };
let hmacOffer: { id: string };
let jwtOffer: { id: string };
let pubId: string;
let keys: Awaited<ReturnType<typeof es256Keys>>;
const whsec = () => hmacAdv.secrets[0]!.secret;
/** Percent-encodes every reserved character, ' ( ) ! * included, so the signed text is the text the server receives. */
const encode = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

beforeAll(async () => {
  t = await startTestEngine({ addressRateLimitPerS: 1_000_000 });
  keys = await es256Keys();
  const seeded = await seedCatalog(t.app, { advertiser: { rateLimit: { perS: 1_000_000 } } });
  hmacAdv = seeded.advertiser;
  hmacOffer = seeded.offer;
  pubId = seeded.publisher.id;
  const j = await t.app.inject({
    method: 'POST',
    url: '/v1/advertisers',
    headers: auth(),
    payload: { name: 'JWT adv', ipAllowlist: [], auth: ['jwt'], jwt: { jwks: { keys: [keys.jwk] }, issuer: 'https://adv.example', algorithms: ['ES256'] } },
  });
  jwtAdv = j.json();
  jwtOffer = (
    await t.app.inject({
      method: 'POST',
      url: '/v1/offers',
      headers: auth(),
      payload: { advertiserId: jwtAdv.id, name: 'J', url: 'https://adv.example/?cid={clickid}', payout: '2.50', currency: 'USD' },
    })
  ).json();
});
afterAll(async () => t?.close());

const TXIDS = ['ORD/2026/17', 'A,17', 'say "hi"', "it's", 'two  spaces ', ' lead', 'Bestellung-Äöü', '注文番号-42', '😀 emoji', 'a&b=c?d#e%20f+g', 'x'.repeat(255)];

type Sender = (txid: string) => Promise<{ statusCode: number; json: () => any; body: string }>;

const senders: [string, Sender][] = [
  [
    'GET with HMAC',
    async (txid) => {
      const clickid = await mintClick(t.app, hmacOffer.id, pubId);
      return t.app.inject({ method: 'GET', url: signedGetUrl(hmacAdv.id, `clickid=${clickid}&txid=${encode(txid)}`, whsec()) });
    },
  ],
  [
    'POST JSON with Standard Webhooks',
    async (txid) => {
      const body = JSON.stringify({ clickid: await mintClick(t.app, hmacOffer.id, pubId), txid });
      return t.app.inject({ method: 'POST', url: `/postback/${hmacAdv.id}`, headers: webhookHeaders(whsec(), body), payload: body });
    },
  ],
  [
    'POST form with Standard Webhooks',
    async (txid) => {
      const body = new URLSearchParams({ clickid: await mintClick(t.app, hmacOffer.id, pubId), txid }).toString();
      const headers = { ...webhookHeaders(whsec(), body), 'content-type': 'application/x-www-form-urlencoded' };
      return t.app.inject({ method: 'POST', url: `/postback/${hmacAdv.id}`, headers, payload: body });
    },
  ],
  [
    'JWT claims',
    async (txid) => {
      const token = await signJwt(keys.privateKey, { clickid: await mintClick(t.app, jwtOffer.id, pubId), txid });
      return t.app.inject({ method: 'POST', url: `/postback/${jwtAdv.id}`, headers: { authorization: `Bearer ${token}` } });
    },
  ],
];

describe('txids compared byte for byte', () => {
  it('keeps apart what only case, Unicode normalisation or a trailing space tells apart', async () => {
    const send = senders[0]![1];
    const variants = ['Caf\u00e9-1', 'Cafe\u0301-1', 'CAF\u00c9-1', 'Caf\u00e9-1 ', '\uff23af\u00e9-1'];
    const ids = [];
    for (const txid of variants) {
      const res = await send(txid);
      expect(res.statusCode, `${JSON.stringify(txid)}: ${res.body}`).toBe(200);
      expect(res.json().duplicate).toBe(false);
      ids.push(res.json().conversionId);
    }
    const rows = await t.sql<{ id: string; txid: string }[]>`select id, txid from conversions where id = any(${ids}::text[])`;
    expect(new Map(rows.map((r) => [r.id, r.txid]))).toEqual(new Map(ids.map((id, i) => [id, variants[i]])));
    for (const txid of variants) {
      const listed = await t.app.inject({ method: 'GET', url: `/v1/conversions?txid=${encode(txid)}`, headers: auth() });
      expect(listed.json().items.map((c: { txid: string }) => c.txid)).toEqual([txid]);
    }
  });
});

describe.each(senders.map(([name, send], index) => ({ name, send, index })))('txids of any text, $name', ({ name, send, index }) => {
  it.each(TXIDS)('stores, filters and answers %j exactly as sent', async (base) => {
    // One txid per sender: the same text under two advertisers is two conversions, under one a duplicate.
    const txid = base.length >= 255 ? `${index}${base}`.slice(0, 255) : `${base}|${name}`;
    const res = await send(txid);
    expect(res.statusCode, res.body).toBe(200);
    const { conversionId } = res.json();
    const [row] = await t.sql<{ txid: string }[]>`select txid from conversions where id = ${conversionId}`;
    expect(row?.txid).toBe(txid);
    const listed = await t.app.inject({ method: 'GET', url: `/v1/conversions?txid=${encode(txid)}`, headers: auth() });
    expect(listed.statusCode, listed.body).toBe(200);
    expect(listed.json().items.map((c: { id: string; txid: string }) => [c.id, c.txid])).toEqual([[conversionId, txid]]);
    const again = await send(txid).catch(() => undefined);
    // A second send comes with another click: the txid is the same transaction, so it is a conflict, never a second row.
    expect(again?.statusCode).toBe(409);
    expect(await t.sql`select id from conversions where txid = ${txid}`).toHaveLength(1);
  });
});

describe('txids that are not text', () => {
  it.each([
    ['empty', ''],
    ['a control character', 'ORD\u000117'],
    ['a C1 control character', 'ORD\u008517'],
    ['a lone surrogate', 'ORD\ud80017'],
    ['over 255 characters', 'x'.repeat(256)],
  ])('refuses %s with a 400 on txid and records nothing', async (_what, txid) => {
    const before = await countRows(t.sql, 'conversions');
    const body = JSON.stringify({ clickid: await mintClick(t.app, hmacOffer.id, pubId), txid });
    const res = await t.app.inject({ method: 'POST', url: `/postback/${hmacAdv.id}`, headers: webhookHeaders(whsec(), body), payload: body });
    expectApiError(res, 400, 'invalid_request', ['txid']);
    expect(await countRows(t.sql, 'conversions')).toBe(before);
  });
});

describe('hostile key names', () => {
  const snapshot = async () => ({
    conversions: await t.sql`select id, status, payout_minor, decision from conversions order by id`,
    offers: await t.sql`select id, payout_minor, fraud from offers order by id`,
  });

  it.each(['__proto__', 'constructor'])('a %s key in a signed query, form, JSON body (at any depth) or JWT is a 400 that changes nothing', async (key) => {
    const clickid = await mintClick(t.app, hmacOffer.id, pubId);
    const first = await t.app.inject({ method: 'GET', url: signedGetUrl(hmacAdv.id, `clickid=${clickid}&txid=victim-${key}&status=pending`, whsec()) });
    expect(first.statusCode, first.body).toBe(200);
    await t.engine.intake.attempts.flush();
    const before = await snapshot();
    const attemptsBefore = await countRows(t.sql, 'postback_attempts');
    const poison = { status: 'rejected', payout: '999.00' };
    const jsonBodies = [
      `{"clickid":"${clickid}","txid":"victim-${key}","${key}":${JSON.stringify(poison)}}`,
      `{"clickid":"${clickid}","txid":"victim-${key}","extra":{"deep":[{"${key}":{"status":"rejected"}}]}}`,
      // An escaped key is the same key once parsed.
      `{"clickid":"${clickid}","txid":"victim-${key}","\\u${key.charCodeAt(0).toString(16).padStart(4, '0')}${key.slice(1)}":${JSON.stringify(poison)}}`,
    ];
    const requests = [
      { method: 'GET' as const, url: signedGetUrl(hmacAdv.id, `clickid=${clickid}&txid=victim-${key}&${key}[status]=rejected&${key}=x`, whsec()) },
      ...jsonBodies.map((payload) => ({ method: 'POST' as const, url: `/postback/${hmacAdv.id}`, headers: webhookHeaders(whsec(), payload), payload })),
      ((payload) => ({
        method: 'POST' as const,
        url: `/postback/${hmacAdv.id}`,
        headers: { ...webhookHeaders(whsec(), payload), 'content-type': 'application/x-www-form-urlencoded' },
        payload,
      }))(`clickid=${clickid}&txid=victim-${key}&${key}=rejected&status=rejected`),
    ];
    for (const request of requests) {
      const res = await t.app.inject(request);
      expectApiError(res, 400, 'invalid_request', [key]);
    }
    const token = await signJwt(keys.privateKey, { clickid: await mintClick(t.app, jwtOffer.id, pubId), txid: `jwt-${key}`, nested: { [key]: poison } });
    // jose builds the claims with JSON.parse, so the key arrives as the own property a hostile signer would send.
    const jwtRes = await t.app.inject({ method: 'POST', url: `/postback/${jwtAdv.id}`, headers: { authorization: `Bearer ${token}` } });
    expectApiError(jwtRes, 400, 'invalid_request', [key]);
    expect(({} as Record<string, unknown>).status).toBeUndefined();
    await t.engine.intake.attempts.flush();
    const after = await snapshot();
    expect(after).toEqual(before);
    // Refusals are logged for integration support, each with the key that was refused.
    const logged = await t.sql`select error_code, http_status, detail from postback_attempts order by id offset ${attemptsBefore}`;
    expect(logged.map((r) => [r.error_code, r.http_status, r.detail.details])).toEqual(
      Array.from({ length: requests.length + 1 }, () => ['invalid_request', 400, [{ path: key, message: 'is not an allowed key' }]]),
    );
  });

  it('a prototype key is an unknown field: ignored, and the postback is stored as sent', async () => {
    const clickid = await mintClick(t.app, hmacOffer.id, pubId);
    const body = JSON.stringify({ clickid, txid: 'proto-field', prototype: { status: 'rejected', payout: '999.00' } });
    const res = await t.app.inject({ method: 'POST', url: `/postback/${hmacAdv.id}`, headers: webhookHeaders(whsec(), body), payload: body });
    expect(res.statusCode, res.body).toBe(200);
    const [row] = await t.sql`select status, payout_minor from conversions where txid = 'proto-field'`;
    expect(row).toEqual({ status: 'approved', payout_minor: 250n });
  });

  it('money sent as a JSON number is read from its decimal text, and refused when a double cannot hold it exactly', async () => {
    const send = async (txid: string, money: string) => {
      const clickid = await mintClick(t.app, hmacOffer.id, pubId);
      // Written by hand: JSON.stringify would itself round the long number before it reached the engine.
      const body = `{"clickid":"${clickid}","txid":"${txid}","payout":${money}}`;
      return t.app.inject({ method: 'POST', url: `/postback/${hmacAdv.id}`, headers: webhookHeaders(whsec(), body), payload: body });
    };
    const plain = await send('json-number-plain', '3.10');
    expect(plain.statusCode, plain.body).toBe(200);
    const [row] = await t.sql`select payout_minor from conversions where txid = 'json-number-plain'`;
    expect(row?.payout_minor).toBe(310n);
    for (const [txid, money] of [
      ['json-number-long', '12345678901234567.89'],
      ['json-number-16-digits', '1234567890123.456'],
      ['json-number-huge', '1e21'],
    ] as const) {
      const before = await countRows(t.sql, 'conversions');
      expectApiError(await send(txid, money), 400, 'invalid_request', ['payout']);
      expect(await countRows(t.sql, 'conversions')).toBe(before);
    }
  });

  it('admin routes refuse the keys in JSON bodies and queries, and create nothing', async () => {
    const before = await countRows(t.sql, 'advertisers');
    for (const payload of [
      '{"name":"X","ipAllowlist":[],"auth":["hmac"],"__proto__":{"auth":["jwt"]}}',
      '{"name":"X","ipAllowlist":[],"auth":["hmac"],"jwt":{"constructor":{"prototype":{"x":1}}}}',
    ]) {
      const res = await t.app.inject({ method: 'POST', url: '/v1/advertisers', headers: { ...auth(), 'content-type': 'application/json' }, payload });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().error.code).toBe('invalid_request');
    }
    const q = await t.app.inject({ method: 'GET', url: '/v1/conversions?__proto__=x', headers: auth() });
    expectApiError(q, 400, 'invalid_request', ['__proto__']);
    expect(await countRows(t.sql, 'advertisers')).toBe(before);
  });
});

describe('click IDs that are not ours', () => {
  it.each([
    ['{clickid}', true],
    ['${click_id}', true],
    ['[CLICK_ID]', true],
    ['##clickid##', true],
    ['random text, with / and spaces', false],
    ['c'.repeat(255), false],
  ])('%j is a 422 invalid_click malformed, logged with the claimed value', async (clickid, macro) => {
    const txid = `bad-click-${encode(clickid).slice(0, 40)}-${clickid.length}`;
    const res = await t.app.inject({ method: 'GET', url: signedGetUrl(hmacAdv.id, `clickid=${encode(clickid)}&txid=${encode(txid)}`, whsec()) });
    expect(res.statusCode, res.body).toBe(422);
    expect(res.json().error).toMatchObject({ code: 'invalid_click', reason: 'malformed' });
    expect(res.json().error.message.includes('macro')).toBe(macro);
    await t.engine.intake.attempts.flush();
    const [logged] = await t.sql`select click_id, reason from postback_attempts where txid = ${txid}`;
    expect(logged).toEqual({ click_id: clickid, reason: 'malformed' });
    expect(await t.sql`select id from conversions where txid = ${txid}`).toHaveLength(0);
  });

  it('a click ID over 255 characters is a 400 on clickid', async () => {
    const res = await t.app.inject({ method: 'GET', url: signedGetUrl(hmacAdv.id, `clickid=${'c'.repeat(256)}&txid=long-click`, whsec()) });
    expectApiError(res, 400, 'invalid_request', ['clickid']);
  });
});
