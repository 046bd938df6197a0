import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../src/app.js';
import { mintClickId } from '../src/click/click-id.js';
import { testConfig } from '../src/config.js';
import type { Sql } from '../src/db/database.js';
import { loadMigrations, migrate } from '../src/db/migrate.js';
import { createEngine, type Engine } from '../src/engine.js';
import { createLogger } from '../src/logger.js';
import { emptyDatabase, type TestDatabase } from './helpers/db.js';
import { ADMIN, auth } from './helpers/engine.js';
import { signedGetUrl } from './helpers/postback.js';

/**
 * sql/000086 turns populated tables into partitioned ones. A database is migrated to just before it,
 * filled through the old schema (old-shape IDs, a status change, deliveries with attempts, a review,
 * refused postbacks), migrated to the end, and then every row and every API answer is checked.
 */

const FIRST_PARTITIONED = 85;
const NOW = new Date('2029-05-03T12:00:00.000Z');
const DAY1 = new Date('2029-05-01T09:30:00.123Z');
const DAY2 = new Date('2029-05-02T18:45:10.456Z');

async function migrateBefore(sql: Sql, last: number): Promise<void> {
  await sql`create table schema_migrations (id integer primary key, name text not null, applied_at timestamptz not null default now())`;
  for (const m of (await loadMigrations()).filter((x) => x.id < last)) {
    await sql.begin(async (tx) => {
      await tx`insert into schema_migrations (id, name) values (${m.id}, ${m.name})`;
      await tx.unsafe(m.text);
    });
  }
}

type Seeded = { advertiserId: string; whsec: string; clickId: string; approvedId: string; pendingId: string; otherId: string; deliveryId: string };

/** Rows as the engine wrote them before 000086: IDs without a time, defaults of the old columns. */
async function seedOldSchema(sql: Sql): Promise<Seeded> {
  const secret = randomBytes(32);
  const clickKey = randomBytes(32);
  await sql`insert into click_keys (kid, secret) values (1, ${clickKey})`;
  const [adv] = await sql`insert into advertisers (id, name, auth, rate_limit_per_s) values ('adv_old', 'Old Adv', '{hmac}', 1000) returning seq`;
  await sql`insert into advertiser_secrets (id, advertiser_id, secret) values ('sec_old', 'adv_old', ${secret})`;
  const [pub] = await sql`insert into publishers (id, name, postback_url, method, secret)
    values ('pub_old', 'Old Pub', 'https://pub.example/pb?c={clickid}', 'GET', ${randomBytes(32)}) returning seq`;
  const [off] = await sql`insert into offers (id, advertiser_id, name, url, payout_minor, revenue_minor, currency, click_ttl_s, fraud)
    values ('off_old', 'adv_old', 'Old Offer', 'https://adv.example/?cid={clickid}', 250, 400, 'USD', 2592000,
            ${sql.json({ rules: { ctit_too_short: { mode: 'off' }, bot_user_agent: { mode: 'off' }, multiple_conversions_per_click: { mode: 'off' }, ip_burst: { mode: 'off' } } })})
    returning seq`;
  const clickAt = new Date(DAY1.getTime() - 60_000);
  const clickId = mintClickId({ kid: 1, secret: clickKey }, { advertiserSeq: adv?.seq, offerSeq: off?.seq, publisherSeq: pub?.seq }, clickAt);
  const conversion = (id: string, txid: string, status: string, at: Date) => sql`
    insert into conversions (id, advertiser_id, offer_id, publisher_id, click_id, click_created_at, txid, event, status, sub1,
      payout_minor, revenue_minor, currency, decision, score, reasons, evidence, source, user_ip, created_at, updated_at)
    values (${id}, 'adv_old', 'off_old', 'pub_old', ${clickId}, ${clickAt}, ${txid}, 'conversion', ${status}, 'sub-a',
      250, 400, 'USD', 'accepted', 5, '{}', '[]', 's2s', '198.51.100.7', ${at}, ${at})`;
  const approvedId = 'cv_OLDapproved0001';
  const pendingId = 'cv_OLDpending00002';
  const otherId = 'cv_OLDother0000003';
  await conversion(approvedId, 'old-tx-1', 'approved', DAY1);
  await conversion(pendingId, 'old-tx-2', 'pending', DAY2);
  await conversion(otherId, 'old-tx-3', 'approved', DAY2);
  await sql`insert into conversion_status_history (conversion_id, from_status, to_status, payout_minor, currency, source, created_at) values
    (${approvedId}, null, 'pending', 250, 'USD', 's2s', ${DAY1}),
    (${approvedId}, 'pending', 'approved', 250, 'USD', 's2s', ${DAY2}),
    (${pendingId}, null, 'pending', 250, 'USD', 's2s', ${DAY2}),
    (${otherId}, null, 'approved', 250, 'USD', 's2s', ${DAY2})`;
  const deliveryId = 'dlv_OLDdelivery001';
  await sql`insert into deliveries (id, conversion_id, publisher_id, state, attempts, next_attempt_at, deadline_at, last_status_code,
      created_at, delivered_at, updated_at, status, sequence) values
    (${deliveryId}, ${approvedId}, 'pub_old', 'delivered', 2, ${DAY1}, ${new Date(DAY1.getTime() + 259_200_000)}, 200, ${DAY1}, ${DAY1}, ${DAY1}, 'approved', 0),
    ('dlv_OLDdelivery002', ${otherId}, 'pub_old', 'expired', 0, ${DAY2}, ${new Date(DAY2.getTime() + 259_200_000)}, null, ${DAY2}, null, ${DAY2}, 'approved', 0)`;
  await sql`insert into delivery_attempts (delivery_id, attempted_at, status_code, latency_ms, error, replay) values
    (${deliveryId}, ${new Date(DAY1.getTime() + 1000)}, 500, 12, 'HTTP 500', false),
    (${deliveryId}, ${new Date(DAY1.getTime() + 11_000)}, 200, 9, null, false)`;
  await sql`insert into reviews (conversion_id, decision, note, reviewer_token_id, reviewer_name, created_at)
    values (${otherId}, 'approve', 'checked by phone', 'tok_x', 'analyst', ${DAY2})`;
  await sql`insert into postback_attempts (advertiser_id, received_at, source_ip, http_status, error_code, reason, click_id, txid) values
    ('adv_old', ${DAY1}, '203.0.113.1', 401, 'bad_signature', null, ${clickId}, 'old-tx-9'),
    (null, ${DAY2}, '203.0.113.2', 404, 'unknown_advertiser', null, null, null)`;
  return { advertiserId: 'adv_old', whsec: `whsec_${secret.toString('base64')}`, clickId, approvedId, pendingId, otherId, deliveryId };
}

const CONVERSION_COLUMNS = 'id, advertiser_id, offer_id, publisher_id, click_id, click_created_at, txid, event, status, sub1, payout_minor, revenue_minor, currency, decision, score, source, host(user_ip) as user_ip, review_state, created_at, updated_at';

describe('migrating populated tables to day partitions (000086)', () => {
  let db: TestDatabase;
  let seeded: Seeded;
  let before: Record<string, Record<string, unknown>[]>;
  let engine: Engine;
  let app: Awaited<ReturnType<typeof buildApp>>;

  beforeAll(async () => {
    db = await emptyDatabase();
    await migrateBefore(db.sql, FIRST_PARTITIONED);
    seeded = await seedOldSchema(db.sql);
    before = {
      conversions: [...(await db.sql.unsafe(`select ${CONVERSION_COLUMNS} from conversions order by id`))],
      history: [...(await db.sql`select id, conversion_id, from_status, to_status, payout_minor, currency, source, created_at from conversion_status_history order by id`)],
      deliveries: [...(await db.sql`select id, conversion_id, publisher_id, state, attempts, deadline_at, last_status_code, created_at, delivered_at, status, sequence from deliveries order by id`)],
      attempts: [...(await db.sql`select id, delivery_id, attempted_at, status_code, latency_ms, error, replay from delivery_attempts order by id`)],
      refused: [...(await db.sql`select id, advertiser_id, received_at, http_status, error_code, click_id, txid from postback_attempts order by id`)],
      reviews: [...(await db.sql`select * from reviews order by id`)],
    };
    const applied = await migrate(db.sql);
    expect(applied[0]).toBe(FIRST_PARTITIONED);
    engine = await createEngine(testConfig({ adminToken: ADMIN, databaseUrl: db.url }), db.sql, createLogger('silent'), { now: () => NOW });
    app = await buildApp(engine);
    await app.ready();
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await engine?.close();
    await db?.drop();
  });

  it('keeps every row, each in the partition of its day, with the columns the new keys need', async () => {
    expect([...(await db.sql.unsafe(`select ${CONVERSION_COLUMNS} from conversions order by id`))]).toEqual(before.conversions);
    expect(await db.sql`select tableoid::regclass::text as p, count(*)::int as n from conversions group by 1 order by 1`).toEqual([
      { p: 'conversions_20290501', n: 1 },
      { p: 'conversions_20290502', n: 2 },
    ]);
    expect(await db.sql`select advertiser_id, txid, conversion_id, created_at from conversion_txids order by txid`).toEqual(
      (before.conversions as { advertiser_id: string; txid: string; id: string; created_at: Date }[]).map((c) => ({
        advertiser_id: c.advertiser_id, txid: c.txid, conversion_id: c.id, created_at: c.created_at,
      })).sort((x, y) => (x.txid < y.txid ? -1 : 1)),
    );
    expect([...(await db.sql`select id, conversion_id, from_status, to_status, payout_minor, currency, source, created_at from conversion_status_history order by id`)]).toEqual(before.history);
    expect((await db.sql`select distinct advertiser_id from conversion_status_history`).map((r) => r.advertiser_id)).toEqual(['adv_old']);
    expect([...(await db.sql`select id, conversion_id, publisher_id, state, attempts, deadline_at, last_status_code, created_at, delivered_at, status, sequence from deliveries order by id`)]).toEqual(before.deliveries);
    expect(await db.sql`select id, conversion_created_at from deliveries order by id`).toEqual([
      { id: seeded.deliveryId, conversion_created_at: DAY1 },
      { id: 'dlv_OLDdelivery002', conversion_created_at: DAY2 },
    ]);
    expect([...(await db.sql`select id, delivery_id, attempted_at, status_code, latency_ms, error, replay from delivery_attempts order by id`)]).toEqual(before.attempts);
    expect((await db.sql`select distinct publisher_id from delivery_attempts`).map((r) => r.publisher_id)).toEqual(['pub_old']);
    // The unknown advertiser's refusal keeps no advertiser: '' in the column, null in the API (below).
    expect([...(await db.sql`select id, nullif(advertiser_id, '') as advertiser_id, received_at, http_status, error_code, click_id, txid from postback_attempts order by id`)]).toEqual(before.refused);
    expect([...(await db.sql`select * from reviews order by id`)]).toEqual(before.reviews);
    for (const table of ['conversions', 'conversion_status_history', 'deliveries', 'delivery_attempts', 'postback_attempts']) {
      expect((await db.sql`select count(*)::int as n from ${db.sql(`${table}_default`)}`)[0]?.n, table).toBe(0);
    }
    // Later rows continue the numbering (history and attempts are read in id order).
    const [next] = await db.sql`select nextval('conversion_status_history_id_seq')::int as n`;
    expect(next?.n).toBe(Math.max(...(before.history ?? []).map((h) => Number(h.id))) + 1);
  });

  it('answers the API for conversions and deliveries with IDs issued before the migration', async () => {
    const detail = await app.inject({ url: `/v1/conversions/${seeded.approvedId}`, headers: auth() });
    expect(detail.statusCode, detail.body).toBe(200);
    const body = detail.json();
    expect(body).toMatchObject({ id: seeded.approvedId, txid: 'old-tx-1', status: 'approved', payout: '2.50', createdAt: DAY1.toISOString() });
    expect(body.statusHistory.map((h: { from: string | null; to: string }) => [h.from, h.to])).toEqual([[null, 'pending'], ['pending', 'approved']]);
    expect(body.deliveries).toHaveLength(1);
    expect(body.deliveries[0]).toMatchObject({ id: seeded.deliveryId, state: 'delivered' });
    expect(body.deliveries[0].attempts.map((a: { statusCode: number }) => a.statusCode)).toEqual([500, 200]);

    const reviewed = await app.inject({ url: `/v1/conversions/${seeded.otherId}`, headers: auth() });
    expect(reviewed.json().reviews).toMatchObject([{ decision: 'approve', note: 'checked by phone' }]);

    const list = await app.inject({ url: '/v1/conversions?advertiserId=adv_old', headers: auth() });
    // Newest first, ties by id descending.
    expect(list.json().items.map((c: { id: string }) => c.id)).toEqual([seeded.pendingId, seeded.otherId, seeded.approvedId]);

    const delivery = await app.inject({ url: `/v1/deliveries/${seeded.deliveryId}`, headers: auth() });
    expect(delivery.statusCode, delivery.body).toBe(200);
    expect(delivery.json()).toMatchObject({ id: seeded.deliveryId, conversionId: seeded.approvedId, state: 'delivered', attemptCount: 2 });
    const expired = await app.inject({ url: '/v1/deliveries?state=expired', headers: auth() });
    expect(expired.json().items.map((d: { id: string }) => d.id)).toEqual(['dlv_OLDdelivery002']);

    const refused = await app.inject({ url: '/v1/postback-attempts', headers: auth() });
    expect(refused.json().items.map((a: { advertiserId: string | null; code: string }) => [a.advertiserId, a.code])).toEqual([
      [null, 'unknown_advertiser'],
      ['adv_old', 'bad_signature'],
    ]);
  });

  it('meets the old txids: a repeat is a duplicate of the old conversion, a status change updates it, a review locks it', async () => {
    const send = (query: string) =>
      app.inject({ method: 'GET', url: signedGetUrl(seeded.advertiserId, query, seeded.whsec, Math.floor(NOW.getTime() / 1000)), remoteAddress: '203.0.113.9' });
    const repeat = await send(`clickid=${seeded.clickId}&txid=old-tx-1`);
    expect(repeat.statusCode, repeat.body).toBe(200);
    expect(repeat.json()).toMatchObject({ conversionId: seeded.approvedId, duplicate: true });

    const change = await send(`clickid=${seeded.clickId}&txid=old-tx-2&status=approved`);
    expect(change.statusCode, change.body).toBe(200);
    expect(change.json()).toMatchObject({ conversionId: seeded.pendingId, duplicate: false, status: 'approved' });
    expect(await db.sql`select count(*)::int as n from conversions where txid = 'old-tx-2'`).toEqual([{ n: 1 }]);
    const history = await db.sql`select from_status, to_status, created_at from conversion_status_history where conversion_id = ${seeded.pendingId} order by id`;
    expect(history).toEqual([
      { from_status: null, to_status: 'pending', created_at: DAY2 },
      { from_status: 'pending', to_status: 'approved', created_at: NOW },
    ]);

    const review = await app.inject({ method: 'POST', url: `/v1/conversions/${seeded.approvedId}/review`, headers: auth(), payload: { decision: 'reject', note: 'chargeback risk' } });
    expect(review.statusCode, review.body).toBe(201);
    expect(await db.sql`select decision, review_state from conversions where id = ${seeded.approvedId}`).toEqual([{ decision: 'rejected', review_state: 'rejected' }]);

    const fresh = await send(`clickid=${seeded.clickId}&txid=new-after-migration`);
    expect(fresh.statusCode, fresh.body).toBe(200);
    expect(fresh.json().conversionId).toMatch(/^cv_[A-Za-z0-9_-]{24}$/);
    expect(await db.sql`select tableoid::regclass::text as p from conversions where txid = 'new-after-migration'`).toEqual([{ p: 'conversions_20290503' }]);
  });
});
