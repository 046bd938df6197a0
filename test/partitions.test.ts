import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { connect } from '../src/db/database.js';
import { maintainPartitions, partitionedTables, trimmedTables, trimTables, utcDay } from '../src/db/partitions.js';
import { createdRangeOfId, newTimedId, timeOfId } from '../src/ids.js';
import { expectApiError, startSecondNode, type SecondNode } from './helpers/admin.js';
import { freshDatabase, type TestDatabase } from './helpers/db.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { mintClick, signedGetUrl } from './helpers/postback.js';
import { insertConversion } from './helpers/reconcile.js';

/**
 * Day partitions of conversions, their history and deliveries (sql/000086): a txid is unique across
 * partitions, IDs name their partition, and retention drops old days without holding up intake.
 * Every engine here runs on an injected clock; no time is read from the real one.
 */

const secondsOf = (at: Date) => Math.floor(at.getTime() / 1000);

describe('IDs that carry their creation time', () => {
  it('round-trips the millisecond, stays opaque, URL-safe and short, and an older random ID has no time', () => {
    const at = new Date('2031-01-01T00:00:00.007Z');
    const id = newTimedId('cv', at);
    expect(id).toMatch(/^cv_[A-Za-z0-9_-]{24}$/);
    expect(id.length).toBeLessThanOrEqual(64);
    expect(timeOfId(id)).toEqual(at);
    expect(createdRangeOfId(id)).toEqual(['2031-01-01T00:00:00.007Z', '2031-01-01T00:00:00.008Z']);
    expect(newTimedId('cv', at)).not.toBe(id);
    expect(timeOfId('cv_AAAAAAAAAAAAAAAAAAAAAA')).toBeUndefined();
    expect(timeOfId('cv_does_not_exist')).toBeUndefined();
  });
});

describe('retention settings', () => {
  it('keeps conversions and deliveries 400 days and the attempt logs 35 by default, each family settable', () => {
    expect(loadConfig({}).retentionDays).toEqual({ clicks: 90, conversions: 400, deliveries: 400, attemptLogs: 35 });
    const set = loadConfig({ CLICK_RETENTION_DAYS: '30', CONVERSION_RETENTION_DAYS: '800', DELIVERY_RETENTION_DAYS: '500', ATTEMPT_LOG_RETENTION_DAYS: '7' });
    expect(set.retentionDays).toEqual({ clicks: 30, conversions: 800, deliveries: 500, attemptLogs: 7 });
  });

  it('refuses a retention that would drop what is still being written or delivered', () => {
    expect(() => loadConfig({ ATTEMPT_LOG_RETENTION_DAYS: '1' })).toThrow(ConfigError);
    expect(() => loadConfig({ CLICK_RETENTION_DAYS: 'ninety' })).toThrow(/CLICK_RETENTION_DAYS must be a whole number/);
    // Deliveries kept 3 days cannot serve a refire window of 4 days.
    expect(() => loadConfig({ DELIVERY_RETENTION_DAYS: '3', REFIRE_WINDOW_S: String(4 * 86_400) })).toThrow(/longer than REFIRE_WINDOW_S/);
    expect(() => loadConfig({ CONVERSION_RETENTION_DAYS: '3', REFIRE_WINDOW_S: String(3 * 86_400) })).toThrow(/longer than REFIRE_WINDOW_S/);
  });
});

describe('a txid repeated across a UTC day boundary', () => {
  // Two nodes over one database on one clock: the repeats go to the second node, whose result cache
  // has never seen the txid, so only the database (conversion_txids) can recognise it.
  let clock = new Date('2030-06-30T23:59:59.250Z');
  const now = () => clock;
  let a: TestEngine;
  let b: SecondNode;
  let ids: { advertiserId: string; offerId: string; publisherId: string; whsec: string };

  beforeAll(async () => {
    a = await startTestEngine({}, { now });
    const seeded = await seedCatalog(a.app);
    ids = { advertiserId: seeded.advertiser.id, offerId: seeded.offer.id, publisherId: seeded.publisher.id, whsec: seeded.advertiser.secrets[0].secret };
    b = await startSecondNode(a.url, {}, { now });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  const send = (app: TestEngine['app'], query: string) =>
    app.inject({ method: 'GET', url: signedGetUrl(ids.advertiserId, query, ids.whsec, secondsOf(clock)), remoteAddress: '203.0.113.9' });
  const partitionOf = async (table: string, where: string, value: string) =>
    (await a.sql.unsafe(`select tableoid::regclass::text as p from ${table} where ${where} = $1 order by 1`, [value])).map((r) => r.p as string);

  it('is a duplicate of the conversion made before midnight, a status change updates it, and a conflicting repeat is 409', async () => {
    const clickid = await mintClick(a.app, ids.offerId, ids.publisherId);
    const txid = 'order-2030-06-30-last';
    clock = new Date('2030-06-30T23:59:59.900Z');
    const first = await send(a.app, `clickid=${clickid}&txid=${txid}&status=pending`);
    expect(first.statusCode, first.body).toBe(200);
    const conversionId = first.json().conversionId as string;
    expect(first.json()).toMatchObject({ duplicate: false, status: 'pending' });
    expect(timeOfId(conversionId)).toEqual(clock);
    expect(await partitionOf('conversions', 'id', conversionId)).toEqual(['conversions_20300630']);

    clock = new Date('2030-07-01T00:00:00.100Z');
    const repeat = await send(b.app, `clickid=${clickid}&txid=${txid}&status=pending`);
    expect(repeat.statusCode, repeat.body).toBe(200);
    expect(repeat.json()).toMatchObject({ conversionId, duplicate: true, status: 'pending' });

    const approved = await send(b.app, `clickid=${clickid}&txid=${txid}&status=approved`);
    expect(approved.statusCode, approved.body).toBe(200);
    expect(approved.json()).toMatchObject({ conversionId, duplicate: false, status: 'approved' });

    const before = await a.sql`select id, status, payout_minor, created_at from conversions where txid = ${txid}`;
    const conflict = await send(b.app, `clickid=${clickid}&txid=${txid}&status=approved&payout=9.99`);
    expectApiError(conflict, 409, 'conflict');
    expect(conflict.json().error.conversionId).toBe(conversionId);

    // One conversion, still in the day it was made, holding the change; its history spans both days.
    expect(await a.sql`select id, status, payout_minor, created_at from conversions where txid = ${txid}`).toEqual(before);
    expect(before).toEqual([{ id: conversionId, status: 'approved', payout_minor: 250n, created_at: new Date('2030-06-30T23:59:59.900Z') }]);
    expect(await partitionOf('conversions', 'id', conversionId)).toEqual(['conversions_20300630']);
    expect(await a.sql`select conversion_id, created_at from conversion_txids where advertiser_id = ${ids.advertiserId} and txid = ${txid}`).toEqual([
      { conversion_id: conversionId, created_at: new Date('2030-06-30T23:59:59.900Z') },
    ]);
    const history = await a.sql`
      select from_status, to_status, created_at, tableoid::regclass::text as p from conversion_status_history
      where conversion_id = ${conversionId} order by id`;
    expect(history).toEqual([
      { from_status: null, to_status: 'pending', created_at: new Date('2030-06-30T23:59:59.900Z'), p: 'conversion_status_history_20300630' },
      { from_status: 'pending', to_status: 'approved', created_at: new Date('2030-07-01T00:00:00.100Z'), p: 'conversion_status_history_20300701' },
    ]);

    // Either node finds it by ID, history included.
    const detail = await b.app.inject({ url: `/v1/conversions/${conversionId}`, headers: auth() });
    expect(detail.statusCode, detail.body).toBe(200);
    expect(detail.json().statusHistory.map((h: { from: string | null; to: string }) => [h.from, h.to])).toEqual([
      [null, 'pending'],
      ['pending', 'approved'],
    ]);
  });

  it('the conversions list finds a txid through its key, with or without the advertiser', async () => {
    const [row] = await a.sql<{ id: string }[]>`select id from conversions where txid = 'order-2030-06-30-last'`;
    for (const query of [`txid=order-2030-06-30-last&advertiserId=${ids.advertiserId}`, 'txid=order-2030-06-30-last']) {
      const list = await b.app.inject({ url: `/v1/conversions?${query}`, headers: auth() });
      expect(list.statusCode, list.body).toBe(200);
      expect(list.json().items.map((c: { id: string }) => c.id)).toEqual([row?.id]);
    }
    const other = await b.app.inject({ url: '/v1/conversions?txid=order-2030-06-30-last&advertiserId=adv_someone_else', headers: auth() });
    expect(other.json().items).toEqual([]);
  });

  it('a lookup by a new ID reads one day partition; an ID of the older shape probes every one', async () => {
    const [row] = await a.sql<{ id: string }[]>`select id from conversions where txid = 'order-2030-06-30-last'`;
    const scanned = async (id: string) => {
      const [from, to] = createdRangeOfId(id);
      const plan = await a.sql.unsafe('explain (costs off) select * from conversions where id = $1 and created_at >= $2::timestamptz and created_at < $3::timestamptz', [id, from, to]);
      return plan.map((line) => /on (conversions_\w+)/.exec(String(line['QUERY PLAN']))?.[1]).filter((name) => name !== undefined);
    };
    expect(await scanned(row?.id as string)).toEqual(['conversions_20300630']);
    const everyPartition = await a.sql<{ n: number }[]>`select count(*)::int as n from pg_inherits where inhparent = 'conversions'::regclass`;
    expect((await scanned('cv_OLDshape000001')).length).toBe(everyPartition[0]?.n);
  });

  it('a first postback just after midnight lands in the new day, and its repeat on the other node is a duplicate', async () => {
    const clickid = await mintClick(a.app, ids.offerId, ids.publisherId);
    clock = new Date('2030-07-01T00:00:00.300Z');
    const txid = 'order-2030-07-01-first';
    const first = await send(b.app, `clickid=${clickid}&txid=${txid}`);
    expect(first.statusCode, first.body).toBe(200);
    const again = await send(a.app, `clickid=${clickid}&txid=${txid}`);
    expect(again.json()).toMatchObject({ conversionId: first.json().conversionId, duplicate: true });
    expect(await partitionOf('conversions', 'txid', txid)).toEqual(['conversions_20300701']);
  });
});

describe('retention while a long report reads the conversions', () => {
  const NOW = new Date('2031-03-10T12:00:00.000Z');
  const days = { clicks: 90, conversions: 400, deliveries: 400, attemptLogs: 35 };
  const oldDay = utcDay(NOW, -500);
  let t: TestEngine;
  let ids: { advertiserId: string; offerId: string; publisherId: string; whsec: string };

  beforeAll(async () => {
    t = await startTestEngine({}, { now: () => NOW });
    const seeded = await seedCatalog(t.app);
    ids = { advertiserId: seeded.advertiser.id, offerId: seeded.offer.id, publisherId: seeded.publisher.id, whsec: seeded.advertiser.secrets[0].secret };
  });
  afterAll(async () => t?.close());

  it('drops the expired day once the report is done, while postbacks keep committing during it', async () => {
    await t.sql`select ensure_partitions('conversions', ${oldDay}::date, ${oldDay}::date)`;
    const expired = await insertConversion(t.sql, { ...ids, txid: 'long-ago', payoutMinor: 100n, currency: 'USD', createdAt: new Date(`${oldDay}T10:00:00Z`) });
    // Days without a partition of their own: their rows wait in the default partition.
    const kept = await insertConversion(t.sql, { ...ids, txid: 'last-month', payoutMinor: 100n, currency: 'USD', createdAt: new Date(NOW.getTime() - 30 * 86_400_000) });
    const stray = await insertConversion(t.sql, { ...ids, txid: 'stray-long-ago', payoutMinor: 100n, currency: 'USD', createdAt: new Date(`${utcDay(NOW, -600)}T00:00:00Z`) });
    expect(await t.sql`select id, tableoid::regclass::text as p from conversions where id in (${kept}, ${stray}) order by created_at`).toEqual([
      { id: stray, p: 'conversions_default' },
      { id: kept, p: 'conversions_default' },
    ]);

    // A finance report: a repeatable-read transaction that has read the table and is still open.
    const reportPool = connect(t.url, { max: 1 });
    const report = await reportPool.reserve();
    let retention: Promise<Awaited<ReturnType<typeof maintainPartitions>>> | undefined;
    try {
      await report`begin isolation level repeatable read`;
      await report`select count(*) from conversions`;

      let settled = false;
      retention = maintainPartitions(t.sql, partitionedTables(days), NOW, { lockTimeoutMs: 50, retryDelayMs: 20, dropTries: 2000 });
      void retention.finally(() => {
        settled = true;
      });

      const clickid = await mintClick(t.app, ids.offerId, ids.publisherId);
      const txids = Array.from({ length: 12 }, (_, i) => `during-report-${i}`);
      for (const txid of txids) {
        const res = await t.app.inject({
          method: 'GET',
          url: signedGetUrl(ids.advertiserId, `clickid=${clickid}&txid=${txid}`, ids.whsec, secondsOf(NOW)),
          remoteAddress: '203.0.113.9',
        });
        expect(res.statusCode, res.body).toBe(200);
      }
      const [committed] = await t.sql`select count(*)::int as n from conversions where txid = any(${txids}::text[])`;
      expect(committed?.n).toBe(txids.length);
      // The drop is still waiting for the report: it has blocked nothing while it waited.
      expect(settled).toBe(false);
      expect((await t.sql`select to_regclass(${`conversions_${oldDay.replaceAll('-', '')}`}) as p`)[0]?.p).not.toBeNull();
    } finally {
      await report`commit`;
      report.release();
      await reportPool.end({ timeout: 1 });
    }

    const result = await retention;
    expect(result?.dropped).toContain(`conversions_${oldDay.replaceAll('-', '')}`);
    expect(result?.deferred).toEqual([]);
    expect((await t.sql`select to_regclass(${`conversions_${oldDay.replaceAll('-', '')}`}) as p`)[0]?.p).toBeNull();
    expect(await t.sql`select id from conversions where id = ${expired}`).toEqual([]);
    expect(await t.sql`select id from conversions where id = ${stray}`).toEqual([]);
    expect(await t.sql`select txid from conversion_txids where txid in ('long-ago', 'stray-long-ago')`).toEqual([]);
    expect(result?.deleted).toBe(3);
    // Nothing else lost: the conversion inside the retention and everything written during the report.
    expect((await t.sql`select id from conversions where id = ${kept}`).length).toBe(1);
    const [after] = await t.sql`select count(*)::int as n from conversions where txid like 'during-report-%'`;
    expect(after?.n).toBe(12);
    const [txidsLeft] = await t.sql`select count(*)::int as n from conversion_txids where txid like 'during-report-%' or txid = 'last-month'`;
    expect(txidsLeft?.n).toBe(13);
  });

  it('makes the coming days ahead for every partitioned table, and a second run changes nothing', async () => {
    const first = await maintainPartitions(t.sql, partitionedTables(days), NOW, { lockTimeoutMs: 50 });
    expect(first).toEqual({ created: 0, dropped: [], deferred: [], deleted: 0 });
    for (const table of ['clicks', 'conversions', 'conversion_status_history', 'postback_attempts', 'deliveries', 'delivery_attempts']) {
      const names = await t.sql<{ name: string }[]>`
        select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
        where p.relname = ${table} and c.relname >= ${`${table}_20310309`} and c.relname <= ${`${table}_20310324`} order by 1`;
      expect(names.map((n) => n.name)).toEqual(Array.from({ length: 16 }, (_, i) => `${table}_${utcDay(NOW, i - 1).replaceAll('-', '')}`));
    }
    // Tables updated in place keep free room on every page, new partitions included (000080, 000087).
    const storage = await t.sql`select relname, reloptions from pg_class where relname in ('deliveries_20310324', 'conversions_20310324', 'clicks_20310324') order by 1`;
    expect(storage).toEqual([
      { relname: 'clicks_20310324', reloptions: null },
      { relname: 'conversions_20310324', reloptions: ['fillfactor=90'] },
      { relname: 'deliveries_20310324', reloptions: ['fillfactor=50'] },
    ]);
  });
});

describe('retention of the unpartitioned traffic tables', () => {
  const NOW = new Date('2031-03-10T12:00:00Z');
  const days = { clicks: 90, conversions: 400, deliveries: 400, attemptLogs: 35 };
  const daysAgo = (n: number) => new Date(NOW.getTime() - n * 86_400_000);
  let db: TestDatabase;

  beforeAll(async () => {
    db = await freshDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('deletes pixels past the conversions retention, message IDs and 429 counts past the attempt logs, and keeps the rest', async () => {
    const pixel = (txid: string, at: Date) => db.sql`
      insert into pixel_events (click_id, click_created_at, advertiser_id, offer_id, publisher_id, event, txid, created_at)
      values ('clk', ${at}, 'adv', 'off', 'pub', 'conversion', ${txid}, ${at})`;
    await pixel('older-than-retention', daysAgo(402));
    await pixel('inside-retention', daysAgo(398));
    const message = (id: string, at: Date) => db.sql`
      insert into message_ids (advertiser_id, kind, message_id, content_hash, txid, created_at)
      values ('adv', 'webhook', ${id}, '\\x00', 'tx', ${at})`;
    await message('msg-old', daysAgo(37));
    await message('msg-kept', daysAgo(33));
    const limited = (at: Date) => db.sql`insert into postback_rate_limited (advertiser_id, minute, count) values ('adv', ${at}, 5)`;
    await limited(daysAgo(37));
    await limited(daysAgo(33));

    // Batches smaller than the rows to delete: the batches continue until nothing old is left.
    const deleted = await trimTables(db.sql, trimmedTables(days), NOW, { deleteBatch: 1 });
    expect(deleted).toBe(3);
    expect((await db.sql`select txid from pixel_events`).map((r) => r.txid)).toEqual(['inside-retention']);
    expect((await db.sql`select message_id from message_ids`).map((r) => r.message_id)).toEqual(['msg-kept']);
    expect((await db.sql`select minute from postback_rate_limited`).map((r) => (r.minute as Date).toISOString())).toEqual([daysAgo(33).toISOString()]);
    expect(await trimTables(db.sql, trimmedTables(days), NOW)).toBe(0);
  });
});
