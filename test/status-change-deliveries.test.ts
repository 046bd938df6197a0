import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { expectApiError, get, patch, post } from './helpers/admin.js';
import { FAST_DELIVERY, startReceiver, waitForState, type Handler, type Receiver } from './helpers/delivery-receiver.js';
import { seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { mintClick, signedGetUrl, uniqueTx } from './helpers/postback.js';
import { insertConversion } from './helpers/reconcile.js';
import { review } from './helpers/review.js';

/**
 * Status changes reach publishers (CONTRACT §10): a publisher with `onStatusChange` is sent every
 * later status change of a conversion it was sent, under a new webhook-id; one without gets nothing
 * more; `events` filters which events get any delivery. Real PostgreSQL, real postbacks through the
 * intake, real HTTP receivers verifying every signature with the official `standardwebhooks` package.
 */

let t: TestEngine;
let advId: string;
let whsec: string;
let offerId: string;
const receivers: Receiver[] = [];

type DeliveryRow = { id: string; publisher_id: string; status: string | null; sequence: number; state: string };
const deliveriesOf = (conversionId: string) =>
  t.sql<DeliveryRow[]>`select id, publisher_id, status, sequence, state from deliveries where conversion_id = ${conversionId} order by sequence`;

const postback = async (query: string) => {
  const res = await t.app.inject({ method: 'GET', url: signedGetUrl(advId, query, whsec), remoteAddress: '192.0.2.1' });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { conversionId: string; decision: string; duplicate: boolean };
};

/** A publisher (through the admin API) whose postback URL is a fresh receiver holding its secret. */
async function publisherWithReceiver(settings: object, handler: Handler = () => ({ status: 200 }), method: 'GET' | 'POST' = 'POST') {
  const rx = await startReceiver(handler);
  receivers.push(rx);
  const res = await post(t.app, '/v1/publishers', { name: 'Status pub', postbackUrl: `${rx.url}/pb?s={status}&t={txid}`, method, ...settings });
  expect(res.statusCode, res.body).toBe(201);
  const body = res.json();
  rx.secret = body.secret;
  return { id: body.id as string, secret: body.secret as string, rx, body };
}

/** Lets the worker run a few polls, so a delivery that should not exist would have had its chance to arrive. */
const settle = () => new Promise((r) => setTimeout(r, 400));

beforeAll(async () => {
  t = await startTestEngine({ ...FAST_DELIVERY, refireWindowS: 3600 });
  const seeded = await seedCatalog(t.app);
  advId = seeded.advertiser.id;
  whsec = seeded.advertiser.secrets[0].secret;
  offerId = seeded.offer.id;
});

afterAll(async () => {
  await t?.close();
  for (const rx of receivers) await rx.close();
});

describe('publisher settings', () => {
  it('POST defaults to no re-fire and every event; PATCH sets and clears them; GET and the audit show them', async () => {
    const created = await post(t.app, '/v1/publishers', { name: 'Defaults', postbackUrl: 'https://pub.example/pb' });
    expect(created.statusCode).toBe(201);
    const id = created.json().id as string;
    expect(created.json()).toMatchObject({ onStatusChange: false, events: null });
    expect((await t.sql`select on_status_change, events from publishers where id = ${id}`)[0]).toEqual({ on_status_change: false, events: null });

    const changed = await patch(t.app, `/v1/publishers/${id}`, { onStatusChange: true, events: ['conversion', 'deposit'] });
    expect(changed.statusCode, changed.body).toBe(200);
    expect(changed.json()).toMatchObject({ onStatusChange: true, events: ['conversion', 'deposit'], name: 'Defaults' });
    expect((await get(t.app, `/v1/publishers/${id}`)).json()).toMatchObject({ onStatusChange: true, events: ['conversion', 'deposit'] });
    expect((await t.sql`select on_status_change, events from publishers where id = ${id}`)[0]).toEqual({
      on_status_change: true,
      events: ['conversion', 'deposit'],
    });
    const [audit] = await t.sql<{ before: Record<string, unknown>; after: Record<string, unknown> }[]>`
      select before, after from admin_audit where entity = 'publisher' and entity_id = ${id} and action = 'update' order by id desc limit 1`;
    expect(audit?.before).toMatchObject({ onStatusChange: false, events: null });
    expect(audit?.after).toMatchObject({ onStatusChange: true, events: ['conversion', 'deposit'] });

    // Leaving a field out keeps it; null gives back every event.
    const cleared = await patch(t.app, `/v1/publishers/${id}`, { events: null });
    expect(cleared.json()).toMatchObject({ onStatusChange: true, events: null });
    expect((await t.sql`select on_status_change, events from publishers where id = ${id}`)[0]).toEqual({ on_status_change: true, events: null });
  });

  it('bad settings are a 400 naming each field and change nothing', async () => {
    const before = await t.sql`select * from publishers order by id`;
    expectApiError(await post(t.app, '/v1/publishers', { name: 'Bad', postbackUrl: 'https://pub.example/pb', onStatusChange: 'yes', events: [] }), 400, 'invalid_request', [
      'onStatusChange',
      'events',
    ]);
    const id = before[0]?.id as string;
    expectApiError(await patch(t.app, `/v1/publishers/${id}`, { events: ['deposit', 'deposit'] }), 400, 'invalid_request', ['events']);
    expectApiError(await patch(t.app, `/v1/publishers/${id}`, { events: ['no spaces'], onStatusChange: null }), 400, 'invalid_request', [
      'events.0',
      'onStatusChange',
    ]);
    expect(await t.sql`select * from publishers order by id`).toEqual(before);
  });
});

describe('re-fire on status change', () => {
  it('a chargeback after delivery reaches an onStatusChange publisher exactly once, under a new webhook-id, signed', async () => {
    const pub = await publisherWithReceiver({ onStatusChange: true });
    const clickid = await mintClick(t.app, offerId, pub.id);
    const txid = uniqueTx();
    const first = await postback(`clickid=${clickid}&txid=${txid}&status=approved`);
    expect(first).toMatchObject({ decision: 'accepted', duplicate: false });
    const [original] = await deliveriesOf(first.conversionId);
    expect(original).toMatchObject({ publisher_id: pub.id, status: 'approved', sequence: 0 });
    await waitForState(t.sql, original!.id, 'delivered');

    const chargeback = await postback(`clickid=${clickid}&txid=${txid}&status=rejected`);
    expect(chargeback).toMatchObject({ conversionId: first.conversionId, duplicate: false });
    const rows = await deliveriesOf(first.conversionId);
    expect(rows).toHaveLength(2);
    const refire = rows[1]!;
    expect(refire).toMatchObject({ publisher_id: pub.id, status: 'rejected', sequence: 1 });
    expect(refire.id).not.toBe(original!.id);
    await waitForState(t.sql, refire.id, 'delivered');

    // The same chargeback again (the advertiser's retry) is a duplicate and queues nothing.
    expect(await postback(`clickid=${clickid}&txid=${txid}&status=rejected`)).toMatchObject({ duplicate: true });
    expect(await deliveriesOf(first.conversionId)).toEqual([
      { ...original, state: 'delivered' },
      { ...refire, state: 'delivered' },
    ]);
    await settle();

    expect(pub.rx.received.map((r) => r.webhookId)).toEqual([original!.id, refire.id]);
    const sent = pub.rx.received[1]!;
    expect(sent.signatureError).toBeUndefined();
    // Verified here too, explicitly, by the official library with the publisher's secret.
    expect(new Webhook(pub.secret).verify(sent.body, sent.headers)).toMatchObject({ conversion_id: first.conversionId, txid, status: 'rejected' });
    expect(sent.url).toBe(`/pb?s=rejected&t=${txid}`);
    expect(JSON.parse(pub.rx.received[0]!.body)).toMatchObject({ status: 'approved' });
    const api = await get(t.app, `/v1/deliveries?conversionId=${first.conversionId}`);
    expect(api.json().items.map((d: { webhookId: string; status: string; sequence: number }) => [d.webhookId, d.status, d.sequence])).toEqual([
      [refire.id, 'rejected', 1],
      [original!.id, 'approved', 0],
    ]);
  });

  it('pending → approved while the pending one is still retrying: both are sent, each with its own status', async () => {
    let acceptPending = false;
    const pub = await publisherWithReceiver(
      { onStatusChange: true },
      (req) => (req.url.startsWith('/pb?s=pending') && !acceptPending ? { status: 503 } : { status: 200 }),
      'GET',
    );
    const clickid = await mintClick(t.app, offerId, pub.id);
    const txid = uniqueTx();
    const first = await postback(`clickid=${clickid}&txid=${txid}&status=pending`);
    const [pending] = await deliveriesOf(first.conversionId);
    expect(pending).toMatchObject({ status: 'pending', sequence: 0 });
    await pub.rx.waitFor((r) => r.length >= 1);

    await postback(`clickid=${clickid}&txid=${txid}&status=approved`);
    const rows = await deliveriesOf(first.conversionId);
    expect(rows.map((r) => [r.status, r.sequence])).toEqual([
      ['pending', 0],
      ['approved', 1],
    ]);
    const approved = rows[1]!;
    await waitForState(t.sql, approved.id, 'delivered');
    expect((await deliveriesOf(first.conversionId))[0]?.state).toBe('failed');

    acceptPending = true;
    await waitForState(t.sql, pending!.id, 'delivered', 20_000);
    const byId = new Map(pub.rx.received.filter((r) => r.signatureError === undefined).map((r) => [r.webhookId, r.url]));
    expect(byId.get(approved.id)).toBe(`/pb?s=approved&t=${txid}`);
    expect(byId.get(pending!.id)).toBe(`/pb?s=pending&t=${txid}`);
    expect(pub.rx.received.every((r) => r.signatureError === undefined)).toBe(true);
    expect(pub.rx.received.filter((r) => r.webhookId === approved.id)).toHaveLength(1);
  });

  it('a publisher without onStatusChange gets nothing more', async () => {
    const pub = await publisherWithReceiver({});
    const clickid = await mintClick(t.app, offerId, pub.id);
    const txid = uniqueTx();
    const first = await postback(`clickid=${clickid}&txid=${txid}&status=pending`);
    const [only] = await deliveriesOf(first.conversionId);
    await waitForState(t.sql, only!.id, 'delivered');

    await postback(`clickid=${clickid}&txid=${txid}&status=approved`);
    expect((await t.sql`select status from conversions where id = ${first.conversionId}`)[0]?.status).toBe('approved');
    expect(await deliveriesOf(first.conversionId)).toEqual([{ ...only, state: 'delivered' }]);
    await postback(`clickid=${clickid}&txid=${txid}&status=rejected`);
    expect(await deliveriesOf(first.conversionId)).toEqual([{ ...only, state: 'delivered' }]);
    await settle();
    expect(pub.rx.received.map((r) => r.webhookId)).toEqual([only!.id]);
  });

  it('events: an event not in the list gets no delivery, first or on a change; one in it gets both', async () => {
    const pub = await publisherWithReceiver({ onStatusChange: true, events: ['deposit'] });
    const filteredClick = await mintClick(t.app, offerId, pub.id);
    const filteredTx = uniqueTx();
    const filtered = await postback(`clickid=${filteredClick}&txid=${filteredTx}&event=conversion&status=pending`);
    expect(filtered.decision).toBe('accepted');
    expect(await deliveriesOf(filtered.conversionId)).toEqual([]);
    await postback(`clickid=${filteredClick}&txid=${filteredTx}&event=conversion&status=approved`);
    expect(await deliveriesOf(filtered.conversionId)).toEqual([]);

    const depositClick = await mintClick(t.app, offerId, pub.id);
    const depositTx = uniqueTx();
    const deposit = await postback(`clickid=${depositClick}&txid=${depositTx}&event=deposit&status=pending`);
    const [firstDeposit] = await deliveriesOf(deposit.conversionId);
    expect(firstDeposit).toMatchObject({ status: 'pending', sequence: 0 });
    await postback(`clickid=${depositClick}&txid=${depositTx}&event=deposit&status=approved`);
    const rows = await deliveriesOf(deposit.conversionId);
    expect(rows.map((r) => [r.status, r.sequence])).toEqual([
      ['pending', 0],
      ['approved', 1],
    ]);
    await waitForState(t.sql, rows[1]!.id, 'delivered');
    await waitForState(t.sql, rows[0]!.id, 'delivered');
    await settle();
    expect(pub.rx.received.map((r) => r.webhookId).sort()).toEqual(rows.map((r) => r.id).sort());
    expect(pub.rx.received.every((r) => r.signatureError === undefined && JSON.parse(r.body).event === 'deposit')).toBe(true);
  });

  it('a conversion never sent (an advertiser-rejected sale) gets no status-change delivery', async () => {
    const pub = await publisherWithReceiver({ onStatusChange: true });
    const clickid = await mintClick(t.app, offerId, pub.id);
    const txid = uniqueTx();
    const first = await postback(`clickid=${clickid}&txid=${txid}&status=rejected`);
    // An advertiser-rejected sale releases no postback; so nothing was sent, and nothing is re-sent.
    expect(await deliveriesOf(first.conversionId)).toEqual([]);
    const second = await t.app.inject({ method: 'GET', url: signedGetUrl(advId, `clickid=${clickid}&txid=${txid}&status=approved`, whsec), remoteAddress: '192.0.2.1' });
    expect(second.statusCode).toBe(409);
    expect(await deliveriesOf(first.conversionId)).toEqual([]);
    await settle();
    expect(pub.rx.received).toEqual([]);
  });

  it('an analyst approval sends the first delivery only for a wanted event; a later change then follows it', async () => {
    const pub = await publisherWithReceiver({ onStatusChange: true, events: ['deposit'] });
    const flagged = async (event: string) => {
      const clickId = await mintClick(t.app, offerId, pub.id);
      const txid = uniqueTx();
      const id = await insertConversion(t.sql, { advertiserId: advId, offerId, publisherId: pub.id, txid, clickId, payoutMinor: 250n, currency: 'USD', status: 'pending', decision: 'flagged' });
      await t.sql`update conversions set event = ${event} where id = ${id}`;
      return { id, clickId, txid };
    };

    const unwanted = await flagged('conversion');
    expect((await review(t.app, unwanted.id, { decision: 'approve' })).statusCode).toBe(201);
    expect((await t.sql`select decision, review_state from conversions where id = ${unwanted.id}`)[0]).toEqual({ decision: 'accepted', review_state: 'approved' });
    expect(await deliveriesOf(unwanted.id)).toEqual([]);

    const wanted = await flagged('deposit');
    expect((await review(t.app, wanted.id, { decision: 'approve' })).statusCode).toBe(201);
    const [first] = await deliveriesOf(wanted.id);
    expect(first).toMatchObject({ status: 'pending', sequence: 0 });
    await postback(`clickid=${wanted.clickId}&txid=${wanted.txid}&event=deposit&status=approved&payout=2.50`);
    const rows = await deliveriesOf(wanted.id);
    expect(rows.map((r) => [r.status, r.sequence])).toEqual([
      ['pending', 0],
      ['approved', 1],
    ]);
    await waitForState(t.sql, rows[1]!.id, 'delivered');
    await waitForState(t.sql, rows[0]!.id, 'delivered');
    await settle();
    expect(pub.rx.received.map((r) => r.webhookId).sort()).toEqual(rows.map((r) => r.id).sort());
  });

  it('the late S2S postback of a released pixel conversion announces its chargeback', async () => {
    const pub = await publisherWithReceiver({ onStatusChange: true });
    const clickId = await mintClick(t.app, offerId, pub.id);
    const txid = uniqueTx();
    const id = await insertConversion(t.sql, { advertiserId: advId, offerId, publisherId: pub.id, txid, clickId, payoutMinor: 250n, currency: 'USD', decision: 'flagged', source: 'pixel' });
    expect((await review(t.app, id, { decision: 'approve' })).statusCode).toBe(201);
    const [first] = await deliveriesOf(id);
    expect(first).toMatchObject({ status: 'approved', sequence: 0 });

    const late = await postback(`clickid=${clickId}&txid=${txid}&status=rejected`);
    expect(late.conversionId).toBe(id);
    expect((await t.sql`select source, status from conversions where id = ${id}`)[0]).toEqual({ source: 's2s', status: 'rejected' });
    const rows = await deliveriesOf(id);
    expect(rows.map((r) => [r.status, r.sequence])).toEqual([
      ['approved', 0],
      ['rejected', 1],
    ]);
    await waitForState(t.sql, rows[1]!.id, 'delivered');
    expect(pub.rx.received.find((r) => r.webhookId === rows[1]!.id)?.url).toBe(`/pb?s=rejected&t=${txid}`);
  });
});
