import { afterEach, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import {
  insertConversionsWithDeliveries,
  setupDelivery,
  waitForState,
  type DeliverySetup,
  type Handler,
} from './helpers/delivery-receiver.js';
import { auth } from './helpers/engine.js';

/**
 * Outbound delivery against a real local receiver that verifies every signature with the official
 * `standardwebhooks` package: first-time success, macros, the retry schedule, Retry-After, redirects
 * and timeouts. All state is asserted in PostgreSQL as well as at the receiver.
 */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function setup(handler: Handler, opts: { config?: Partial<Config>; method?: 'GET' | 'POST'; path?: string } = {}): Promise<DeliverySetup> {
  const s = await setupDelivery(handler, opts);
  cleanups.push(s.close);
  return s;
}

describe('delivery', () => {
  it('delivers a POST the first time, signed, with the conversion as JSON, and records the attempt', async () => {
    const { t, rx, ids } = await setup(() => ({ status: 200, body: 'thanks' }));
    const { conversionIds, deliveryIds } = await insertConversionsWithDeliveries(t.sql, ids, 1, {
      refireWindowS: 60,
      subs: ['a b&c', null, 'é/?', null, 'x'],
      payoutMinor: 1234n,
    });
    const [id] = deliveryIds as [string];
    await waitForState(t.sql, id, 'delivered');

    expect(rx.received).toHaveLength(1);
    const req = rx.received[0]!;
    expect(req.signatureError).toBeUndefined();
    expect(req.webhookId).toBe(id);
    expect(req.method).toBe('POST');
    expect(req.headers['content-type']).toBe('application/json');
    const body = JSON.parse(req.body);
    expect(body).toMatchObject({
      conversion_id: conversionIds[0],
      event: 'conversion',
      status: 'approved',
      payout: '12.34',
      currency: 'USD',
      offer_id: ids.offerId,
      sub1: 'a b&c',
      sub2: null,
      sub3: 'é/?',
      sub5: 'x',
    });
    expect(req.url).toBe(`/pb?c=${encodeURIComponent(body.clickid)}&p=12.34`);

    const [row] = await t.sql`select state, attempts, last_status_code, lease_until, leased_by, delivered_at from deliveries where id = ${id}`;
    expect(row).toMatchObject({ state: 'delivered', attempts: 1, last_status_code: 200, lease_until: null, leased_by: null });
    expect(row?.delivered_at).toBeInstanceOf(Date);
    const attempts = await t.sql`select status_code, error, response_snippet, latency_ms, replay from delivery_attempts where delivery_id = ${id}`;
    expect(attempts).toEqual([{ status_code: 200, error: null, response_snippet: 'thanks', latency_ms: expect.any(Number), replay: false }]);
  });

  it('GET fills every macro URL-encoded and signs the empty body', async () => {
    const path = '/g?clickid={clickid}&txid={txid}&payout={payout}&currency={currency}&event={event}&status={status}' +
      '&offer={offer_id}&conv={conversion_id}&s1={sub1}&s2={sub2}&s3={sub3}&s4={sub4}&s5={sub5}&keep={unknown}';
    const { t, rx, ids } = await setup(() => ({ status: 204 }), { method: 'GET', path });
    const { conversionIds, deliveryIds } = await insertConversionsWithDeliveries(t.sql, ids, 1, {
      refireWindowS: 60,
      subs: ['a b', '&=?#', '日本', null, '%41'],
      payoutMinor: 5n,
      currency: 'JPY',
    });
    await waitForState(t.sql, deliveryIds[0]!, 'delivered');
    const req = rx.received[0]!;
    expect(req.signatureError).toBeUndefined();
    expect(req.method).toBe('GET');
    expect(req.body).toBe('');
    const q = new URL(req.url, 'http://x').searchParams;
    const [conv] = await t.sql`select click_id, txid from conversions where id = ${conversionIds[0]!}`;
    expect(Object.fromEntries(q)).toEqual({
      clickid: conv?.click_id,
      txid: conv?.txid,
      payout: '5',
      currency: 'JPY',
      event: 'conversion',
      status: 'approved',
      offer: ids.offerId,
      conv: conversionIds[0],
      s1: 'a b',
      s2: '&=?#',
      s3: '日本',
      s4: '',
      s5: '%41',
      keep: '{unknown}',
    });
  });

  it('500 three times then 200: four attempts, one webhook-id, non-decreasing gaps, each re-signed', async () => {
    const { t, rx, ids } = await setup((_req, nth) => (nth <= 3 ? { status: 500, body: 'boom' } : { status: 200 }));
    const [id] = (await insertConversionsWithDeliveries(t.sql, ids, 1, { refireWindowS: 60 })).deliveryIds as [string];
    await waitForState(t.sql, id, 'delivered');

    expect(rx.received.map((r) => r.webhookId)).toEqual([id, id, id, id]);
    expect(rx.received.every((r) => r.signatureError === undefined)).toBe(true);
    expect(new Set(rx.received.map((r) => r.headers['webhook-timestamp'])).size).toBeGreaterThan(1); // fresh timestamps
    expect(rx.connections()).toBe(1); // one keep-alive connection carried all four tries
    const gaps = rx.received.slice(1).map((r, i) => r.at - rx.received[i]!.at);
    expect(gaps[0]).toBeGreaterThanOrEqual(200);
    expect(gaps[1]).toBeGreaterThanOrEqual(gaps[0]!);
    expect(gaps[2]).toBeGreaterThanOrEqual(gaps[1]!);

    const attempts = await t.sql`select status_code, error, response_snippet from delivery_attempts where delivery_id = ${id} order by id`;
    expect(attempts.map((a) => a.status_code)).toEqual([500, 500, 500, 200]);
    expect(attempts[0]).toMatchObject({ error: 'HTTP 500', response_snippet: 'boom' });
    const [row] = await t.sql`select state, attempts, last_error from deliveries where id = ${id}`;
    expect(row).toEqual({ state: 'delivered', attempts: 4, last_error: null });
  });
});

describe('delivery retry policy', () => {
  it('honours Retry-After on 429 instead of the (much longer) schedule', async () => {
    const { t, rx, ids } = await setup((_r, nth) => (nth === 1 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 }), {
      config: { deliveryBackoffS: [30] },
    });
    const [id] = (await insertConversionsWithDeliveries(t.sql, ids, 1, { refireWindowS: 60 })).deliveryIds as [string];
    await waitForState(t.sql, id, 'delivered');
    expect(rx.received).toHaveLength(2);
    const gap = rx.received[1]!.at - rx.received[0]!.at;
    // Not before the receiver asked (1 s, less clock granularity), and clearly not the 30 s schedule.
    expect(gap).toBeGreaterThanOrEqual(950);
    expect(gap).toBeLessThan(15_000);
    const attempts = await t.sql`select status_code, error from delivery_attempts where delivery_id = ${id} order by id`;
    expect(attempts).toEqual([{ status_code: 429, error: 'HTTP 429' }, { status_code: 200, error: null }]);
  });

  it('honours an HTTP-date Retry-After on 503', async () => {
    const { t, rx, ids } = await setup(
      (_r, nth) => (nth === 1 ? { status: 503, headers: { 'retry-after': new Date(Date.now() + 2000).toUTCString() } } : { status: 200 }),
      { config: { deliveryBackoffS: [30] } },
    );
    const [id] = (await insertConversionsWithDeliveries(t.sql, ids, 1, { refireWindowS: 60 })).deliveryIds as [string];
    await waitForState(t.sql, id, 'delivered');
    // The date has one-second resolution, so the wait is between 1 and 2 s.
    expect(rx.received[1]!.at - rx.received[0]!.at).toBeGreaterThanOrEqual(950);
  });

  it('does not follow a 301: a failed attempt, retried on the schedule, nothing sent to the Location', async () => {
    const { t, rx, ids } = await setup((r) =>
      r.url.startsWith('/elsewhere') ? { status: 200 } : { status: 301, headers: { location: '/elsewhere' } },
    );
    const [id] = (await insertConversionsWithDeliveries(t.sql, ids, 1, { refireWindowS: 60 })).deliveryIds as [string];
    await rx.waitFor((r) => r.length >= 2);
    expect(rx.received.every((r) => r.url.startsWith('/pb'))).toBe(true);
    const [first] = await t.sql`select status_code, error from delivery_attempts where delivery_id = ${id} order by id limit 1`;
    expect(first).toEqual({ status_code: 301, error: 'HTTP 301: redirect not followed to /elsewhere' });
    const [row] = await t.sql`select state from deliveries where id = ${id}`;
    expect(row?.state).toBe('failed');
  });

  it('times out a receiver that never answers, records it, and retries with the same webhook-id', async () => {
    const { t, rx, ids } = await setup(() => 'hang', { config: { deliveryTimeoutS: 0.5, deliveryBackoffS: [0.2] } });
    const [id] = (await insertConversionsWithDeliveries(t.sql, ids, 1, { refireWindowS: 60 })).deliveryIds as [string];
    await rx.waitFor((r) => r.length >= 2);
    expect(new Set(rx.received.map((r) => r.webhookId))).toEqual(new Set([id]));
    const [first] = await t.sql`select status_code, error, latency_ms from delivery_attempts where delivery_id = ${id} order by id limit 1`;
    expect(first).toMatchObject({ status_code: null, error: 'no answer within 500 ms' });
    expect(first?.latency_ms).toBeGreaterThanOrEqual(450);
    const [row] = await t.sql`select state, last_error from deliveries where id = ${id}`;
    expect(row?.state).toBe('failed');
  });

  it('expires at the deadline with a shrunk REFIRE_WINDOW_S, never trying after it; a replay still sends with the same webhook-id', async () => {
    let up = false;
    const { t, rx, ids } = await setup(() => (up ? { status: 200, body: 'late but fine' } : { status: 500 }), {
      config: { deliveryBackoffS: [0.3], refireWindowS: 1.5 },
    });
    const [id] = (await insertConversionsWithDeliveries(t.sql, ids, 1, { refireWindowS: 1.5 })).deliveryIds as [string];
    await waitForState(t.sql, id, 'expired');
    const [row] = await t.sql`select deadline_at, lease_until, attempts from deliveries where id = ${id}`;
    expect(row?.lease_until).toBeNull();
    expect(row?.attempts).toBeGreaterThanOrEqual(2);
    const attempts = await t.sql`select attempted_at from delivery_attempts where delivery_id = ${id}`;
    expect(attempts.every((a) => (a.attempted_at as Date) < (row?.deadline_at as Date))).toBe(true);
    const before = rx.received.length;
    await new Promise((r) => setTimeout(r, 500));
    expect(rx.received.length).toBe(before);

    up = true;
    const res = await t.app.inject({ method: 'POST', url: `/v1/deliveries/${id}/replay`, headers: auth() });
    expect(res.statusCode).toBe(200);
    const view = res.json();
    expect(view).toMatchObject({ id, webhookId: id, state: 'delivered', lastStatusCode: 200 });
    expect(view.attempts.at(-1)).toMatchObject({ statusCode: 200, replay: true, response: 'late but fine' });
    expect(rx.received.at(-1)?.webhookId).toBe(id);
    expect(rx.received.at(-1)?.signatureError).toBeUndefined();
  });
});
