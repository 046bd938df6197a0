import { afterEach, describe, expect, it } from 'vitest';
import { freshDatabase } from './helpers/db.js';
import { insertConversionsWithDeliveries, startReceiver, type Receiver } from './helpers/delivery-receiver.js';
import { ADMIN } from './helpers/engine.js';
import { spawnEngine, type EngineProcess } from './helpers/process.js';
import type { Sql } from '../src/db/database.js';

/**
 * Real engine processes (`node --import tsx src/main.ts`) over one PostgreSQL: kill -9 with deliveries
 * in flight and start again (at least once, one webhook-id per conversion, no lease left behind), and
 * two processes side by side (nothing sent twice in normal operation).
 */

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

const ENV = {
  ADMIN_TOKEN: ADMIN,
  ALLOW_PRIVATE_DESTINATIONS: 'true',
  DELIVERY_BACKOFF_S: '1',
  DELIVERY_TIMEOUT_S: '1',
  DELIVERY_LEASE_S: '3',
  DELIVERY_POLL_S: '1',
};

async function engine(url: string): Promise<EngineProcess> {
  const p = await spawnEngine({ ...ENV, DATABASE_URL: url });
  cleanups.push(p.kill);
  await p.ready();
  return p;
}

async function seed(p: EngineProcess, rx: Receiver) {
  const post = async (path: string, body: object) => {
    const res = await fetch(`${p.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (res.status !== 201) throw new Error(`${path} -> ${res.status} ${await res.text()}`);
    return (await res.json()) as { id: string; secret: string };
  };
  const advertiser = await post('/v1/advertisers', { name: 'A', ipAllowlist: [], auth: ['hmac'] });
  const publisher = await post('/v1/publishers', { name: 'P', postbackUrl: `${rx.url}/pb?c={clickid}`, method: 'POST' });
  const offer = await post('/v1/offers', { advertiserId: advertiser.id, name: 'O', url: 'https://adv.example/?c={clickid}', payout: '1.00', currency: 'USD' });
  rx.secret = publisher.secret;
  return { advertiserId: advertiser.id, offerId: offer.id, publisherId: publisher.id };
}

async function waitAllDelivered(sql: Sql, total: number, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from deliveries where state = 'delivered'`;
    if (row?.n === total) return;
    if (Date.now() > deadline) throw new Error(`${row?.n} of ${total} delivered after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function setupDb() {
  const db = await freshDatabase();
  cleanups.push(db.drop);
  return db;
}

async function receiver(delayMs: number) {
  const rx = await startReceiver(() => ({ status: 200, delayMs }));
  cleanups.push(rx.close);
  return rx;
}

describe('crash safety', () => {
  it('kill -9 with deliveries in flight, restart: every conversion delivered, duplicates share their webhook-id, no lease left', async () => {
    const db = await setupDb();
    const rx = await receiver(100);
    const first = await engine(db.url);
    const ids = await seed(first, rx);
    const total = 160;
    const { conversionIds, deliveryIds } = await insertConversionsWithDeliveries(db.sql, ids, total, { refireWindowS: 600 });

    await rx.waitFor((r) => r.length >= 40);
    first.child.kill('SIGKILL');
    await first.exited;
    const [claimed] = await db.sql<{ n: number }[]>`select count(*)::int as n from deliveries where state <> 'delivered' and leased_by is not null`;
    expect(claimed?.n).toBeGreaterThan(0); // the kill really did catch deliveries mid-flight

    const second = await engine(db.url);
    await waitAllDelivered(db.sql, total);

    const rows = await db.sql`select id, conversion_id, lease_until, leased_by from deliveries`;
    expect(rows.every((r) => r.lease_until === null && r.leased_by === null)).toBe(true);
    const webhookIdOf = new Map(rows.map((r) => [r.conversion_id as string, r.id as string]));
    expect(new Set(rx.received.map((r) => r.webhookId))).toEqual(new Set(deliveryIds));
    const idsPerConversion = new Map<string, Set<string>>();
    for (const r of rx.received) {
      expect(r.signatureError).toBeUndefined();
      const conversionId = JSON.parse(r.body).conversion_id as string;
      expect(r.webhookId).toBe(webhookIdOf.get(conversionId));
      idsPerConversion.set(conversionId, (idsPerConversion.get(conversionId) ?? new Set()).add(r.webhookId));
    }
    expect([...idsPerConversion.keys()].sort()).toEqual([...conversionIds].sort());
    expect([...idsPerConversion.values()].every((s) => s.size === 1)).toBe(true);
    console.info(`crash test: ${rx.received.length - total} duplicate sends after kill -9, ${claimed?.n} claims taken over`);
    second.kill();
  });

  it('two engine processes share the queue and send nothing twice', async () => {
    const db = await setupDb();
    const rx = await receiver(0);
    const [a, b] = [await engine(db.url), await engine(db.url)];
    const ids = await seed(a, rx);
    const total = 300;
    const { deliveryIds } = await insertConversionsWithDeliveries(db.sql, ids, total, { refireWindowS: 600 });
    await waitAllDelivered(db.sql, total);

    expect(rx.received).toHaveLength(total);
    expect(new Set(rx.received.map((r) => r.webhookId))).toEqual(new Set(deliveryIds));
    const [attempts] = await db.sql<{ n: number }[]>`select count(*)::int as n from delivery_attempts`;
    expect(attempts?.n).toBe(total);
    const delivered = async (p: EngineProcess) => {
      const text = await (await fetch(`${p.url}/metrics`)).text();
      return Number(/^postback_engine_delivery_attempts_total\{result="delivered"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    };
    const [na, nb] = [await delivered(a), await delivered(b)];
    expect(na + nb).toBe(total);
    expect(na).toBeGreaterThan(0);
    expect(nb).toBeGreaterThan(0);
  });
});
