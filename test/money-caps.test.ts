import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post } from './helpers/admin.js';
import { freshDatabase, type TestDatabase } from './helpers/db.js';
import { ADMIN, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { spawnEngine, type EngineProcess } from './helpers/process.js';
import { mintClick, signedGetUrl, uniqueTx } from './helpers/postback.js';

/**
 * CONTRACT §10 caps: a postback past a cap is committed rejected (or flagged) with reason over_cap and
 * evidence, fires nothing, and no more than the cap are accepted, however many arrive at once on
 * however many nodes.
 */

const FRAUD = { rules: { ctit_too_short: { mode: 'off' }, ip_burst: { mode: 'off' }, multiple_conversions_per_click: { mode: 'off' }, payout_mismatch: { mode: 'off' }, bot_user_agent: { mode: 'off' } } };

type Row = { decision: string; reasons: string[]; evidence: { code: string; value?: unknown; threshold?: unknown; window?: string; scope?: string }[] };

describe('caps in one engine', () => {
  let t: TestEngine;
  let adv: { id: string; secrets: { secret: string }[] };
  let pub1: string;
  let pub2: string;

  beforeAll(async () => {
    t = await startTestEngine({ addressRateLimitPerS: 1_000_000 });
    const seeded = await seedCatalog(t.app, { advertiser: { rateLimit: { perS: 1_000_000 } } });
    adv = seeded.advertiser;
    pub1 = seeded.publisher.id;
    pub2 = (await post(t.app, '/v1/publishers', { name: 'Pub Two', postbackUrl: 'https://pub2.example/pb?c={clickid}' })).json().id;
  });

  afterAll(async () => {
    await t?.close();
  });

  async function offerWith(caps: object[], extra: object = {}) {
    const res = await post(t.app, '/v1/offers', { advertiserId: adv.id, name: 'Capped', url: 'https://adv.example/?cid={clickid}', payout: '2.50', currency: 'USD', fraud: FRAUD, caps, ...extra });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().id as string;
  }

  async function send(offerId: string, publisherId: string, query = '') {
    const clk = await mintClick(t.app, offerId, publisherId);
    const res = await t.app.inject({ method: 'GET', url: signedGetUrl(adv.id, `clickid=${clk}&txid=${uniqueTx()}${query}`, adv.secrets[0]!.secret), remoteAddress: '203.0.113.60' });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as { conversionId: string; decision: string; reasons: string[] };
  }

  const deliveriesOf = async (ids: string[]) =>
    (await t.sql<{ n: number }[]>`select count(*)::int as n from deliveries where conversion_id = any(${ids}::text[])`)[0]?.n;

  it('rejects what is past a daily conversion cap, with evidence, and fires nothing for it', async () => {
    const offerId = await offerWith([{ period: 'day', conversions: 3 }]);
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await send(offerId, pub1));
    expect(results.map((r) => r.decision)).toEqual(['accepted', 'accepted', 'accepted', 'rejected', 'rejected']);
    expect(results.map((r) => r.reasons.includes('over_cap'))).toEqual([false, false, false, true, true]);
    const over = results.slice(3).map((r) => r.conversionId);
    expect(await deliveriesOf(over)).toBe(0);
    expect(await deliveriesOf(results.slice(0, 3).map((r) => r.conversionId))).toBe(3);
    const [row] = await t.sql<Row[]>`select decision, reasons, evidence from conversions where id = ${over[0]!}`;
    const evidence = row!.evidence.find((e) => e.code === 'over_cap');
    expect(evidence).toMatchObject({ value: { conversions: 3 }, threshold: { conversions: 3, action: 'reject' }, scope: 'offer' });
    expect(evidence?.window).toMatch(/^UTC day \d{4}-\d{2}-\d{2}$/);
    const usage = await t.sql`select cap_key, scope_id, conversions, payout_minor from offer_cap_usage where offer_id = ${offerId}`;
    expect(usage).toEqual([{ cap_key: 'day:offer:*', scope_id: '', conversions: 3n, payout_minor: 750n }]);
  });

  it('flags instead when the cap says so, and counts per publisher and per event', async () => {
    const offerId = await offerWith([{ period: 'month', per: 'publisher', conversions: 1, action: 'flag' }, { period: 'day', event: 'deposit', conversions: 1 }]);
    const a1 = await send(offerId, pub1);
    const a2 = await send(offerId, pub1);
    const b1 = await send(offerId, pub2);
    expect([a1.decision, a2.decision, b1.decision]).toEqual(['accepted', 'flagged', 'accepted']);
    expect(a2.reasons).toContain('over_cap');
    // The deposit cap counts deposits only; pub2's monthly slot was used by its conversion.
    const d1 = await send(offerId, pub2, '&event=deposit');
    expect(d1).toMatchObject({ decision: 'flagged', reasons: ['over_cap'] });
    const usage = await t.sql`select cap_key, scope_id, conversions from offer_cap_usage where offer_id = ${offerId} order by cap_key, scope_id`;
    // The deposit's own cap was not reached; the flagged deposit took no slot of it.
    expect(usage).toHaveLength(3);
    expect(usage).toEqual(
      expect.arrayContaining([
        { cap_key: 'day:offer:deposit', scope_id: '', conversions: 0n },
        { cap_key: 'month:publisher:*', scope_id: pub1, conversions: 1n },
        { cap_key: 'month:publisher:*', scope_id: pub2, conversions: 1n },
      ]),
    );
    expect(await deliveriesOf([a2.conversionId, d1.conversionId])).toBe(0);
  });

  it('holds a payout cap in the offer currency', async () => {
    const offerId = await offerWith([{ period: 'day', payout: '6.00' }]);
    const results = [];
    for (const payout of ['2.50', '2.50', '1.50', '0.50']) results.push(await send(offerId, pub1, `&payout=${payout}`));
    // 2.50 + 2.50 = 5.00; 1.50 more would be 6.50 > 6.00; 0.50 more is 5.50.
    expect(results.map((r) => r.decision)).toEqual(['accepted', 'accepted', 'rejected', 'accepted']);
    const [row] = await t.sql<Row[]>`select decision, reasons, evidence from conversions where id = ${results[2]!.conversionId}`;
    expect(row!.evidence.find((e) => e.code === 'over_cap')).toMatchObject({ value: { payout: '5.00', thisPayout: '1.50' }, threshold: { payout: '6.00', currency: 'USD' } });
    const [usage] = await t.sql`select conversions, payout_minor from offer_cap_usage where offer_id = ${offerId}`;
    expect(usage).toEqual({ conversions: 3n, payout_minor: 550n });
  });

  it('decides a burst that shares one transaction in order, and a txid sent twice at once counts once', async () => {
    const offerId = await offerWith([{ period: 'day', conversions: 10 }]);
    const sends = await Promise.all(
      Array.from({ length: 30 }, async () => {
        const clk = await mintClick(t.app, offerId, pub1);
        return signedGetUrl(adv.id, `clickid=${clk}&txid=${uniqueTx()}`, adv.secrets[0]!.secret);
      }),
    );
    // The first five are sent twice, all at the same moment: retries racing their originals.
    const answers = await Promise.all([...sends, ...sends.slice(0, 5)].map((url) => t.app.inject({ method: 'GET', url, remoteAddress: '203.0.113.61' })));
    expect(answers.map((a) => a.statusCode)).toEqual(Array(35).fill(200));
    const bodies = answers.map((a) => a.json() as { conversionId: string; decision: string; duplicate: boolean });
    for (let i = 0; i < 5; i++) expect(bodies[30 + i]!.conversionId).toBe(bodies[i]!.conversionId);
    expect(bodies.slice(0, 30).filter((b) => b.decision === 'accepted')).toHaveLength(10);
    const rows = await t.sql<{ decision: string; n: number }[]>`
      select decision, count(*)::int as n from conversions where offer_id = ${offerId} group by decision order by decision`;
    expect(rows).toEqual([{ decision: 'accepted', n: 10 }, { decision: 'rejected', n: 20 }]);
    const [usage] = await t.sql`select conversions from offer_cap_usage where offer_id = ${offerId}`;
    expect(usage).toEqual({ conversions: 10n });
  });

  it('takes no slot for a retry, a status change or a rejected postback', async () => {
    const offerId = await offerWith([{ period: 'day', conversions: 2 }]);
    const clk = await mintClick(t.app, offerId, pub1);
    const txid = uniqueTx();
    const url = (q: string) => signedGetUrl(adv.id, `clickid=${clk}&txid=${txid}${q}`, adv.secrets[0]!.secret);
    const first = await t.app.inject({ method: 'GET', url: url('&status=pending'), remoteAddress: '203.0.113.60' });
    const retry = await t.app.inject({ method: 'GET', url: url('&status=pending'), remoteAddress: '203.0.113.60' });
    const approved = await t.app.inject({ method: 'GET', url: url('&status=approved'), remoteAddress: '203.0.113.60' });
    expect([first.json().duplicate, retry.json().duplicate, approved.json().conversionId]).toEqual([false, true, first.json().conversionId]);
    await send(offerId, pub1, '&status=rejected');
    const second = await send(offerId, pub1);
    const third = await send(offerId, pub1);
    expect([second.decision, third.decision]).toEqual(['accepted', 'rejected']);
    const [usage] = await t.sql`select conversions from offer_cap_usage where offer_id = ${offerId}`;
    expect(usage).toEqual({ conversions: 2n });
  });
});

describe('caps across two engine processes', () => {
  let db: TestDatabase;
  let nodes: EngineProcess[] = [];
  let adv: { id: string; secrets: { secret: string }[] };
  let pubId: string;

  beforeAll(async () => {
    db = await freshDatabase();
    const env = { DATABASE_URL: db.url, ADMIN_TOKEN: ADMIN, ADDRESS_RATE_LIMIT_PER_S: '100000' };
    nodes = await Promise.all([spawnEngine(env), spawnEngine(env)]);
    await Promise.all(nodes.map((n) => n.ready()));
    adv = await api('/v1/advertisers', { name: 'A', ipAllowlist: [], auth: ['hmac'], rateLimit: { perS: 100000 } });
    pubId = (await api('/v1/publishers', { name: 'P', postbackUrl: 'https://pub.example/pb?c={clickid}' })).id;
  }, 60_000);

  afterAll(async () => {
    for (const n of nodes) n.kill();
    await db?.drop();
  });

  async function api(path: string, body: object) {
    const res = await fetch(`${nodes[0]!.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (res.status !== 201) throw new Error(`${path} -> ${res.status} ${await res.text()}`);
    return res.json();
  }

  async function burst(caps: object[]) {
    const offer = await api('/v1/offers', { advertiserId: adv.id, name: 'O', url: 'https://adv.example/?cid={clickid}', payout: '2.50', currency: 'USD', fraud: FRAUD, caps });
    const clicks = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const res = await fetch(`${nodes[i % 2]!.url}/c/${offer.id}?pub=${pubId}`, { redirect: 'manual' });
        return new URL(res.headers.get('location') as string).searchParams.get('cid') as string;
      }),
    );
    // All 40 at once, alternating between the nodes.
    const answers = await Promise.all(
      clicks.map(async (clk, i) => {
        const res = await fetch(`${nodes[i % 2]!.url}${signedGetUrl(adv.id, `clickid=${clk}&txid=${uniqueTx()}`, adv.secrets[0]!.secret)}`);
        return { status: res.status, body: (await res.json()) as { decision: string; reasons: string[]; conversionId: string } };
      }),
    );
    expect(answers.map((a) => a.status)).toEqual(Array(40).fill(200));
    const rows = await db.sql<{ decision: string; over: boolean; deliveries: number }[]>`
      select c.decision, 'over_cap' = any(c.reasons) as over, (select count(*)::int from deliveries d where d.conversion_id = c.id) as deliveries
      from conversions c where c.offer_id = ${offer.id}`;
    return { offerId: offer.id as string, answers, rows };
  }

  it('accepts exactly 10 of 40 concurrent postbacks against a conversion cap of 10; the rest over_cap, unfired', async () => {
    const { offerId, answers, rows } = await burst([{ period: 'day', conversions: 10 }]);
    expect(answers.filter((a) => a.body.decision === 'accepted')).toHaveLength(10);
    expect(answers.filter((a) => a.body.decision === 'rejected' && a.body.reasons.includes('over_cap'))).toHaveLength(30);
    expect(rows).toHaveLength(40);
    expect(rows.filter((r) => r.decision === 'accepted' && !r.over && r.deliveries === 1)).toHaveLength(10);
    expect(rows.filter((r) => r.decision === 'rejected' && r.over && r.deliveries === 0)).toHaveLength(30);
    const [usage] = await db.sql`select conversions from offer_cap_usage where offer_id = ${offerId}`;
    expect(usage).toEqual({ conversions: 10n });
  }, 60_000);

  it('holds a payout cap the same way: 25.00 at 2.50 each is 10', async () => {
    const { offerId, rows } = await burst([{ period: 'month', payout: '25.00' }]);
    expect(rows.filter((r) => r.decision === 'accepted' && r.deliveries === 1)).toHaveLength(10);
    expect(rows.filter((r) => r.decision === 'rejected' && r.over && r.deliveries === 0)).toHaveLength(30);
    const [usage] = await db.sql`select conversions, payout_minor from offer_cap_usage where offer_id = ${offerId}`;
    expect(usage).toEqual({ conversions: 10n, payout_minor: 2500n });
  }, 60_000);
});
