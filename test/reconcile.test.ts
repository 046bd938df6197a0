import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auth, seedCatalog, startTestEngine, TEST_TRAFFIC_FRAUD, type TestEngine } from './helpers/engine.js';
import { startReceiver, type Receiver } from './helpers/delivery-receiver.js';
import { mintClick, signedGetUrl, uniqueTx } from './helpers/postback.js';
import { businessSnapshot, firePixel, reconcile, removeRunFiles, sendPostback, sleep, sumFor, windowNow, type RunBody } from './helpers/reconcile.js';
import { timeOfId } from '../src/ids.js';

/**
 * CONTRACT §7 with a real PostgreSQL: S2S against pixel, recovery after PIXEL_GRACE_S, the late S2S
 * completing a recovered conversion, root causes, and a repeated run changing nothing.
 */

const GRACE_S = 2;

let t: TestEngine;
let rx: Receiver;
let advId: string;
let whsec: string;
let pubId: string;

async function newOffer(advertiserId = advId, extra: object = {}): Promise<string> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/v1/offers',
    headers: auth(),
    payload: { advertiserId, name: 'o', url: 'https://adv.example/?cid={clickid}', payout: '2.50', currency: 'USD', fraud: TEST_TRAFFIC_FRAUD, ...extra },
  });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().id;
}

const postback = (query: string, adv = advId, secret = whsec) => sendPostback(t.app, adv, secret, query);
const conversionsOf = (txid: string) => t.sql`select * from conversions where txid = ${txid}`;
const flushAll = async () => {
  await t.engine.pixelWriter.flush();
  await t.engine.clickWriter.flush();
  await t.engine.intake.attempts.flush();
};

beforeAll(async () => {
  rx = await startReceiver(() => ({ status: 200 }));
  t = await startTestEngine({ pixelGraceS: GRACE_S, allowPrivateDestinations: true, deliveryPollS: 0.05 });
  const seeded = await seedCatalog(t.app, { publisher: { postbackUrl: `${rx.url}/pb?c={clickid}` }, advertiser: { rateLimit: { perS: 10_000 } } });
  rx.secret = seeded.publisher.secret;
  advId = seeded.advertiser.id;
  whsec = seeded.advertiser.secrets[0].secret;
  pubId = seeded.publisher.id;
});
afterAll(async () => {
  if (t) await removeRunFiles(t.sql, t.engine.reconciler.reportsDir);
  await t?.close();
  await rx?.close();
});

describe('comparison', () => {
  it('counts matched, pixel-only and S2S-only per offer, publisher and UTC hour, and changes nothing inside the grace period', async () => {
    const offerId = await newOffer();
    const click = () => mintClick(t.app, offerId, pubId);
    const [c1, c2, c3, c4, c5, c6] = [await click(), await click(), await click(), await click(), await click(), await click()];
    const [tx1, tx2, tx3, tx4, tx5] = [uniqueTx(), uniqueTx(), uniqueTx(), uniqueTx(), uniqueTx()];
    await firePixel(t.app, c1, tx1);
    expect((await postback(`clickid=${c1}&txid=${tx1}`)).statusCode).toBe(200); // matched
    await firePixel(t.app, c2, tx2); // pixel only, still inside the grace period
    expect((await postback(`clickid=${c3}&txid=${tx3}`)).statusCode).toBe(200); // S2S only
    await firePixel(t.app, c4, tx4, 'lead');
    await firePixel(t.app, c4, tx4, 'sale'); // two events, one conversion
    expect((await postback(`clickid=${c4}&txid=${tx4}`)).statusCode).toBe(200);
    await firePixel(t.app, c5, tx5); // the advertiser reported this txid on another click:
    expect((await postback(`clickid=${c6}&txid=${tx5}`)).statusCode).toBe(200); // two units, neither matched
    await flushAll();
    const before = await t.sql`select count(*)::int as n from conversions`;

    const run = await reconcile(t.app, windowNow());
    expect(run.state).toBe('done');
    expect(sumFor(run, offerId, pubId)).toMatchObject({ s2s: 4, pixel: 4, matched: 2, s2sOnly: 2, pixelOnly: 2, recovered: 0 });
    for (const row of run.rows) {
      expect(row.hour).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:00:00\.000Z$/);
      expect(row.s2s).toBe(Number(row.matched) + Number(row.s2sOnly));
      expect(row.pixel).toBe(Number(row.matched) + Number(row.pixelOnly));
    }
    const hour = new Date(Math.floor(Date.now() / 3600_000) * 3600_000).toISOString();
    expect(run.rows.filter((r) => r.offerId === offerId).every((r) => String(r.hour) <= hour)).toBe(true);
    expect((await t.sql`select count(*)::int as n from conversions`)[0]?.n).toBe(before[0]?.n);

    const causes = await t.sql`select txid, click_id, cause, recovered_conversion_id from reconciliation_root_causes where run_id = ${run.id} and offer_id = ${offerId} order by txid`;
    expect(causes.map((c) => [c.txid, c.click_id, c.cause, c.recovered_conversion_id]).sort()).toEqual(
      [
        [tx2, c2, 'awaiting_s2s', null],
        [tx5, c5, 'txid_other_click', null],
      ].sort(),
    );
  });
});

describe('recovery', () => {
  let offerId: string;
  let clickId: string;
  let txid: string;
  let recoveredId: string;

  it('turns a pixel-only conversion older than PIXEL_GRACE_S into a flagged conversion with source pixel, once', async () => {
    offerId = await newOffer(advId, { payout: '4.20' });
    clickId = await mintClick(t.app, offerId, pubId, { subs: '&sub1=s-one&sub3=three', ip: '198.51.100.77' });
    txid = uniqueTx();
    await firePixel(t.app, clickId, txid, 'purchase');
    await flushAll();
    const [pixelRow] = await t.sql`select created_at from pixel_events where click_id = ${clickId}`;
    await sleep(GRACE_S * 1000 + 200);

    const run = await reconcile(t.app, windowNow());
    expect(sumFor(run, offerId, pubId)).toMatchObject({ s2s: 0, pixel: 1, matched: 0, pixelOnly: 1, recovered: 1 });
    expect(run.rootCauses.never_attempted).toBeGreaterThanOrEqual(1);

    const rows = await conversionsOf(txid);
    expect(rows).toHaveLength(1);
    const c = rows[0] as Record<string, unknown>;
    recoveredId = c.id as string;
    expect(c).toMatchObject({
      advertiser_id: advId,
      offer_id: offerId,
      publisher_id: pubId,
      click_id: clickId,
      event: 'purchase',
      status: 'approved',
      source: 'pixel',
      decision: 'flagged',
      reasons: ['s2s_missing'],
      payout_minor: 420n,
      currency: 'USD',
      sub1: 's-one',
      sub3: 'three',
      review_state: 'none',
    });
    // The shape src/ids.ts mints, dated at the pixel (the ID names the conversion's day partition).
    expect(recoveredId).toMatch(/^cv_[A-Za-z0-9_-]{24}$/);
    expect(timeOfId(recoveredId)?.getTime()).toBe(Math.floor((pixelRow?.created_at as Date).getTime()));
    expect((c.created_at as Date).getTime()).toBe((pixelRow?.created_at as Date).getTime());
    const evidence = c.evidence as { code: string; value: Record<string, unknown>; threshold: Record<string, unknown>; note: string }[];
    expect(evidence).toHaveLength(1);
    expect(evidence[0]).toMatchObject({ code: 's2s_missing', value: { rootCause: 'never_attempted', event: 'purchase', runId: run.id }, threshold: { graceS: GRACE_S } });
    const history = await t.sql`select from_status, to_status, payout_minor, currency, source from conversion_status_history where conversion_id = ${recoveredId}`;
    expect(history).toEqual([{ from_status: null, to_status: 'approved', payout_minor: 420n, currency: 'USD', source: 'pixel' }]);
    // Flagged: nobody is notified or paid until an analyst approves it.
    expect(await t.sql`select id from deliveries where conversion_id = ${recoveredId}`).toHaveLength(0);
    const [cause] = await t.sql`select cause, recovered_conversion_id from reconciliation_root_causes where run_id = ${run.id} and txid = ${txid}`;
    expect(cause).toEqual({ cause: 'never_attempted', recovered_conversion_id: recoveredId });

    const listed = await t.app.inject({ url: `/v1/conversions?source=pixel&txid=${txid}`, headers: auth() });
    expect(listed.json().items.map((i: { id: string; decision: string; payout: string }) => [i.id, i.decision, i.payout])).toEqual([[recoveredId, 'flagged', '4.20']]);
  });

  it('a repeated run over the same window changes nothing', async () => {
    const w = windowNow();
    const first = await reconcile(t.app, w);
    // Let the worker finish delivering what the first run may have woken, so only the run could change rows.
    for (let i = 0; i < 100; i++) {
      const [open] = await t.sql`select count(*)::int as n from deliveries where state in ('pending', 'failed')`;
      if (open?.n === 0) break;
      await sleep(50);
    }
    const before = await businessSnapshot(t.sql);
    const second = await reconcile(t.app, w);
    expect(await businessSnapshot(t.sql)).toEqual(before);
    expect(second.totals).toMatchObject({ recovered: 0, refired: 0, expired: 0 });
    const keep = (r: RunBody) => r.rows.map(({ offerId: o, publisherId: p, hour, s2s, pixel, matched, s2sOnly, pixelOnly }) => ({ o, p, hour, s2s, pixel, matched, s2sOnly, pixelOnly }));
    expect(keep(second)).toEqual(keep(first));
    expect(await conversionsOf(txid)).toHaveLength(1);
  });

  it('the late S2S postback completes the recovered conversion instead of creating a second one', async () => {
    const res = await postback(`clickid=${clickId}&txid=${txid}&payout=4.20`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ conversionId: recoveredId, duplicate: false, decision: 'accepted' });
    const rows = await conversionsOf(txid);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id: recoveredId, source: 's2s', decision: 'accepted', reasons: [], status: 'approved', payout_minor: 420n });
    const history = await t.sql`select to_status, source from conversion_status_history where conversion_id = ${recoveredId} order by id`;
    expect(history).toEqual([
      { to_status: 'approved', source: 'pixel' },
      { to_status: 'approved', source: 's2s' },
    ]);
    expect(await t.sql`select id from deliveries where conversion_id = ${recoveredId}`).toHaveLength(1);

    const run = await reconcile(t.app, windowNow());
    expect(sumFor(run, offerId, pubId)).toMatchObject({ s2s: 1, pixel: 1, matched: 1, s2sOnly: 0, pixelOnly: 0, recovered: 0 });
  });
});

describe('recovery of a txid two clicks share', () => {
  it('makes one conversion, dated at the earlier pixel, with one txid key', async () => {
    const offerId = await newOffer(advId, { payout: '1.00' });
    const [early, late] = [await mintClick(t.app, offerId, pubId), await mintClick(t.app, offerId, pubId)];
    const txid = uniqueTx();
    await firePixel(t.app, early, txid, 'purchase');
    await flushAll();
    await firePixel(t.app, late, txid, 'purchase');
    await flushAll();
    const [first] = await t.sql`select created_at from pixel_events where click_id = ${early}`;
    await sleep(GRACE_S * 1000 + 200);

    await reconcile(t.app, windowNow());
    const rows = await conversionsOf(txid);
    expect(rows.map((r) => [r.click_id, (r.created_at as Date).getTime()])).toEqual([[early, (first?.created_at as Date).getTime()]]);
    expect(await t.sql`select conversion_id from conversion_txids where advertiser_id = ${advId} and txid = ${txid}`).toEqual([{ conversion_id: rows[0]?.id }]);
    expect(await t.sql`select count(*)::int as n from conversion_status_history where conversion_id = ${rows[0]?.id as string}`).toEqual([{ n: 1 }]);
  });
});

describe('root causes of missing S2S postbacks', () => {
  it('names the refusal the attempt log knows: signature, address, click validity, wrong advertiser, rate limit, or none', async () => {
    const offerId = await newOffer();
    const shortOffer = await newOffer(advId, { clickTtlS: 1 });
    const guarded = await seedCatalog(t.app, { advertiser: { name: 'Guarded', ipAllowlist: ['203.0.113.0/24'], rateLimit: { perS: 10_000 } } });
    const limited = await seedCatalog(t.app, { advertiser: { name: 'Limited', rateLimit: { perS: 1 } } });
    const cases: Record<string, { click: string; txid: string }> = {};
    const unit = async (name: string, offer: string, pub = pubId) => {
      cases[name] = { click: await mintClick(t.app, offer, pub), txid: uniqueTx() };
      await firePixel(t.app, (cases[name] as { click: string }).click, (cases[name] as { txid: string }).txid);
      return cases[name] as { click: string; txid: string };
    };

    const sig = await unit('signature', offerId);
    const forgedSecret = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;
    expect((await postback(`clickid=${sig.click}&txid=${sig.txid}`, advId, forgedSecret)).statusCode).toBe(401);

    const addr = await unit('address', guarded.offer.id, guarded.publisher.id);
    expect((await postback(`clickid=${addr.click}&txid=${addr.txid}`, guarded.advertiser.id, guarded.advertiser.secrets[0].secret)).statusCode).toBe(403);

    const expired = await unit('click_validity', shortOffer);
    await sleep(1100);
    const late = await postback(`clickid=${expired.click}&txid=${expired.txid}`);
    expect(late.json().error).toMatchObject({ code: 'invalid_click', reason: 'expired' });

    const wrong = await unit('unknown_advertiser', offerId);
    const stray = await t.app.inject({ url: signedGetUrl('adv_does_not_exist', `clickid=${wrong.click}&txid=${wrong.txid}`, whsec), remoteAddress: '192.0.2.1' });
    expect(stray.statusCode).toBe(404);

    // 429s are only counted per advertiser and minute: a unit of an advertiser over its rate is inferred.
    const limitedUnit = await unit('rate_limit', limited.offer.id, limited.publisher.id);
    const others = await Promise.all([1, 2, 3, 4, 5].map(() => mintClick(t.app, limited.offer.id, limited.publisher.id)));
    const burst = [];
    for (const other of others) burst.push((await postback(`clickid=${other}&txid=${uniqueTx()}`, limited.advertiser.id, limited.advertiser.secrets[0].secret)).statusCode);
    expect(burst.filter((s) => s === 429).length).toBeGreaterThanOrEqual(3);

    const none = await unit('never_attempted', offerId);
    await flushAll();
    await sleep(GRACE_S * 1000 + 200);
    const run = await reconcile(t.app, windowNow());

    const res = await t.app.inject({ url: `/v1/reconciliations/${run.id}/root-causes?limit=1000`, headers: auth() });
    expect(res.statusCode, res.body).toBe(200);
    const byTxid = new Map<string, Record<string, unknown>>(res.json().items.map((i: Record<string, unknown>) => [i.txid, i]));
    for (const [cause, u] of Object.entries(cases)) {
      const item = byTxid.get(u.txid);
      expect(item, cause).toMatchObject({ cause, clickid: u.click, recovered: true });
      const [conversion] = await conversionsOf(u.txid);
      expect(conversion?.evidence, cause).toMatchObject([{ code: 's2s_missing', value: { rootCause: cause } }]);
    }
    expect(byTxid.get(sig.txid)).toMatchObject({ errorCode: 'bad_signature', refusedAttempts: 1 });
    expect(byTxid.get(addr.txid)).toMatchObject({ errorCode: 'ip_not_allowed' });
    expect(byTxid.get(expired.txid)).toMatchObject({ errorCode: 'invalid_click', reason: 'expired' });
    expect(byTxid.get(limitedUnit.txid)).toMatchObject({ errorCode: null, refusedAttempts: 0 });
    expect(Number(byTxid.get(limitedUnit.txid)?.rateLimited)).toBeGreaterThanOrEqual(3);
    expect(byTxid.get(none.txid)).toMatchObject({ errorCode: null, rateLimited: 0 });
    for (const cause of Object.keys(cases)) expect(run.rootCauses[cause], cause).toBeGreaterThanOrEqual(1);

    const filtered = await t.app.inject({ url: `/v1/reconciliations/${run.id}/root-causes?cause=signature`, headers: auth() });
    expect(filtered.json().items.map((i: { txid: string }) => i.txid)).toContain(sig.txid);
    expect(filtered.json().items.every((i: { cause: string }) => i.cause === 'signature')).toBe(true);
  });
});
