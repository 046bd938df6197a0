import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertClicksIdempotently, maintainClickPartitions, type ClickRow } from '../src/click/click-store.js';
import { clickIncrements, dayStamp, planObservation, startOfUtcDay } from '../src/fraud/state-keys.js';
import { overDailyCap } from '../src/fraud/rules/integrity.js';
import { MemoryFraudState } from '../src/fraud/state-memory.js';
import { utcDayOf } from '../src/fx/convert.js';
import { cronWindow } from '../src/reconcile/schedule.js';
import { sliceWindow } from '../src/reconcile/steps.js';
import { parseUtcDay } from '../src/http/utc-day.js';
import { isoTime } from '../src/reports/iso-time.js';
import { hourlySeries } from '../src/reports/run-html.js';
import type { RunRow } from '../src/reconcile/runs-store.js';
import { expectApiError, get } from './helpers/admin.js';
import { freshDatabase, type TestDatabase } from './helpers/db.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { counts, evaluate, scoreInput, testOffer } from './helpers/fraud.js';
import { insertConversion, reconcile, startRun } from './helpers/reconcile.js';

/**
 * Everything that buckets time, driven at fixed instants on both sides of a UTC day end, a month
 * end, a year end and 29 February. No time here is read from the clock: each bucketing function is
 * given its instant, and the engine under test runs on an injected clock.
 */

const ms = (iso: string) => Date.parse(iso);
const BOUNDARIES = [
  { name: 'year end', last: '2026-12-31T23:59:59.999Z', first: '2027-01-01T00:00:00.000Z', lastDay: '2026-12-31', firstDay: '2027-01-01' },
  { name: 'month end', last: '2026-01-31T23:59:59.999Z', first: '2026-02-01T00:00:00.000Z', lastDay: '2026-01-31', firstDay: '2026-02-01' },
  { name: '29 February', last: '2028-02-29T23:59:59.999Z', first: '2028-03-01T00:00:00.000Z', lastDay: '2028-02-29', firstDay: '2028-03-01' },
  { name: 'a plain UTC day end', last: '2026-06-15T23:59:59.999Z', first: '2026-06-16T00:00:00.000Z', lastDay: '2026-06-15', firstDay: '2026-06-16' },
];
const compact = (day: string) => day.replaceAll('-', '');

describe.each(BOUNDARIES)('fraud state keys across $name', ({ last, first, lastDay, firstDay }) => {
  const click = (at: string) => ({ offerId: 'off_1', publisherId: 'pub_1', sub1: 'a', address: null, at: new Date(at) });

  it('counts a click in the UTC day and hour that hold it', () => {
    expect(dayStamp(ms(last))).toBe(compact(lastDay));
    expect(dayStamp(ms(first))).toBe(compact(firstDay));
    expect(startOfUtcDay(ms(first))).toBe(ms(first));
    expect(startOfUtcDay(ms(last))).toBe(ms(`${lastDay}T00:00:00.000Z`));
    const [dayBefore, hourBefore] = clickIncrements('p:', click(last)).map((i) => i.key);
    const [dayAfter, hourAfter] = clickIncrements('p:', click(first)).map((i) => i.key);
    expect(dayBefore).toBe(`p:offer:off_1:clk:${compact(lastDay)}`);
    expect(dayAfter).toBe(`p:offer:off_1:clk:${compact(firstDay)}`);
    expect(Number(hourAfter?.split(':').pop()) - Number(hourBefore?.split(':').pop())).toBe(1);
    expect(Number(hourAfter?.split(':').pop())).toBe(ms(first) / 3_600_000);
  });

  it("reads today's counter and the six days before it, so the baseline moves at midnight", () => {
    const plan = (at: string) =>
      planObservation('p:', {
        advertiserId: 'adv_1', txid: 't', at: ms(at), addresses: [], addressWindowMs: 3_600_000, clickId: 'c', clickAt: ms(at) - 60_000,
        event: 'conversion', clickExpiresAt: ms(at) + 86_400_000, offerId: 'off_1', segment: undefined,
      }).offer;
    const before = plan(last);
    const after = plan(first);
    expect(before.dayKeys).toHaveLength(7);
    expect(before.dayKeys.at(-1)).toBe(`p:offer:off_1:clk:${compact(lastDay)}`);
    expect(after.dayKeys.at(-1)).toBe(`p:offer:off_1:clk:${compact(firstDay)}`);
    // One day later: the oldest day falls out, the new one comes in.
    expect(after.dayKeys.slice(0, 6)).toEqual(before.dayKeys.slice(1));
    expect(after.todayFrom).toBe(ms(first));
    expect(before.todayFrom).toBe(ms(`${lastDay}T00:00:00.000Z`));
  });

  it('gives an amount the FX day of its own UTC day', () => {
    expect(utcDayOf(new Date(last))).toBe(lastDay);
    expect(utcDayOf(new Date(first))).toBe(firstDay);
  });
});

describe.each(BOUNDARIES)("the offer's daily cap across $name", ({ last, first, lastDay, firstDay }) => {
  const observation = (txid: string, at: string) => ({
    advertiserId: 'adv_1', txid, at: ms(at), addresses: [], addressWindowMs: 3_600_000, clickId: `c_${txid}`, clickAt: ms(at) - 60_000,
    event: 'conversion', clickExpiresAt: ms(at) + 86_400_000, offerId: 'off_cap', segment: undefined,
  });

  it("counts today's conversions up to the last millisecond and starts again at midnight", async () => {
    const state = new MemoryFraudState({ prefix: 'tb:' });
    await state.observe(observation('a', `${lastDay}T00:00:00.000Z`));
    const lastOfDay = await state.observe(observation('b', last));
    const firstOfNext = await state.observe(observation('c', first));
    expect(lastOfDay.offerToday).toBe(2);
    expect(firstOfNext.offerToday).toBe(1);
    expect(firstOfNext.offerBaseline.conversions).toBe(3);
    await state.close();
  });

  it('names the UTC day of the conversion in the evidence', () => {
    const offer = testOffer({ dailyCap: 1 });
    const at = (now: string) => evaluate(overDailyCap, scoreInput({ offer, now: new Date(now) }), { counts: counts({ offerToday: 2 }) });
    expect(at(last)).toMatchObject({ fired: true, window: `UTC day ${lastDay}` });
    expect(at(first)).toMatchObject({ fired: true, window: `UTC day ${firstDay}` });
  });
});

describe('fraud baseline days over 29 February', () => {
  it('lists 29 February between 28 February and 1 March', () => {
    const plan = planObservation('p:', {
      advertiserId: 'adv_1', txid: 't', at: ms('2028-03-03T12:00:00Z'), addresses: [], addressWindowMs: 3_600_000, clickId: 'c',
      clickAt: ms('2028-03-03T11:00:00Z'), event: 'conversion', clickExpiresAt: ms('2028-03-04T00:00:00Z'), offerId: 'o', segment: undefined,
    });
    expect(plan.offer.dayKeys.map((k) => k.split(':').pop())).toEqual(['20280226', '20280227', '20280228', '20280229', '20280301', '20280302', '20280303']);
    expect(dayStamp(ms('2028-02-29T12:00:00Z'))).toBe('20280229');
  });
});

describe('reconciliation window arithmetic at fixed instants', () => {
  it('ends the scheduled window at the tick, whole seconds, and reaches REFIRE_WINDOW_S back over month and leap days', () => {
    expect(cronWindow(new Date('2027-01-01T00:00:00.999Z'), 259_200)).toEqual({ from: new Date('2026-12-29T00:00:00.000Z'), to: new Date('2027-01-01T00:00:00.000Z') });
    expect(cronWindow(new Date('2026-12-31T23:59:59.999Z'), 259_200)).toEqual({ from: new Date('2026-12-28T23:59:59.000Z'), to: new Date('2026-12-31T23:59:59.000Z') });
    expect(cronWindow(new Date('2028-03-01T00:00:00.000Z'), 259_200)).toEqual({ from: new Date('2028-02-27T00:00:00.000Z'), to: new Date('2028-03-01T00:00:00.000Z') });
    expect(cronWindow(new Date('2026-03-01T00:00:00.000Z'), 86_400)).toEqual({ from: new Date('2026-02-28T00:00:00.000Z'), to: new Date('2026-03-01T00:00:00.000Z') });
    expect(cronWindow(new Date('2026-02-01T00:00:00.000Z'), 86_400)).toEqual({ from: new Date('2026-01-31T00:00:00.000Z'), to: new Date('2026-02-01T00:00:00.000Z') });
  });

  it('cuts slices at UTC multiples of six hours across the year end and 29 February', () => {
    const slices = (from: string, to: string) => sliceWindow({ from: new Date(from), to: new Date(to) }).map((s) => [s.from.toISOString(), s.to.toISOString()]);
    expect(slices('2026-12-31T20:30:00.000Z', '2027-01-01T07:00:00.000Z')).toEqual([
      ['2026-12-31T20:30:00.000Z', '2027-01-01T00:00:00.000Z'],
      ['2027-01-01T00:00:00.000Z', '2027-01-01T06:00:00.000Z'],
      ['2027-01-01T06:00:00.000Z', '2027-01-01T07:00:00.000Z'],
    ]);
    expect(slices('2028-02-29T12:00:00.000Z', '2028-03-01T00:00:00.001Z')).toEqual([
      ['2028-02-29T12:00:00.000Z', '2028-02-29T18:00:00.000Z'],
      ['2028-02-29T18:00:00.000Z', '2028-03-01T00:00:00.000Z'],
      ['2028-03-01T00:00:00.000Z', '2028-03-01T00:00:00.001Z'],
    ]);
  });
});

describe("a run report's hourly chart at fixed instants", () => {
  const row = (hour: string, s2s: number, pixel: number): RunRow => ({
    offerId: 'o', publisherId: 'p', hour: new Date(hour), s2s, pixel, matched: 0, s2sOnly: s2s, pixelOnly: pixel, recovered: 0, refired: 0, expired: 0,
  });

  it('has one point per UTC hour from the hour holding from, through 29 February into 1 March, summing offers', () => {
    const series = hourlySeries(new Date('2028-02-29T22:30:00.000Z'), new Date('2028-03-01T01:00:00.000Z'), [
      row('2028-02-29T23:00:00.000Z', 2, 1),
      row('2028-02-29T23:00:00.000Z', 1, 0),
      row('2028-03-01T00:00:00.000Z', 0, 4),
    ]);
    expect(series.map((p) => [p.hour.toISOString(), p.s2s, p.pixel])).toEqual([
      ['2028-02-29T22:00:00.000Z', 0, 0],
      ['2028-02-29T23:00:00.000Z', 3, 1],
      ['2028-03-01T00:00:00.000Z', 0, 4],
    ]);
  });

  it('crosses the year end without a gap or a repeated hour', () => {
    const series = hourlySeries(new Date('2026-12-31T23:59:59.999Z'), new Date('2027-01-01T01:00:00.001Z'), []);
    expect(series.map((p) => p.hour.toISOString())).toEqual(['2026-12-31T23:00:00.000Z', '2027-01-01T00:00:00.000Z', '2027-01-01T01:00:00.000Z']);
  });
});

describe('finance times on the calendar', () => {
  it('accepts 29 February of a leap year and refuses days that do not exist instead of rolling them over', () => {
    expect(isoTime.parse('2028-02-29')).toEqual(new Date('2028-02-29T00:00:00.000Z'));
    expect(isoTime.parse('2028-02-29T23:59:59.999Z')).toEqual(new Date('2028-02-29T23:59:59.999Z'));
    expect(['2028-02-29', '2000-02-29', '2100-02-29', '2027-02-29'].map(parseUtcDay)).toEqual(['2028-02-29', '2000-02-29', undefined, undefined]);
    for (const bad of ['2026-02-29', '2026-02-30', '2026-02-30T00:00:00Z', '2026-04-31T12:00:00Z', '2026-13-01', '2026-12-32T00:00:00Z']) {
      expect(isoTime.safeParse(bad).success, bad).toBe(false);
    }
  });
});

describe('click day partitions in PostgreSQL at fixed instants', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await freshDatabase();
  });
  afterAll(async () => db?.drop());

  let serial = 0;
  const clickAt = (at: string): ClickRow => ({
    id: `clk_tb_${++serial}`, createdAt: new Date(at), offerId: 'off_1', publisherId: 'pub_1', advertiserId: 'adv_1',
    subs: [null, null, null, null, null], ip: null, userAgent: null,
  });
  const partitions = async () =>
    (await db.sql<{ name: string }[]>`
      select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
      where p.relname = 'clicks' and c.relname ~ '^clicks_[0-9]{8}$' order by 1`).map((r) => r.name);
  const partitionOf = async (id: string) =>
    (await db.sql<{ partition: string }[]>`select tableoid::regclass::text as partition from clicks where id = ${id}`)[0]?.partition;

  it.each(BOUNDARIES)('has partitions for both days of the $name and puts each click in its own', async ({ last, first, lastDay, firstDay }) => {
    await maintainClickPartitions(db.sql, 3650, new Date(last));
    const names = await partitions();
    expect(names).toContain(`clicks_${compact(lastDay)}`);
    expect(names).toContain(`clicks_${compact(firstDay)}`);
    const before = clickAt(last);
    const after = clickAt(first);
    await insertClicksIdempotently(db.sql, [before, after]);
    expect(await partitionOf(before.id)).toBe(`clicks_${compact(lastDay)}`);
    expect(await partitionOf(after.id)).toBe(`clicks_${compact(firstDay)}`);
  });

  it('creates yesterday to two weeks ahead across 29 February, and drops only days older than the retention', async () => {
    const scratch = await freshDatabase();
    try {
      const names = async () =>
        (await scratch.sql<{ name: string }[]>`
          select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
          where p.relname = 'clicks' and c.relname ~ '^clicks_[0-9]{8}$' order by 1`).map((r) => r.name);
      expect(await maintainClickPartitions(scratch.sql, 30, new Date('2028-02-29T12:00:00Z'))).toEqual({ created: 16, dropped: [] });
      const created = await names();
      expect(created[0]).toBe('clicks_20280228');
      expect(created).toContain('clicks_20280229');
      expect(created).toContain('clicks_20280301');
      expect(created.at(-1)).toBe('clicks_20280314');
      expect(created).toHaveLength(16);
      // 31 days on, the cutoff is 29 February itself: 28 February goes, the leap day stays.
      const later = await maintainClickPartitions(scratch.sql, 30, new Date('2028-03-30T23:59:59.999Z'));
      expect(later.dropped).toEqual(['clicks_20280228']);
      const kept = await names();
      expect(kept[0]).toBe('clicks_20280229');
      expect(kept).not.toContain('clicks_20280228');
      expect(kept.at(-1)).toBe('clicks_20280413');
    } finally {
      await scratch.drop();
    }
  });
});

describe('an engine on an injected clock', () => {
  let t: TestEngine;
  let ids: { advertiserId: string; offerId: string; publisherId: string };
  const pinned = new Date('2028-02-29T23:59:59.999Z');
  beforeAll(async () => {
    t = await startTestEngine({}, { now: () => pinned });
    const seeded = await seedCatalog(t.app);
    ids = { advertiserId: seeded.advertiser.id, offerId: seeded.offer.id, publisherId: seeded.publisher.id };
  });
  afterAll(async () => t?.close());

  it('creates the day partitions of its own clock at start-up, whatever the real date', async () => {
    const rows = await t.sql<{ name: string }[]>`
      select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
      where p.relname = 'clicks' and c.relname ~ '^clicks_2028' order by 1`;
    const names = rows.map((r) => r.name);
    expect(names[0]).toBe('clicks_20280228');
    expect(names).toContain('clicks_20280229');
    expect(names).toContain('clicks_20280301');
    expect(names.at(-1)).toBe('clicks_20280314');
  });

  it.each(BOUNDARIES)('counts a reconciliation unit in the UTC hour of its first sighting across the $name', async ({ name, last, first }) => {
    const tag = name.replaceAll(' ', '-');
    const hourOf = (iso: string) => `${iso.slice(0, 13)}:00:00.000Z`;
    await insertConversion(t.sql, { ...ids, txid: `${tag}-before`, payoutMinor: 100n, currency: 'USD', createdAt: new Date(last) });
    await insertConversion(t.sql, { ...ids, txid: `${tag}-after`, payoutMinor: 100n, currency: 'USD', createdAt: new Date(first) });
    const around = await reconcile(t.app, { from: new Date(ms(first) - 3_600_000).toISOString(), to: new Date(ms(first) + 3_600_000).toISOString() });
    const rows = around.rows.filter((r) => r.offerId === ids.offerId).map((r) => [r.hour, r.s2s, r.s2sOnly]);
    expect(rows).toEqual([
      [hourOf(last), 1, 1],
      [hourOf(first), 1, 1],
    ]);
    const stored = await t.sql`select hour, s2s from reconciliation_rows where run_id = ${around.id} and offer_id = ${ids.offerId} order by hour`;
    expect(stored.map((r) => [(r.hour as Date).toISOString(), r.s2s])).toEqual([
      [hourOf(last), 1],
      [hourOf(first), 1],
    ]);
    // A window that ends at midnight holds the last millisecond of the day and not the first of the next.
    const upToMidnight = await reconcile(t.app, { from: new Date(ms(first) - 3_600_000).toISOString(), to: first });
    expect(upToMidnight.rows.filter((r) => r.offerId === ids.offerId).map((r) => [r.hour, r.s2s])).toEqual([[hourOf(last), 1]]);
  });

  it('reports a UTC day as [00:00, next 00:00): the leap day holds its last millisecond, not 1 March', async () => {
    const pub = ids.publisherId;
    const report = async (q: string) => {
      const res = await t.app.inject({ method: 'GET', url: `/v1/reports/payouts?${q}&publisherId=${pub}`, headers: auth() });
      expect(res.statusCode, res.body).toBe(200);
      return res.json() as { totals: { currency: string; conversions: number }[] };
    };
    const leap = await report('from=2028-02-29&to=2028-03-01');
    expect(leap.totals).toMatchObject([{ currency: 'USD', conversions: 1 }]);
    const march = await report('from=2028-03-01&to=2028-03-02');
    expect(march.totals).toMatchObject([{ currency: 'USD', conversions: 1 }]);
    const [inDb] = await t.sql`select count(*)::int as n from conversions where publisher_id = ${pub}
      and created_at >= '2028-02-29T00:00:00Z' and created_at < '2028-03-01T00:00:00Z'`;
    expect(inDb?.n).toBe(1);
  });

  it('answers an impossible day with 400 invalid_request naming the field, and starts no run', async () => {
    const runsBefore = (await t.sql`select count(*)::int as n from reconciliation_runs`)[0]?.n;
    expectApiError(await get(t.app, '/v1/reports/payouts?from=2026-02-30&to=2026-03-02'), 400, 'invalid_request', ['from']);
    expectApiError(await get(t.app, '/v1/reports/payouts?from=2026-02-01&to=2026-02-29T00:00:00Z'), 400, 'invalid_request', ['to']);
    expectApiError(await get(t.app, `/v1/reports/advertisers?advertiserId=${ids.advertiserId}&from=2026-04-31`), 400, 'invalid_request', ['from']);
    expectApiError(await get(t.app, '/v1/conversions?from=2026-02-30'), 400, 'invalid_request', ['from']);
    expectApiError(await get(t.app, '/v1/conversions?from=2026-02-01T00:00:00Z&to=2027-02-29T00:00:00Z'), 400, 'invalid_request', ['to']);
    expectApiError(await startRun(t.app, { from: '2026-02-30T00:00:00Z', to: '2026-03-02T00:00:00Z' }), 400, 'invalid_request', ['from']);
    expect((await t.sql`select count(*)::int as n from reconciliation_runs`)[0]?.n).toBe(runsBefore);
    // The real leap day is a valid bound for the conversions list.
    const res = await get(t.app, `/v1/conversions?from=2028-02-29&to=2028-03-01&publisherId=${ids.publisherId}`);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().items.map((c: { createdAt: string }) => c.createdAt)).toEqual(['2028-02-29T23:59:59.999Z']);
  });
});
