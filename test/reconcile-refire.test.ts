import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertConversionsWithDeliveries, setupDelivery, waitForState, type DeliverySetup } from './helpers/delivery-receiver.js';
import { auth } from './helpers/engine.js';
import { reconcile, removeRunFiles, sleep, sumFor, windowNow } from './helpers/reconcile.js';

/**
 * Re-fire and expiry (CONTRACT §6-7): an undelivered outbound postback inside REFIRE_WINDOW_S is made
 * due now, an older one expires, and a run repeated over the same window changes nothing.
 */

const HOUR_BACKOFF = { deliveryBackoffS: [3600] };

async function delivery(s: DeliverySetup, id: string) {
  const [row] = await s.t.sql`select state, attempts, next_attempt_at, lease_until, refired_at, expiry_reported_by, updated_at
                              from deliveries where id = ${id}`;
  if (!row) throw new Error(`no delivery ${id}`);
  return row as { state: string; attempts: number; next_attempt_at: Date; lease_until: Date | null; refired_at: Date | null; expiry_reported_by: string | null };
}

async function waitForAttempts(s: DeliverySetup, id: string, attempts: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const d = await delivery(s, id);
    if (d.attempts >= attempts && d.lease_until === null) return;
    await sleep(25);
  }
  throw new Error(`delivery ${id} did not reach ${attempts} attempts`);
}

describe('re-fire', () => {
  let s: DeliverySetup;
  let ok = false;
  beforeAll(async () => {
    s = await setupDelivery(() => (ok ? { status: 200 } : { status: 500 }), { config: { ...HOUR_BACKOFF, refireWindowS: 3600 } });
  });
  afterAll(async () => {
    if (s) await removeRunFiles(s.t.sql, s.t.engine.reconciler.reportsDir);
    await s?.close();
  });

  it('makes a failed delivery due now, once per window, with the same webhook-id, until it is delivered', async () => {
    const { conversionIds, deliveryIds } = await insertConversionsWithDeliveries(s.t.sql, s.ids, 1, { refireWindowS: 3600 });
    const id = deliveryIds[0] as string;
    await waitForAttempts(s, id, 1);
    const failed = await delivery(s, id);
    expect(failed.state).toBe('failed');
    expect(failed.next_attempt_at.getTime()).toBeGreaterThan(Date.now() + 3000_000);

    const w = windowNow();
    const run = await reconcile(s.t.app, w);
    expect(sumFor(run, s.ids.offerId, s.ids.publisherId)).toMatchObject({ refired: 1, expired: 0 });
    await waitForAttempts(s, id, 2);
    const afterRefire = await delivery(s, id);
    expect(afterRefire.state).toBe('failed');
    expect(afterRefire.refired_at).not.toBeNull();
    expect(afterRefire.next_attempt_at.getTime()).toBeGreaterThan(Date.now() + 3000_000);
    expect(s.rx.received.map((r) => r.webhookId)).toEqual([id, id]);

    // The worker tried and failed again in between; the same window still changes nothing.
    const again = await reconcile(s.t.app, w);
    expect(again.totals.refired).toBe(0);
    expect(await delivery(s, id)).toEqual(afterRefire);
    await sleep(200);
    expect(s.rx.received).toHaveLength(2);

    // The publisher is back; the next scheduled window re-fires it and it is delivered.
    ok = true;
    const later = await reconcile(s.t.app, { ...w, to: new Date(Date.parse(w.to) + 1000).toISOString() });
    expect(later.totals.refired).toBe(1);
    await waitForState(s.t.sql, id, 'delivered');
    expect(s.rx.received.map((r) => r.webhookId)).toEqual([id, id, id]);
    expect(s.rx.received.every((r) => r.signatureError === undefined)).toBe(true);
    const [conversion] = await s.t.sql`select id from conversions where id = ${conversionIds[0] as string}`;
    expect(conversion).toBeDefined();

    const done = await reconcile(s.t.app, { ...w, to: new Date(Date.parse(w.to) + 2000).toISOString() });
    expect(done.totals.refired).toBe(0);
  });

  it('leaves alone a delivery in flight, one already due, and one of a publisher disabled by a 410', async () => {
    // In flight: the receiver holds the request, so the delivery is leased.
    ok = true;
    let hang = true;
    s.rx.handler = () => (hang ? 'hang' : { status: 200 });
    const inFlight = (await insertConversionsWithDeliveries(s.t.sql, s.ids, 1, { refireWindowS: 3600 })).deliveryIds[0] as string;
    for (let i = 0; i < 200 && s.rx.hanging() === 0; i++) await sleep(10);
    const leased = await delivery(s, inFlight);
    expect(leased.lease_until).not.toBeNull();
    const run = await reconcile(s.t.app, windowNow());
    expect(run.totals.refired).toBe(0);
    expect((await delivery(s, inFlight)).next_attempt_at).toEqual(leased.next_attempt_at);
    hang = false;

    // Disabled: a 410 parks the publisher's deliveries at their deadline until an admin re-enables it.
    s.rx.handler = () => ({ status: 410 });
    const gone = (await insertConversionsWithDeliveries(s.t.sql, s.ids, 1, { refireWindowS: 3600 })).deliveryIds[0] as string;
    for (let i = 0; i < 200; i++) {
      const [p] = await s.t.sql`select disabled_at from publishers where id = ${s.ids.publisherId}`;
      if (p?.disabled_at) break;
      await sleep(25);
    }
    await waitForAttempts(s, gone, 1);
    const parked = (await insertConversionsWithDeliveries(s.t.sql, s.ids, 1, { refireWindowS: 3600 })).deliveryIds[0] as string;
    const before = [await delivery(s, gone), await delivery(s, parked)];
    const disabledRun = await reconcile(s.t.app, windowNow());
    expect(disabledRun.totals.refired).toBe(0);
    expect([await delivery(s, gone), await delivery(s, parked)]).toEqual(before);
    expect(before.every((d) => d.refired_at === null)).toBe(true);
  });
});

describe('expiry', () => {
  let s: DeliverySetup;
  beforeAll(async () => {
    s = await setupDelivery(() => ({ status: 503 }), { config: { ...HOUR_BACKOFF, refireWindowS: 2 } });
  });
  afterAll(async () => {
    if (s) await removeRunFiles(s.t.sql, s.t.engine.reconciler.reportsDir);
    await s?.close();
  });

  it('counts each delivery past REFIRE_WINDOW_S once, whether the worker or the run expired it', async () => {
    // Expired by the worker's own sweep before any run looks.
    const swept = (await insertConversionsWithDeliveries(s.t.sql, s.ids, 1, { refireWindowS: 2 })).deliveryIds[0] as string;
    await waitForState(s.t.sql, swept, 'expired', 10_000);
    // Expired by the run itself: the worker is stopped, as on a node that died.
    await s.t.engine.deliveries.stop();
    const stranded = (await insertConversionsWithDeliveries(s.t.sql, s.ids, 1, { refireWindowS: 2 })).deliveryIds[0] as string;
    await sleep(2200);
    expect((await delivery(s, stranded)).state).toBe('pending');

    const w = windowNow();
    const run = await reconcile(s.t.app, w);
    expect(sumFor(run, s.ids.offerId, s.ids.publisherId)).toMatchObject({ expired: 2, refired: 0 });
    for (const id of [swept, stranded]) {
      expect(await delivery(s, id)).toMatchObject({ state: 'expired', expiry_reported_by: run.id, lease_until: null });
    }
    const again = await reconcile(s.t.app, w);
    expect(again.totals.expired).toBe(0);
    const other = await reconcile(s.t.app, { ...w, to: new Date(Date.parse(w.to) + 1000).toISOString() });
    expect(other.totals.expired).toBe(0);
    const report = await s.t.app.inject({ url: `/v1/reports/payouts?publisherId=${s.ids.publisherId}`, headers: auth() });
    expect(report.json().rows[0]).toMatchObject({ expired: 2 });
  });
});
