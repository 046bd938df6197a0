import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ClickBatchStore,
  COPY_UNCONFIRMED,
  findClick,
  findClicks,
  insertClicksIdempotently,
  isUnconfirmedCopy,
  maintainClickPartitions,
  type ClickRow,
} from '../src/click/click-store.js';
import { BatchWriter } from '../src/db/batch-writer.js';
import { connect, isDatabaseUnavailable, PLANNED_POOL_MAX, type Sql } from '../src/db/database.js';
import { ClickLookup } from '../src/click/click-lookup.js';
import { freshDatabase, type TestDatabase } from './helpers/db.js';

let db: TestDatabase;
/** Batches written as the engine writes them, one at a time. */
let batches: ClickBatchStore;

beforeAll(async () => {
  db = await freshDatabase();
  batches = new ClickBatchStore(db.sql, db.url);
});

afterAll(async () => {
  await batches.close();
  await db.drop();
});

let serial = 0;
function clickRow(overrides: Partial<ClickRow> = {}): ClickRow {
  serial++;
  return {
    id: `click_${serial}_${'x'.repeat(20)}`,
    createdAt: new Date(Date.UTC(2026, 10, 22, 3, 0, serial % 60, serial % 1000)),
    offerId: 'off_1',
    publisherId: 'pub_1',
    advertiserId: 'adv_1',
    subs: ['s1', null, 's3', null, null],
    ip: '203.0.113.7',
    userAgent: 'Mozilla/5.0',
    ...overrides,
  };
}

async function countOf(ids: string[]): Promise<number> {
  const [row] = await db.sql<{ n: number }[]>`select count(*)::int as n from clicks where id = any(${ids})`;
  return row?.n ?? 0;
}

describe('click batch writes (COPY)', () => {
  it('writes every row of a batch with its fields, times to the millisecond, nulls as nulls', async () => {
    const rows = Array.from({ length: 250 }, () => clickRow());
    await batches.write(rows);
    expect(await countOf(rows.map((r) => r.id))).toBe(250);
    const sample = rows[17] as ClickRow;
    const stored = await findClick(db.sql, sample.id, sample.createdAt, sample.advertiserId);
    expect(stored).toEqual({
      id: sample.id,
      createdAt: sample.createdAt,
      advertiserId: sample.advertiserId,
      offerId: 'off_1',
      publisherId: 'pub_1',
      subs: ['s1', null, 's3', null, null],
      ip: '203.0.113.7',
      userAgent: 'Mozilla/5.0',
    });
  });

  it('keeps text that means something to COPY (backslash, tab, newline, \\N, non-ASCII) exactly as sent', async () => {
    const awkward = clickRow({
      subs: ['a\\b', 'tab\there', '\\N', 'ünï😀', 'line\nbreak\r'],
      userAgent: 'UA\twith\\tab and \\N',
      ip: '2001:db8::1',
    });
    const plainNull = clickRow({ subs: [null, null, null, null, null], ip: null, userAgent: null });
    await batches.write([awkward, plainNull]);
    expect((await findClick(db.sql, awkward.id, awkward.createdAt, awkward.advertiserId))?.subs).toEqual(awkward.subs);
    expect((await findClick(db.sql, awkward.id, awkward.createdAt, awkward.advertiserId))?.userAgent).toBe(awkward.userAgent);
    expect((await findClick(db.sql, awkward.id, awkward.createdAt, awkward.advertiserId))?.ip).toBe('2001:db8::1');
    expect(await findClick(db.sql, plainNull.id, plainNull.createdAt, plainNull.advertiserId)).toMatchObject({ subs: [null, null, null, null, null], ip: null, userAgent: null });
  });

  it('a batch retried after a failure (perhaps a lost acknowledgement) writes nothing twice and loses no new row', async () => {
    const batch = Array.from({ length: 40 }, () => clickRow());
    await batches.write(batch);
    // The retry carries the same rows, plus rows that arrived meanwhile (the writer re-queues in front).
    const later = Array.from({ length: 5 }, () => clickRow());
    await batches.write([...batch, ...later], { afterFailure: true });
    expect(await countOf([...batch, ...later].map((r) => r.id))).toBe(45);
  });

  it('a COPY that PostgreSQL refuses is reported as unconfirmed by the deadline, writes none of its rows, and leaves the pool usable', async () => {
    const refusing = new ClickBatchStore(db.sql, db.url, 300);
    const written = clickRow();
    await batches.write([written]);
    const fresh = clickRow();
    const started = Date.now();
    await expect(refusing.write([fresh, written])).rejects.toMatchObject({ code: COPY_UNCONFIRMED });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await countOf([fresh.id])).toBe(0);
    // Every connection of the pool still answers (none is stuck in the refused COPY).
    const answers = await Promise.all(Array.from({ length: 10 }, () => db.sql`select 1 as one`));
    expect(answers.map(([r]) => r?.one)).toEqual(Array(10).fill(1));
    await refusing.close();
  });
});

describe('COPY on a connection of its own', () => {
  it('writes batch after batch while the shared pool is saturated with other queries', async () => {
    const busy = connect(db.url, { max: 2 });
    // The store's shared pool is the saturated one, as the engine's is under load.
    const store = new ClickBatchStore(busy, db.url);
    try {
      const rowBatches = Array.from({ length: 40 }, () => Array.from({ length: 25 }, () => clickRow()));
      let stop = false;
      // Eight readers on two connections: postgres.js pipelines them onto busy connections, which
      // broke a COPY sharing the pool (COPY_IN_PROGRESS, reset connections).
      const readers = Array.from({ length: 8 }, async () => {
        let n = 0;
        while (!stop) {
          await busy`select count(*) from clicks where id = ${`none-${n++}`}`;
        }
        return n;
      });
      for (const batch of rowBatches) await store.write(batch);
      stop = true;
      expect((await Promise.all(readers)).every((n) => n > 0)).toBe(true);
      expect(await countOf(rowBatches.flat().map((r) => r.id))).toBe(1000);
    } finally {
      await store.close();
      await busy.end();
    }
  });

  it('opens a fresh connection after an unconfirmed COPY, so the next batch is not held up', async () => {
    const store = new ClickBatchStore(db.sql, db.url, 300);
    try {
      const written = clickRow();
      await store.write([written]);
      await expect(store.write([clickRow(), written])).rejects.toMatchObject({ code: COPY_UNCONFIRMED });
      // On the same connection this batch would queue behind the COPY postgres.js never settled.
      const next = Array.from({ length: 3 }, () => clickRow());
      await store.write(next);
      expect(await countOf(next.map((r) => r.id))).toBe(3);
    } finally {
      await store.close();
    }
  });
});

describe('the click writer end to end', () => {
  it('recovers from an unconfirmed COPY through the idempotent INSERT, and a bad row costs only itself', async () => {
    const writes: string[] = [];
    const store = new ClickBatchStore(db.sql, db.url, 300);
    const writer = new BatchWriter<ClickRow>({
      name: 'clicks-test',
      maxDelayMs: 60_000, // only the test's flushes write
      write: async (rows, attempt) => {
        writes.push(attempt.afterFailure ? 'insert' : 'copy');
        await store.write(rows, attempt);
      },
      isTransient: (err) => isDatabaseUnavailable(err) || isUnconfirmedCopy(err),
    });
    const already = clickRow();
    await batches.write([already]);
    const good = Array.from({ length: 3 }, () => clickRow());
    const bad = clickRow({ ip: 'not-an-address' });
    for (const row of [good[0], already, good[1], bad, good[2]] as ClickRow[]) writer.add(row);
    // The first flush reports the refused COPY (the rows stay buffered); the retry goes through INSERT.
    await expect(writer.flush()).rejects.toMatchObject({ code: COPY_UNCONFIRMED });
    expect(writer.pending).toBe(5);
    await writer.flush();
    expect(writer.pending).toBe(0);
    expect(await countOf([...good, already].map((r) => r.id))).toBe(4);
    expect(await countOf([bad.id])).toBe(0);
    expect(writes[0]).toBe('copy');
    expect(writes.slice(1).every((w) => w === 'insert')).toBe(true);

    // Once a write succeeds the writer goes back to COPY.
    const next = clickRow();
    writer.add(next);
    await writer.flush();
    expect(writes.at(-1)).toBe('copy');
    expect(await countOf([next.id])).toBe(1);
    await writer.close();
    await store.close();
  });
});

describe('click partitions', () => {
  it('skips a day whose clicks already fell into the default partition, and still creates the others', async () => {
    const scratch = await freshDatabase();
    try {
      const now = new Date();
      const stranded = clickRow({ createdAt: new Date(now.getTime() + 5 * 86_400_000) });
      await insertClicksIdempotently(scratch.sql, [stranded]); // no partitions yet: it lands in clicks_default
      const { created } = await maintainClickPartitions(scratch.sql, 30, now);
      expect(created).toBe(15); // yesterday to two weeks ahead is 16 days, less the stranded one
      const [row] = await scratch.sql<{ partition: string }[]>`select tableoid::regclass::text as partition from clicks where id = ${stranded.id}`;
      expect(row?.partition).toBe('clicks_default');
    } finally {
      await scratch.drop();
    }
  });
});

describe('click lookups for postbacks', () => {
  it('answers concurrent lookups with one query, each with its own click or nothing', async () => {
    const rows = Array.from({ length: 30 }, () => clickRow());
    await batches.write(rows);
    let queries = 0;
    const counting = ((...args: Parameters<Sql>) => {
      queries++;
      return db.sql(...args);
    }) as unknown as Sql;
    const writer = new BatchWriter<ClickRow>({ name: 'lookup-test', write: async () => undefined, keyOf: (r) => r.id, maxDelayMs: 60_000 });
    const lookup = new ClickLookup(counting, writer);

    const missing = clickRow();
    // Same ID, another time: a forged pairing must not find the stored click.
    const wrongTime = { id: (rows[3] as ClickRow).id, createdAt: new Date((rows[3] as ClickRow).createdAt.getTime() + 1) };
    // Same ID and time, another advertiser: the advertiser is part of the key (Citus places the row by it).
    const wrongAdvertiser = { ...(rows[4] as ClickRow), advertiserId: 'adv_someone_else' };
    const answers = await Promise.all([
      ...rows.map((r) => lookup.find(r.id, r.createdAt, r.advertiserId)),
      lookup.find(missing.id, missing.createdAt, missing.advertiserId),
      lookup.find(wrongTime.id, wrongTime.createdAt, (rows[3] as ClickRow).advertiserId),
      lookup.find(wrongAdvertiser.id, wrongAdvertiser.createdAt, wrongAdvertiser.advertiserId),
    ]);
    expect(queries).toBe(1);
    expect(answers.slice(0, 30).map((a) => a?.id)).toEqual(rows.map((r) => r.id));
    expect(answers[5]).toMatchObject({ subs: ['s1', null, 's3', null, null], ip: '203.0.113.7', userAgent: 'Mozilla/5.0' });
    expect(answers[30]).toBeUndefined();
    expect(answers[31]).toBeUndefined();
    expect(answers[32]).toBeUndefined();
  });

  it('finds clicks across day partitions with one generic plan on the lookup pool', async () => {
    // A fixed instant, away from the fixed times of clickRow(): with the real clock, the day those
    // rows sit in clicks_default came into the partitioned range as the calendar reached it.
    const now = new Date('2027-01-15T12:00:00.000Z');
    await maintainClickPartitions(db.sql, 30, now);
    const day = 86_400_000;
    const rows = [
      clickRow({ createdAt: new Date(now.getTime() - 1_000) }),
      clickRow({ createdAt: new Date(now.getTime() - day) }),
      clickRow({ createdAt: new Date(now.getTime() + 3 * day) }),
      clickRow({ createdAt: new Date(now.getTime() - 400 * day) }), // older than every partition: the default one
    ];
    await batches.write(rows);
    const plannedSql = connect(db.url, { max: PLANNED_POOL_MAX, genericPlans: true });
    try {
      for (let i = 0; i < 7; i++) {
        const found = await findClicks(plannedSql, [
          ...rows.map((r) => ({ id: r.id, createdAt: r.createdAt, advertiserId: r.advertiserId })),
          // In the range of the others but not this click's time: not found.
          { id: (rows[0] as ClickRow).id, createdAt: (rows[1] as ClickRow).createdAt, advertiserId: (rows[0] as ClickRow).advertiserId },
        ]);
        expect(found.map((c) => c.id).sort()).toEqual(rows.map((r) => r.id).sort());
      }
      const plans = await plannedSql<{ generic: number; custom: number }[]>`
        select coalesce(sum(generic_plans), 0)::int as generic, coalesce(sum(custom_plans), 0)::int as custom
        from pg_prepared_statements where statement like '%from clicks%'`;
      expect(plans[0]?.custom).toBe(0);
    } finally {
      await plannedSql.end();
    }
  });

  it('answers a click still in the write buffer without a query, and forgets it once written', async () => {
    let queries = 0;
    const counting = ((...args: Parameters<Sql>) => {
      queries++;
      return db.sql(...args);
    }) as unknown as Sql;
    const writer = new BatchWriter<ClickRow>({ name: 'lookup-test', write: (rows, attempt) => batches.write(rows, attempt), keyOf: (r) => r.id, maxDelayMs: 60_000 });
    const lookup = new ClickLookup(counting, writer);
    const fresh = clickRow({ subs: ['buffered', null, null, null, null] });
    writer.add(fresh);
    expect(await lookup.find(fresh.id, fresh.createdAt, fresh.advertiserId)).toMatchObject({ id: fresh.id, subs: ['buffered', null, null, null, null] });
    expect(queries).toBe(0);
    await writer.flush();
    expect(writer.get(fresh.id)).toBeUndefined();
    expect(await lookup.find(fresh.id, fresh.createdAt, fresh.advertiserId)).toMatchObject({ id: fresh.id, subs: ['buffered', null, null, null, null] });
    expect(queries).toBe(1);
    await writer.close();
  });
});
