import { afterEach, describe, expect, it } from 'vitest';
import { BREAKER_THRESHOLD, PER_PUBLISHER_CONCURRENCY } from '../src/delivery/limits.js';
import { FAST_DELIVERY, insertConversionsWithDeliveries, startReceiver, waitForState, type Receiver } from './helpers/delivery-receiver.js';
import { auth, seedCatalog, startTestEngine } from './helpers/engine.js';

/** One dead publisher must not hold up the others: per-publisher concurrency cap and circuit breaker. */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function twoPublishers(dead: Receiver, healthy: Receiver, config = {}) {
  const t = await startTestEngine({ ...FAST_DELIVERY, ...config });
  cleanups.push(t.close);
  const seeded = await seedCatalog(t.app, { publisher: { postbackUrl: `${dead.url}/dead`, method: 'POST' } });
  const res = await t.app.inject({ method: 'POST', url: '/v1/publishers', headers: auth(), payload: { name: 'ok', postbackUrl: `${healthy.url}/ok` } });
  healthy.secret = res.json().secret;
  dead.secret = seeded.publisher.secret;
  const base = { advertiserId: seeded.advertiser.id, offerId: seeded.offer.id };
  return { t, dead: { ...base, publisherId: seeded.publisher.id as string }, healthy: { ...base, publisherId: res.json().id as string } };
}

async function receiver(handler: Parameters<typeof startReceiver>[0]) {
  const rx = await startReceiver(handler);
  cleanups.push(rx.close);
  return rx;
}

describe('publisher isolation', () => {
  it('a hanging publisher ties up at most its cap, and the other publisher is delivered while it still hangs', async () => {
    const deadRx = await receiver(() => 'hang');
    const okRx = await receiver(() => ({ status: 200 }));
    const { t, dead, healthy } = await twoPublishers(deadRx, okRx, { deliveryTimeoutS: 20, deliveryLeaseS: 30 });
    // The dead publisher's backlog is older, so it is first in line.
    const deadIds = (await insertConversionsWithDeliveries(t.sql, dead, 40, { refireWindowS: 600 })).deliveryIds;
    await deadRx.waitFor((r) => r.length >= PER_PUBLISHER_CONCURRENCY);
    const okIds = (await insertConversionsWithDeliveries(t.sql, healthy, 10, { refireWindowS: 600 })).deliveryIds;
    for (const id of okIds) await waitForState(t.sql, id, 'delivered', 10_000);

    expect(deadRx.hanging()).toBe(PER_PUBLISHER_CONCURRENCY);
    expect(deadRx.received).toHaveLength(PER_PUBLISHER_CONCURRENCY);
    const deadStates = await t.sql`select state, count(*)::int as n from deliveries where id = any(${deadIds}::text[]) group by state`;
    expect(deadStates).toEqual([{ state: 'pending', n: 40 }]);
    const okAttempts = await t.sql`select count(*)::int as n from delivery_attempts where delivery_id = any(${okIds}::text[])`;
    expect(okAttempts[0]?.n).toBe(10);
    expect(okRx.received.every((r) => r.signatureError === undefined)).toBe(true);
  });

  it('a failing publisher opens its circuit: attempts pause for it while the other keeps flowing', async () => {
    const deadRx = await receiver(() => ({ status: 500 }));
    const okRx = await receiver(() => ({ status: 200 }));
    const { t, dead, healthy } = await twoPublishers(deadRx, okRx, { deliveryBackoffS: [0.1] });
    await insertConversionsWithDeliveries(t.sql, dead, 30, { refireWindowS: 600 });
    await deadRx.waitFor((r) => r.length >= 5);
    await new Promise((r) => setTimeout(r, 800));
    const seen = deadRx.received.length;
    // Attempts already started when the circuit opens still finish: at most a full cap, plus the slots
    // freed by the failures before the one that opened it. Nothing after that.
    expect(seen).toBeLessThanOrEqual(PER_PUBLISHER_CONCURRENCY + BREAKER_THRESHOLD - 1);
    const okIds = (await insertConversionsWithDeliveries(t.sql, healthy, 5, { refireWindowS: 600 })).deliveryIds;
    for (const id of okIds) await waitForState(t.sql, id, 'delivered', 10_000);
    expect(deadRx.received.length).toBe(seen);
    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^postback_engine_delivery_circuits_open 1$/m);
    const [due] = await t.sql`select count(*)::int as n from deliveries where publisher_id = ${dead.publisherId} and state in ('pending', 'failed')`;
    expect(due?.n).toBe(30);
  });
});
