import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandEvidence } from '../src/fraud/evidence.js';
import { createToken, expectApiError, get } from './helpers/admin.js';
import { seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { postConversion, review, type Seeded } from './helpers/review.js';

/**
 * GET /v1/reviews/queue: flagged conversions awaiting a decision, by payout × score (highest first,
 * then oldest), with the evidence that explains each score. Conversions come through the real intake;
 * scores are steered by the click (a fresh click is ctit_too_short, a hosting address adds
 * datacenter_ip, an HTTP library adds bot_user_agent) and payouts by the offer.
 */

let t: TestEngine;
let analyst: string;
let expected: { id: string; priority: string; reasons: string[] }[];
let cheap: Seeded;

const HOSTING = '159.203.17.40'; // DigitalOcean (AS14061), a hosting network: 40 points
const VPN_EXIT = '2.56.16.1'; // M247 Europe (AS9009), a VPN provider's network: 15 points

beforeAll(async () => {
  t = await startTestEngine();
  analyst = (await createToken(t.app, 'analyst')).token;
  const offer = (payout: string) => ({ offer: { payout, name: `Offer at ${payout}`, fraud: {} } });
  const base = await seedCatalog(t.app, offer('2.50'));
  const pricey = await seedCatalog(t.app, offer('9.00'));
  cheap = await seedCatalog(t.app, offer('1.00'));
  const noFraud = await seedCatalog(t.app, { offer: { payout: '50.00', fraud: { rules: { ctit_too_short: { mode: 'off' } } } } });

  const a = await postConversion(t.app, base); // 250 x 40
  const b = await postConversion(t.app, pricey); // 900 x 40
  const c = await postConversion(t.app, base, { click: { ip: VPN_EXIT } }); // 250 x 55
  const d = await postConversion(t.app, cheap, { click: { ip: VPN_EXIT } }); // 100 x 55
  const e = await postConversion(t.app, base); // 250 x 40, after a: behind it
  const reviewed = await postConversion(t.app, pricey); // flagged, then decided: not in the queue
  const accepted = await postConversion(t.app, noFraud); // never flagged
  const rejected = await postConversion(t.app, base, { click: { ip: HOSTING, ua: 'Mozilla/5.0 HeadlessChrome/124.0' } }); // 100: rejected
  expect([a, b, c, d, e, reviewed].map((x) => x.decision)).toEqual(Array(6).fill('flagged'));
  expect(accepted.decision).toBe('accepted');
  expect(rejected.decision).toBe('rejected');
  expect((await review(t.app, reviewed.conversionId, { decision: 'approve' }, analyst)).statusCode).toBe(201);

  expected = [
    { id: b.conversionId, priority: '36000', reasons: ['ctit_too_short'] },
    { id: c.conversionId, priority: '13750', reasons: ['ctit_too_short', 'datacenter_ip'] },
    { id: a.conversionId, priority: '10000', reasons: ['ctit_too_short'] },
    { id: e.conversionId, priority: '10000', reasons: ['ctit_too_short'] },
    { id: d.conversionId, priority: '5500', reasons: ['ctit_too_short', 'datacenter_ip'] },
  ];
});
afterAll(async () => {
  await t.close();
});

describe('GET /v1/reviews/queue', () => {
  it('lists undecided flagged conversions by payout x score, then oldest first', async () => {
    const res = await get(t.app, '/v1/reviews/queue', analyst);
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body.nextCursor).toBeNull();
    expect(body.items.map((i: { id: string; priority: string; reasons: string[] }) => ({ id: i.id, priority: i.priority, reasons: i.reasons }))).toEqual(expected);
    // Each item agrees with the database, and carries the evidence of the rules that fired.
    for (const item of body.items) {
      const [row] = await t.sql`select payout_minor, score, decision, review_state, evidence from conversions where id = ${item.id}`;
      expect(row).toMatchObject({ decision: 'flagged', review_state: 'none' });
      expect(BigInt(item.priority)).toBe((row?.payout_minor as bigint) * BigInt(row?.score as number));
      expect(item).toMatchObject({ decision: 'flagged', reviewState: 'none', score: row?.score });
      // Named from the catalog: analysts may not list offers, publishers or advertisers themselves.
      const [names] = await t.sql`select o.name as offer, p.name as publisher, a.name as advertiser from conversions c
        join offers o on o.id = c.offer_id join publishers p on p.id = c.publisher_id join advertisers a on a.id = c.advertiser_id where c.id = ${item.id}`;
      expect(item).toMatchObject({ offerName: names?.offer, publisherName: names?.publisher, advertiserName: names?.advertiser });
      expect(item.offerName).toBe(`Offer at ${(Number(row?.payout_minor) / 100).toFixed(2)}`);
      const fired = (expandEvidence(row?.evidence) as { code: string; fired: boolean }[]).filter((ev) => ev.fired);
      expect(item.evidence).toEqual(fired);
      expect(item.evidence.map((ev: { code: string }) => ev.code)).toEqual(item.reasons);
    }
    const ctit = body.items[0].evidence[0];
    expect(ctit).toMatchObject({ code: 'ctit_too_short', evaluated: true, fired: true, points: 40, threshold: 10, window: '10s' });
    expect(ctit.value).toBeGreaterThanOrEqual(0);
    expect(ctit.value).toBeLessThan(10);
  });

  it('pages with a cursor through the same order', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await get(t.app, `/v1/reviews/queue?limit=2${cursor ? `&cursor=${cursor}` : ''}`, analyst);
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json();
      expect(body.items.length).toBeLessThanOrEqual(2);
      seen.push(...body.items.map((i: { id: string }) => i.id));
      cursor = body.nextCursor;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toEqual(expected.map((e) => e.id));
  });

  it('drops a conversion once it is reviewed, and filters by offer', async () => {
    const onlyCheap = (await get(t.app, `/v1/reviews/queue?offerId=${cheap.offer.id}`, analyst)).json();
    expect(onlyCheap.items.map((i: { id: string }) => i.id)).toEqual([expected[4]?.id]);
    expect((await review(t.app, expected[4]?.id as string, { decision: 'reject' }, analyst)).statusCode).toBe(201);
    expect((await get(t.app, `/v1/reviews/queue?offerId=${cheap.offer.id}`, analyst)).json().items).toEqual([]);
    const all = (await get(t.app, '/v1/reviews/queue', analyst)).json();
    expect(all.items.map((i: { id: string }) => i.id)).toEqual(expected.slice(0, 4).map((e) => e.id));
  });

  it('is for analysts: finance 403, no token 401; bad parameters 400', async () => {
    const finance = (await createToken(t.app, 'finance')).token;
    expectApiError(await get(t.app, '/v1/reviews/queue', finance), 403, 'forbidden');
    expectApiError(await t.app.inject({ method: 'GET', url: '/v1/reviews/queue' }), 401, 'unauthorized');
    expectApiError(await get(t.app, '/v1/reviews/queue?cursor=nonsense', analyst), 400, 'invalid_request', ['cursor']);
    expectApiError(await get(t.app, '/v1/reviews/queue?limit=0&order=score', analyst), 400, 'invalid_request', ['limit', 'order']);
    expect((await get(t.app, '/v1/reviews/queue')).statusCode).toBe(200); // admin has every role
  });

  it('leaves the conversions list as it was: ?decision=flagged still lists flagged ones newest first', async () => {
    const res = await get(t.app, '/v1/conversions?decision=flagged', analyst);
    expect(res.statusCode).toBe(200);
    const times = res.json().items.map((i: { createdAt: string }) => Date.parse(i.createdAt));
    expect(times).toEqual([...times].sort((x, y) => y - x));
    expect(res.json().items.every((i: { decision: string }) => i.decision === 'flagged')).toBe(true);
  });
});
