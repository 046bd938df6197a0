import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mintClickId } from '../src/click/click-id.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { es256Keys, mintClick, nowS, secretKey, signJwt, signedGetUrl, uniqueTx, webhookHeaders } from './helpers/postback.js';

/** One test per row of CONTRACT §4's outcome table and per authentication rule. */

const TOLERANCE = 300;
const ALLOWED = '203.0.113.9';
const PROXY = '10.0.0.1';

let t: TestEngine;
let adv: { id: string; secrets: { id: string; secret: string }[] };
let offer: { id: string };
let pub: { id: string };
let jwtAdv: { id: string };
let jwtOffer: { id: string };
let keys: Awaited<ReturnType<typeof es256Keys>>;
let whsec: string;

const conversions = async () => Number((await t.sql`select count(*)::int as n from conversions`)[0]?.n);

async function postJson(advertiserId: string, body: object, opts: { secret?: string; id?: string; at?: Date; ip?: string; headers?: object } = {}) {
  const text = JSON.stringify(body);
  return t.app.inject({
    method: 'POST',
    url: `/postback/${advertiserId}`,
    payload: text,
    remoteAddress: opts.ip ?? ALLOWED,
    headers: { ...webhookHeaders(opts.secret ?? whsec, text, { id: opts.id, at: opts.at }), ...opts.headers },
  });
}

async function getSigned(query: string, opts: { ts?: number; ip?: string; secret?: string; headers?: Record<string, string> } = {}) {
  return t.app.inject({ method: 'GET', url: signedGetUrl(adv.id, query, opts.secret ?? whsec, opts.ts), remoteAddress: opts.ip ?? ALLOWED, headers: opts.headers });
}

async function jwtPost(token: string) {
  return t.app.inject({ method: 'POST', url: `/postback/${jwtAdv.id}`, remoteAddress: ALLOWED, headers: { authorization: `Bearer ${token}` } });
}

beforeAll(async () => {
  t = await startTestEngine({ signatureToleranceS: TOLERANCE, trustProxy: [(await import('../src/net/cidr.js')).parseCidr(PROXY)!] });
  const seeded = await seedCatalog(t.app, { advertiser: { ipAllowlist: ['203.0.113.0/24', '2001:db8::/32'], rateLimit: { perS: 1000 } } });
  adv = seeded.advertiser;
  offer = seeded.offer;
  pub = seeded.publisher;
  whsec = adv.secrets[0]!.secret;
  keys = await es256Keys('k1');
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
      payload: { advertiserId: jwtAdv.id, name: 'J', url: 'https://adv.example/?cid={clickid}', payout: '1.00', currency: 'EUR' },
    })
  ).json();
});

afterAll(async () => t?.close());

describe('accepted postbacks (200)', () => {
  it('POST signed by the official standardwebhooks library is committed', async () => {
    const clickid = await mintClick(t.app, offer.id, pub.id);
    const txid = uniqueTx();
    const res = await postJson(adv.id, { clickid, txid, payout: '3.10', currency: 'USD' });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    // 3.10 against the offer's 2.50: recorded as a reason, not enough points to flag on its own.
    expect(body).toMatchObject({ decision: 'accepted', reasons: ['payout_mismatch'], duplicate: false });
    const [row] = await t.sql`select * from conversions where id = ${body.conversionId}`;
    expect(row).toMatchObject({ txid, click_id: clickid, payout_minor: 310n, currency: 'USD', status: 'approved', source: 's2s' });
    const history = await t.sql`select to_status from conversion_status_history where conversion_id = ${body.conversionId}`;
    expect(history.map((h) => h.to_status)).toEqual(['approved']);
  });

  it('form-encoded POST signed over the raw body', async () => {
    const clickid = await mintClick(t.app, offer.id, pub.id);
    const text = `clickid=${clickid}&txid=${uniqueTx()}&payout=2.50`;
    const headers = { ...webhookHeaders(whsec, text), 'content-type': 'application/x-www-form-urlencoded' };
    const res = await t.app.inject({ method: 'POST', url: `/postback/${adv.id}`, payload: text, remoteAddress: ALLOWED, headers });
    expect(res.statusCode).toBe(200);
  });

  it('GET with the query signature, percent-encoding signed as sent', async () => {
    const clickid = await mintClick(t.app, offer.id, pub.id);
    const res = await getSigned(`clickid=${clickid}&txid=${uniqueTx()}&payout=2.50&ua=Mozilla%2F5.0%20(X11)`);
    expect(res.statusCode).toBe(200);
    const [row] = await t.sql`select user_agent from conversions where id = ${res.json().conversionId}`;
    expect(row?.user_agent).toBe('Mozilla/5.0 (X11)');
  });

  it('ES256 JWT, as a bearer header and as ?token= on GET, with the postback fields as claims', async () => {
    const clickid = await mintClick(t.app, jwtOffer.id, pub.id);
    const res = await jwtPost(await signJwt(keys.privateKey, { clickid, txid: uniqueTx(), payout: '1.00' }));
    expect(res.statusCode).toBe(200);
    const token = await signJwt(keys.privateKey, { clickid, txid: uniqueTx() });
    const viaQuery = await t.app.inject({ method: 'GET', url: `/postback/${jwtAdv.id}?token=${token}`, remoteAddress: ALLOWED });
    expect(viaQuery.statusCode).toBe(200);
    const [row] = await t.sql`select payout_minor, currency from conversions where id = ${viaQuery.json().conversionId}`;
    expect(row).toMatchObject({ payout_minor: 100n, currency: 'EUR' });
  });
});

describe('signed timestamps', () => {
  for (const [label, offset, expected] of [
    ['tolerance+1 s in the past', -(TOLERANCE + 1), 401],
    ['tolerance+1 s in the future', TOLERANCE + 1, 401],
    ['tolerance-1 s in the past', -(TOLERANCE - 1), 200],
    ['tolerance-1 s in the future', TOLERANCE - 1, 200],
  ] as const) {
    it(`${label}: webhook-timestamp, ts and iat all ${expected === 200 ? 'accepted' : 'refused as stale_signature'}`, async () => {
      const before = await conversions();
      const clickid = await mintClick(t.app, offer.id, pub.id);
      const at = new Date((nowS() + offset) * 1000);
      const post = await postJson(adv.id, { clickid, txid: uniqueTx() }, { at });
      const get = await getSigned(`clickid=${clickid}&txid=${uniqueTx()}`, { ts: nowS() + offset });
      const jclick = await mintClick(t.app, jwtOffer.id, pub.id);
      const jwt = await jwtPost(await signJwt(keys.privateKey, { clickid: jclick, txid: uniqueTx() }, { iat: nowS() + offset, exp: nowS() + offset + 3600 }));
      for (const res of [post, get, jwt]) {
        expect(res.statusCode).toBe(expected);
        if (expected === 401) expect(res.json().error.code).toBe('stale_signature');
      }
      expect(await conversions()).toBe(before + (expected === 200 ? 3 : 0));
    });
  }
});

describe('bad signatures (401 bad_signature), nothing recorded', () => {
  it('wrong key, truncated signature, tampered body, tampered query, uppercase hex, missing signature', async () => {
    const before = await conversions();
    const clickid = await mintClick(t.app, offer.id, pub.id);
    const other = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
    const wrongKey = await postJson(adv.id, { clickid, txid: uniqueTx() }, { secret: other });

    const body = JSON.stringify({ clickid, txid: uniqueTx(), payout: '2.50' });
    const headers = webhookHeaders(whsec, body);
    const truncated = await t.app.inject({
      method: 'POST', url: `/postback/${adv.id}`, payload: body, remoteAddress: ALLOWED,
      headers: { ...headers, 'webhook-signature': headers['webhook-signature'].slice(0, -6) },
    });
    const tampered = await t.app.inject({ method: 'POST', url: `/postback/${adv.id}`, payload: body.replace('2.50', '9.50'), remoteAddress: ALLOWED, headers });

    const url = signedGetUrl(adv.id, `clickid=${clickid}&txid=${uniqueTx()}&payout=2.50`, whsec);
    const tamperedQuery = await t.app.inject({ method: 'GET', url: url.replace('payout=2.50', 'payout=9.50'), remoteAddress: ALLOWED });
    const upper = await t.app.inject({ method: 'GET', url: url.replace(/sig=([0-9a-f]+)$/, (_, h: string) => `sig=${h.toUpperCase()}`), remoteAddress: ALLOWED });
    const sigNotLast = await t.app.inject({ method: 'GET', url: `${url}&extra=1`, remoteAddress: ALLOWED });
    const unsigned = await t.app.inject({ method: 'GET', url: `/postback/${adv.id}?clickid=${clickid}&txid=${uniqueTx()}`, remoteAddress: ALLOWED });

    for (const res of [wrongKey, truncated, tampered, tamperedQuery, upper, sigNotLast, unsigned]) {
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('bad_signature');
    }
    expect(await conversions()).toBe(before);
  });

  it('several signatures: one valid among invalid ones passes; all invalid fails', async () => {
    const clickid = await mintClick(t.app, offer.id, pub.id);
    const body = JSON.stringify({ clickid, txid: uniqueTx() });
    const headers = webhookHeaders(whsec, body);
    const bogus = `v1,${Buffer.alloc(32, 1).toString('base64')}`;
    const mixed = await t.app.inject({
      method: 'POST', url: `/postback/${adv.id}`, payload: body, remoteAddress: ALLOWED,
      headers: { ...headers, 'webhook-signature': `${bogus} v2,abc ${headers['webhook-signature']}` },
    });
    expect(mixed.statusCode).toBe(200);
    const allBad = await t.app.inject({
      method: 'POST', url: `/postback/${adv.id}`, payload: body, remoteAddress: ALLOWED,
      headers: { ...headers, 'webhook-id': 'msg_other', 'webhook-signature': `${bogus} ${bogus}` },
    });
    expect(allBad.statusCode).toBe(401);
  });

  it('webhook-id with a dot and a non-digit timestamp are refused even when correctly signed', async () => {
    const clickid = await mintClick(t.app, offer.id, pub.id);
    const dotted = await postJson(adv.id, { clickid, txid: uniqueTx() }, { id: 'msg.1' });
    expect(dotted.statusCode).toBe(401);
    const body = JSON.stringify({ clickid, txid: uniqueTx() });
    const ts = String(nowS());
    const sig = createHmac('sha256', secretKey(whsec)).update(`msg_2.+${ts}.${body}`).digest('base64');
    const plus = await t.app.inject({
      method: 'POST', url: `/postback/${adv.id}`, payload: body, remoteAddress: ALLOWED,
      headers: { 'content-type': 'application/json', 'webhook-id': 'msg_2', 'webhook-timestamp': `+${ts}`, 'webhook-signature': `v1,${sig}` },
    });
    expect(plus.statusCode).toBe(401);
  });

  it('rotated secrets: the new and the old both work until the old is deleted', async () => {
    const created = await t.app.inject({ method: 'POST', url: `/v1/advertisers/${adv.id}/secrets`, headers: auth() });
    expect(created.statusCode).toBe(201);
    const fresh = created.json();
    const clickid = await mintClick(t.app, offer.id, pub.id);
    expect((await getSigned(`clickid=${clickid}&txid=${uniqueTx()}`, { secret: fresh.secret })).statusCode).toBe(200);
    expect((await getSigned(`clickid=${clickid}&txid=${uniqueTx()}`)).statusCode).toBe(200);
    const del = await t.app.inject({ method: 'DELETE', url: `/v1/advertisers/${adv.id}/secrets/${adv.secrets[0]!.id}`, headers: auth() });
    expect(del.statusCode).toBe(204);
    expect((await getSigned(`clickid=${clickid}&txid=${uniqueTx()}`)).statusCode).toBe(401);
    whsec = fresh.secret;
    expect((await getSigned(`clickid=${clickid}&txid=${uniqueTx()}`)).statusCode).toBe(200);
  });
});

describe('JWT refusals (401 bad_token), nothing recorded', () => {
  it('alg none, HS256 keyed with the public key, missing exp or jti, wrong iss or aud, unknown kid, wrong key', async () => {
    const before = await conversions();
    const clickid = await mintClick(t.app, jwtOffer.id, pub.id);
    const claims = { clickid, txid: uniqueTx() };
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const payload = { ...claims, iss: 'https://adv.example', aud: 'postback-engine', iat: nowS(), exp: nowS() + 300, jti: 'j1' };
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
    const hsHeader = b64({ alg: 'HS256', kid: 'k1' });
    const hsKey = Buffer.from(JSON.stringify(keys.jwk));
    const hsSig = createHmac('sha256', hsKey).update(`${hsHeader}.${b64(payload)}`).digest('base64url');
    const confused = `${hsHeader}.${b64(payload)}.${hsSig}`;
    const noJti = await signJwt(keys.privateKey, claims, { jti: null });
    const wrongIss = await signJwt(keys.privateKey, claims, { issuer: 'https://evil.example' });
    const wrongAud = await signJwt(keys.privateKey, claims, { audience: 'someone-else' });
    const unknownKid = await signJwt(keys.privateKey, claims, { kid: 'nope' });
    const otherKeys = await es256Keys('k1');
    const wrongKey = await signJwt(otherKeys.privateKey, claims);
    const expired = await signJwt(keys.privateKey, claims, { iat: nowS() - 10, exp: nowS() - 2 * TOLERANCE });
    for (const token of [none, confused, noJti, wrongIss, wrongAud, unknownKid, wrongKey, expired]) {
      const res = await jwtPost(token);
      expect(res.statusCode, token.slice(0, 30)).toBe(401);
      expect(res.json().error.code).toBe('bad_token');
    }
    const noToken = await t.app.inject({ method: 'POST', url: `/postback/${jwtAdv.id}`, remoteAddress: ALLOWED });
    expect(noToken.json().error.code).toBe('bad_token');
    expect(await conversions()).toBe(before);
  });

  it('a token without exp is refused', async () => {
    const clickid = await mintClick(t.app, jwtOffer.id, pub.id);
    const { SignJWT } = await import('jose');
    const token = await new SignJWT({ clickid, txid: uniqueTx() })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer('https://adv.example').setAudience('postback-engine')
      .setIssuedAt().setJti('j_noexp').sign(keys.privateKey);
    expect((await jwtPost(token)).json().error.code).toBe('bad_token');
  });
});

describe('source address (403 ip_not_allowed)', () => {
  it('refuses an address outside the allowlist, and X-Forwarded-For from an untrusted peer is ignored', async () => {
    const before = await conversions();
    const clickid = await mintClick(t.app, offer.id, pub.id);
    const outside = await getSigned(`clickid=${clickid}&txid=${uniqueTx()}`, { ip: '198.51.100.1' });
    const spoofed = await getSigned(`clickid=${clickid}&txid=${uniqueTx()}`, { ip: '198.51.100.1', headers: { 'x-forwarded-for': ALLOWED } });
    for (const res of [outside, spoofed]) {
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('ip_not_allowed');
    }
    expect(await conversions()).toBe(before);
  });

  it('believes X-Forwarded-For from a trusted proxy, right-most untrusted hop wins', async () => {
    const clickid = await mintClick(t.app, offer.id, pub.id);
    const ok = await getSigned(`clickid=${clickid}&txid=${uniqueTx()}`, { ip: PROXY, headers: { 'x-forwarded-for': `198.51.100.1, ${ALLOWED}` } });
    expect(ok.statusCode).toBe(200);
    const spoofLeft = await getSigned(`clickid=${clickid}&txid=${uniqueTx()}`, { ip: PROXY, headers: { 'x-forwarded-for': `${ALLOWED}, 198.51.100.1` } });
    expect(spoofLeft.statusCode).toBe(403);
  });

  it('non-canonical addresses are not addresses; IPv4-mapped IPv6 matches its IPv4', async () => {
    const clickid = await mintClick(t.app, offer.id, pub.id);
    for (const bogus of ['203.0.113.010', '0xcb.0.113.9', '3405803785', '203.0.113']) {
      const res = await getSigned(`clickid=${clickid}&txid=${uniqueTx()}`, { ip: PROXY, headers: { 'x-forwarded-for': bogus } });
      expect(res.statusCode, bogus).toBe(403);
    }
    const mapped = await getSigned(`clickid=${clickid}&txid=${uniqueTx()}`, { ip: `::ffff:${ALLOWED}` });
    expect(mapped.statusCode).toBe(200);
    const v6 = await getSigned(`clickid=${clickid}&txid=${uniqueTx()}`, { ip: '2001:db8::5' });
    expect(v6.statusCode).toBe(200);
  });
});

describe('click validity (422 invalid_click), decided without the database', () => {
  it('malformed, forged, unknown, expired and wrong_advertiser', async () => {
    const before = await conversions();
    const good = await mintClick(t.app, offer.id, pub.id);
    const key = t.engine.catalog.mintingKey!;
    const a = t.engine.catalog.advertisers.get(adv.id)!;
    const o = t.engine.catalog.offers.get(offer.id)!;
    const p = t.engine.catalog.publishers.get(pub.id)!;
    const flipped = good.slice(0, 10) + (good[10] === 'A' ? 'B' : 'A') + good.slice(11);
    const unknown = mintClickId(key, { advertiserSeq: a.seq, offerSeq: 999_999, publisherSeq: p.seq });
    const expired = mintClickId(key, { advertiserSeq: a.seq, offerSeq: o.seq, publisherSeq: p.seq }, new Date(Date.now() - (o.clickTtlS + 60) * 1000));
    const foreign = await mintClick(t.app, jwtOffer.id, pub.id);
    const cases: [string, string][] = [
      ['not-a-click', 'malformed'],
      [good.slice(0, -2), 'malformed'],
      [flipped, 'forged'],
      [unknown, 'unknown'],
      [expired, 'expired'],
      [foreign, 'wrong_advertiser'],
    ];
    for (const [clickid, reason] of cases) {
      const res = await getSigned(`clickid=${clickid}&txid=${uniqueTx()}`);
      expect(res.statusCode, reason).toBe(422);
      expect(res.json().error).toMatchObject({ code: 'invalid_click', reason });
    }
    expect(await conversions()).toBe(before);
    await t.engine.intake.attempts.flush();
    const logged = await t.sql`select reason from postback_attempts where error_code = 'invalid_click' order by id`;
    expect(logged.map((l) => l.reason)).toEqual(expect.arrayContaining(['malformed', 'forged', 'unknown', 'expired', 'wrong_advertiser']));
  });
});

describe('other refusals', () => {
  it('404 unknown_advertiser, logged', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/postback/adv_nope?clickid=x&txid=y', remoteAddress: ALLOWED });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('unknown_advertiser');
    await t.engine.intake.attempts.flush();
    const [row] = await t.sql`select http_status, source_ip::text from postback_attempts where advertiser_id = 'adv_nope'`;
    expect(row).toMatchObject({ http_status: 404 });
  });

  it('400 invalid_request lists every bad field', async () => {
    const before = await conversions();
    const clickid = await mintClick(t.app, offer.id, pub.id);
    const res = await postJson(adv.id, { clickid, payout: '2.505', currency: 'usd', status: 'paid', ip: '127.1' });
    expect(res.statusCode).toBe(400);
    const paths = res.json().error.details.map((d: { path: string }) => d.path).sort();
    expect(paths).toEqual(['currency', 'ip', 'status', 'txid']);
    const decimals = await postJson(adv.id, { clickid, txid: uniqueTx(), payout: '2.505' });
    expect(decimals.json().error.details).toEqual([{ path: 'payout', message: expect.stringContaining('2 decimal places') }]);
    const repeated = await getSigned(`clickid=${clickid}&txid=a&txid=b`);
    expect(repeated.statusCode).toBe(400);
    // JSON can carry a lone UTF-16 surrogate, which is not storable text: refused, never a 5xx.
    const surrogate = await postJson(adv.id, { clickid, txid: uniqueTx(), ua: 'Mozilla/5.0 \ud800' });
    expect(surrogate.statusCode).toBe(400);
    expect(surrogate.json().error.details).toEqual([{ path: 'ua', message: 'must be valid Unicode text' }]);
    expect(await conversions()).toBe(before);
  });

  it('413 for a body over 16 KiB and 415 for an unsupported content type, in the contract shape', async () => {
    const big = await t.app.inject({
      method: 'POST', url: `/postback/${adv.id}`, remoteAddress: ALLOWED,
      headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ pad: 'x'.repeat(17 * 1024) }),
    });
    expect(big.statusCode).toBe(413);
    expect(big.json().error.code).toBe('payload_too_large');
    const xml = await t.app.inject({ method: 'POST', url: `/postback/${adv.id}`, remoteAddress: ALLOWED, headers: { 'content-type': 'text/xml' }, payload: '<a/>' });
    expect(xml.statusCode).toBe(415);
    expect(xml.json().error.code).toBe('unsupported_media_type');
  });
});
