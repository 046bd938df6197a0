import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parseCidr } from '../src/net/cidr.js';
import { seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { mintClick, signedGetUrl } from './helpers/postback.js';

/** No input makes the intake answer 5xx: only a real storage outage may (503). */

let t: TestEngine;
let advId: string;
let whsec: string;
let clickid: string;

beforeAll(async () => {
  t = await startTestEngine({ trustProxy: [parseCidr('127.0.0.1')!], addressRateLimitPerS: 1_000_000 });
  const seeded = await seedCatalog(t.app, { advertiser: { auth: ['hmac'], rateLimit: { perS: 1_000_000 } } });
  advId = seeded.advertiser.id;
  whsec = seeded.advertiser.secrets[0].secret;
  clickid = await mintClick(t.app, seeded.offer.id, seeded.publisher.id);
});
afterAll(async () => t?.close());

const text = fc.oneof(fc.string({ maxLength: 80 }), fc.string({ unit: 'binary', maxLength: 80 }), fc.constantFrom('', '%', '%zz', '\u0000', '__proto__', '[]', '{}', 'null'));
const query = fc.array(fc.tuple(fc.constantFrom('clickid', 'txid', 'payout', 'currency', 'status', 'event', 'ip', 'ua', 'ts', 'sig', 'token', 'x'), text), { maxLength: 8 })
  .map((ps) => ps.map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&'));

it('random GET queries, signed or not, never produce a 5xx', async () => {
  await fc.assert(
    fc.asyncProperty(query, fc.boolean(), text, async (q, signIt, xff) => {
      const url = signIt ? signedGetUrl(advId, `clickid=${clickid}&${q}`, whsec) : `/postback/${advId}?${q}`;
      const res = await t.app.inject({ method: 'GET', url, remoteAddress: '127.0.0.1', headers: { 'x-forwarded-for': xff.replace(/[^\x20-\x7e]/g, '') } });
      expect(res.statusCode, `${url} -> ${res.body}`).toBeLessThan(500);
    }),
    { numRuns: 300 },
  );
});

it('random POST bodies, content types and webhook headers never produce a 5xx', async () => {
  const printable = (s: string) => s.replace(/[^\x20-\x7e]/g, '');
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(fc.json(), text, fc.constant(JSON.stringify({ clickid, txid: 'a', __proto__: { payout: '1' } }))),
      fc.constantFrom('application/json', 'application/x-www-form-urlencoded', 'text/plain', 'application/json; charset=latin1', 'multipart/form-data'),
      text,
      text,
      text,
      text,
      async (body, contentType, id, ts, sig, authz) => {
        const res = await t.app.inject({
          method: 'POST',
          url: `/postback/${advId}`,
          payload: body,
          remoteAddress: '192.0.2.10',
          headers: {
            'content-type': contentType,
            'webhook-id': printable(id),
            'webhook-timestamp': printable(ts),
            'webhook-signature': printable(sig),
            authorization: printable(authz),
          },
        });
        expect(res.statusCode, res.body).toBeLessThan(500);
      },
    ),
    { numRuns: 300 },
  );
});

it('every refused fuzz postback reaches the attempt log, NUL bytes and all', async () => {
  const res = await t.app.inject({ method: 'GET', url: `/postback/${advId}?clickid=%00x&txid=a%00b`, remoteAddress: '192.0.2.99' });
  expect(res.statusCode).toBe(401);
  await t.engine.intake.attempts.flush();
  const [row] = await t.sql`select click_id, txid from postback_attempts where source_ip = '192.0.2.99'`;
  expect(row).toEqual({ click_id: 'x', txid: 'ab' });
  const [all] = await t.sql`select count(*)::int as n from postback_attempts`;
  expect(all?.n).toBeGreaterThan(300);
});
