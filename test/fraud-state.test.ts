import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import fc from 'fast-check';
import type { Cluster } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { Scorer } from '../src/fraud/scorer.js';
import { parseAddress } from '../src/net/cidr.js';
import { MemoryFraudState, TimeSet } from '../src/fraud/state-memory.js';
import { SETTLE_MS } from '../src/fraud/closed-buckets.js';
import { CTIT_BUCKETS, ctitBucket } from '../src/fraud/ctit-distribution.js';
import { RedisFraudState } from '../src/fraud/state-redis.js';
import type { ConversionObservation, FraudState } from '../src/fraud/state.js';
import { BROWSER_UA, scoreInput, T0, testDatacenter } from './helpers/fraud.js';
import { testRedis, testRedisCluster } from './helpers/redis.js';

/**
 * The same behaviour from both implementations of the scoring state: memory (one node) and Redis
 * (every node), the latter against the real redis-server that global-setup starts and against its
 * three-master Redis Cluster (hash-tagged keys, one script call per family).
 */

const { url: redisUrl, client: redisClient } = testRedis();
const { url: clusterUrl, client: clusterClient } = testRedisCluster();
let cluster: Cluster;
beforeAll(async () => {
  if (clusterUrl) cluster = await clusterClient();
});

type Backend = { name: string; skip: boolean; make(prefix: string): FraudState };
const backends: Backend[] = [
  { name: 'memory', skip: false, make: (prefix) => new MemoryFraudState({ prefix }) },
  { name: 'redis', skip: !redisUrl, make: (prefix) => new RedisFraudState(redisClient(), { prefix, onError: () => undefined }) },
  { name: 'redis cluster', skip: !clusterUrl, make: (prefix) => new RedisFraudState(cluster, { prefix, onError: (op, err) => { throw new Error(`${op}: ${String(err)}`); } }) },
];

const MINUTE = 60_000;
const t0 = T0.getTime();
const prefix = () => `t:${randomBytes(5).toString('hex')}:`;
/** A CTIT histogram with the given counts per bucket index, zero elsewhere. */
const hist = (counts: Record<number, number> = {}) => Array.from({ length: CTIT_BUCKETS }, (_, i) => counts[i] ?? 0);
const TEN_MINUTES = ctitBucket(600);

function conversion(overrides: Partial<ConversionObservation> = {}): ConversionObservation {
  return {
    advertiserId: 'adv_1',
    txid: 'tx1',
    at: t0,
    addresses: ['198.51.100.7'],
    addressWindowMs: 60 * MINUTE,
    clickId: 'clk_1',
    clickAt: t0 - 10 * MINUTE,
    event: 'conversion',
    clickExpiresAt: t0 + 86_400_000,
    offerId: 'off_1',
    segment: { publisherId: 'pub_1', sub1: 'a', windowMs: 24 * 60 * MINUTE },
    ...overrides,
  };
}

describe.each(backends)('$name scoring state', ({ skip, make }) => {
  it.skipIf(skip)('counts one conversion once, however often it is scored', async () => {
    const state = make(prefix());
    for (let i = 0; i < 3; i++) {
      const c = await state.observe(conversion());
      expect(c).toEqual({
        addresses: [{ key: '198.51.100.7', conversions: 1, clicks: 0 }],
        clickConversions: 1,
        offerToday: 1,
        offerBaseline: { conversions: 1, clicks: 0 },
        segment: { conversions: 1, clicks: 0 },
        publisher: { conversions: 1, clicks: 0 },
        ctit: { offer: hist({ [TEN_MINUTES]: 1 }), publisher: hist({ [TEN_MINUTES]: 1 }), segment: hist({ [TEN_MINUTES]: 1 }) },
      });
    }
    // The same txid from another advertiser is another conversion.
    const other = await state.observe(conversion({ advertiserId: 'adv_2' }));
    expect(other.addresses[0]?.conversions).toBe(2);
    await state.close();
  });

  it.skipIf(skip)('is idempotent under concurrent retries and exact under concurrent distinct conversions', async () => {
    const state = make(prefix());
    const retries = await Promise.all(Array.from({ length: 10 }, () => state.observe(conversion())));
    expect(retries.map((c) => c.offerToday)).toEqual(Array(10).fill(1));
    const distinct = await Promise.all(Array.from({ length: 20 }, (_, i) => state.observe(conversion({ txid: `d${i}`, clickId: `c${i}` }))));
    // Each saw the ones before it and itself: no lag, no lost update.
    expect(distinct.map((c) => c.offerToday).sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    await state.close();
  });

  it.skipIf(skip)('slides the address window and keeps a retried conversion at its first time', async () => {
    const state = make(prefix());
    await state.observe(conversion({ txid: 'A', at: t0 }));
    await state.observe(conversion({ txid: 'A', at: t0 + 50 * MINUTE }));
    expect((await state.observe(conversion({ txid: 'B', at: t0 + 55 * MINUTE }))).addresses[0]?.conversions).toBe(2);
    // 70 minutes on, A (first seen at t0) has left the 60-minute window; a retry had not moved it.
    expect((await state.observe(conversion({ txid: 'C', at: t0 + 70 * MINUTE }))).addresses[0]?.conversions).toBe(2);
    // A wider window (an offer's override) sees further back on the same key.
    const wide = await state.observe(conversion({ txid: 'D', at: t0 + 71 * MINUTE, addressWindowMs: 120 * MINUTE }));
    expect(wide.addresses[0]?.conversions).toBe(4);
    await state.close();
  });

  it.skipIf(skip)('counts conversions per click and event, and per offer per UTC day', async () => {
    const state = make(prefix());
    await state.observe(conversion({ txid: 'A' }));
    expect((await state.observe(conversion({ txid: 'B' }))).clickConversions).toBe(2);
    expect((await state.observe(conversion({ txid: 'C', event: 'purchase' }))).clickConversions).toBe(1);
    const nextDay = await state.observe(conversion({ txid: 'D', clickId: 'clk_2', at: Date.parse('2026-11-22T00:00:00Z') }));
    expect(nextDay.offerToday).toBe(1);
    expect(nextDay.offerBaseline.conversions).toBe(4);
    const nextWeek = await state.observe(conversion({ txid: 'E', clickId: 'clk_3', at: Date.parse('2026-11-28T00:00:00Z') }));
    expect(nextWeek.offerBaseline.conversions).toBe(2);
    await state.close();
  });

  it.skipIf(skip)('counts clicks per address, offer day and segment for the baselines', async () => {
    const state = make(prefix());
    const click = { offerId: 'off_1', publisherId: 'pub_1', sub1: 'a', address: parseAddress('198.51.100.7') ?? null };
    for (let i = 0; i < 3; i++) state.recordClick({ ...click, at: new Date(t0 - (i + 1) * MINUTE) });
    state.recordClick({ ...click, sub1: 'b', address: parseAddress('10.1.2.3') ?? null, at: new Date(t0 - MINUTE) });
    state.recordClick({ ...click, sub1: null, address: parseAddress('2001:db8:1:2::5') ?? null, at: new Date(t0 - MINUTE) });
    await state.flush();
    const c = await state.observe(conversion());
    expect(c.addresses).toEqual([{ key: '198.51.100.7', conversions: 1, clicks: 3 }]);
    expect(c.segment).toEqual({ conversions: 1, clicks: 3 });
    expect(c.offerBaseline).toEqual({ conversions: 1, clicks: 5 });
    const v6 = await state.observe(conversion({ txid: 'v6', addresses: ['2001:db8:1:2::/64'], segment: { publisherId: 'pub_1', sub1: null, windowMs: 3_600_000 } }));
    expect(v6.addresses[0]?.clicks).toBe(1);
    expect(v6.segment).toEqual({ conversions: 1, clicks: 1 });
    await state.close();
  });

  it.skipIf(skip)("spreads an address's clicks over publishers when asked: how many, and the largest one's clicks, in the window's hours", async () => {
    const state = make(prefix());
    const vpn = parseAddress('198.51.100.7') ?? null;
    const server = parseAddress('203.0.113.9') ?? null;
    const click = (address: typeof vpn, publisherId: string, at: number, offerId = 'off_1') => state.recordClick({ offerId, publisherId, sub1: 'a', address, at: new Date(at) });
    // A shared exit: five publishers, pub_1 the largest with 3 clicks (one of them on another offer: the spread is over every offer).
    for (const [pub, ago] of [['pub_1', 5], ['pub_1', 15], ['pub_2', 20], ['pub_3', 25], ['pub_4', 30], ['pub_5', 40]] as const) click(vpn, pub, t0 - ago * MINUTE);
    click(vpn, 'pub_1', t0 - MINUTE, 'off_2');
    // Hours before the window's first bucket are not read.
    click(vpn, 'pub_9', t0 - 3 * 60 * MINUTE);
    // A script's server: 12 clicks, all one publisher.
    for (let i = 0; i < 12; i++) click(server, 'pub_flood', t0 - (i + 1) * MINUTE);
    await state.flush();
    const both = { addresses: ['198.51.100.7', '203.0.113.9'], spreadOf: ['198.51.100.7', '203.0.113.9'] };
    const c = await state.observe(conversion(both));
    expect(c.addresses).toEqual([
      { key: '198.51.100.7', conversions: 1, clicks: 7, spread: { publishers: 5, topPublisherClicks: 3 } },
      { key: '203.0.113.9', conversions: 1, clicks: 12, spread: { publishers: 1, topPublisherClicks: 12 } },
    ]);
    // Only for the addresses asked about; an address with no clicks has no publishers.
    const some = await state.observe(conversion({ txid: 'tx2', addresses: ['198.51.100.7', '192.0.2.1'], spreadOf: ['192.0.2.1'] }));
    expect(some.addresses).toEqual([
      { key: '198.51.100.7', conversions: 2, clicks: 7 },
      { key: '192.0.2.1', conversions: 1, clicks: 0, spread: { publishers: 0, topPublisherClicks: 0 } },
    ]);
    await state.close();
  });

  it.skipIf(skip)("counts a publisher's click cohort over all its sub1s, each conversion once however often retried", async () => {
    const state = make(prefix());
    const seg = (publisherId: string, sub1: string | null) => ({ publisherId, sub1, windowMs: 60 * MINUTE });
    const click = (publisherId: string, sub1: string | null, at: number) =>
      state.recordClick({ offerId: 'off_1', publisherId, sub1, address: null, at: new Date(at) });
    // Rotating sub-IDs: one click each, all in the hour buckets the window reads; another publisher and another offer apart.
    for (let i = 0; i < 6; i++) click('pub_1', `r${i}`, t0 - (10 + i * 10) * MINUTE);
    click('pub_2', 'r0', t0 - MINUTE);
    state.recordClick({ offerId: 'off_2', publisherId: 'pub_1', sub1: 'r0', address: null, at: new Date(t0 - MINUTE) });
    // Older than the 60-minute window: in the publisher's key, not in its cohort.
    click('pub_1', 'r9', t0 - 3 * 60 * MINUTE);
    await state.flush();
    for (let i = 0; i < 4; i++) await state.observe(conversion({ txid: `t${i}`, clickId: `c${i}`, clickAt: t0 - (10 + i * 10) * MINUTE, segment: seg('pub_1', `r${i}`) }));
    // Retries of t0 (later, on another sub1 even) and a conversion of a click older than the window count nothing.
    await state.observe(conversion({ txid: 't0', clickId: 'c0', at: t0 + MINUTE, segment: seg('pub_1', 'r5') }));
    await state.observe(conversion({ txid: 'old', clickId: 'old', clickAt: t0 - 3 * 60 * MINUTE, segment: seg('pub_1', 'r9') }));
    await state.observe(conversion({ txid: 'other', clickId: 'o', clickAt: t0 - MINUTE, segment: seg('pub_2', 'r0') }));
    const c = await state.observe(conversion({ txid: 't1', clickId: 'c1', at: t0 + 2 * MINUTE, clickAt: t0 - 20 * MINUTE, segment: seg('pub_1', 'r1') }));
    expect(c.publisher).toEqual({ conversions: 4, clicks: 6 });
    expect(c.segment).toEqual({ conversions: 1, clicks: 1 });
    expect((await state.observe(conversion({ txid: 'p2', clickId: 'p2', segment: seg('pub_2', 'x') }))).publisher).toEqual({ conversions: 2, clicks: 1 });
    expect((await state.observe(conversion({ txid: 'none', segment: undefined }))).publisher).toBeUndefined();
    await state.close();
  });

  it.skipIf(skip)('counts a segment by click cohort: a conversion of a click older than the window is not in it', async () => {
    const state = make(prefix());
    const window = { publisherId: 'pub_1', sub1: 'a', windowMs: 60 * MINUTE };
    await state.observe(conversion({ txid: 'old', clickAt: t0 - 3 * 60 * MINUTE, segment: window }));
    const c = await state.observe(conversion({ txid: 'new', clickAt: t0 - 5 * MINUTE, segment: window }));
    expect(c.segment?.conversions).toBe(1);
    expect(c.offerToday).toBe(2);
    await state.close();
  });

  it.skipIf(skip)('leaves the segment out when the click (and its sub1) is unknown', async () => {
    const state = make(prefix());
    const c = await state.observe(conversion({ segment: undefined }));
    expect(c.segment).toBeUndefined();
    expect(c.ctit).toBeUndefined();
    expect(c.offerToday).toBe(1);
    // Not in the offer's histogram either, even when a retry later knows the click: the offer minus a segment stays the rest.
    const retry = await state.observe(conversion({ at: t0 + MINUTE }));
    expect(retry.ctit?.offer).toEqual(hist());
    await state.close();
  });

  it.skipIf(skip)('counts click-to-conversion histograms per offer, publisher and sub1, once per (advertiser, txid)', async () => {
    const state = make(prefix());
    const seg = (publisherId: string, sub1: string | null) => ({ publisherId, sub1, windowMs: 24 * 60 * MINUTE });
    const at = (ctitS: number, o: Partial<ConversionObservation>) => conversion({ clickAt: (o.at ?? t0) - ctitS * 1000, ...o });
    await state.observe(at(5, { txid: 'a', segment: seg('pub_1', 'a') }));
    await state.observe(at(2 * 86_400, { txid: 'b', segment: seg('pub_1', 'b') }));
    await state.observe(at(8 * 86_400, { txid: 'c', segment: seg('pub_2', null) }));
    // A retry (same advertiser and txid), later and even with another click time, counts nothing new.
    await state.observe(at(600, { txid: 'b', at: t0 + MINUTE, segment: seg('pub_1', 'b') }));
    // Another offer's conversions stay in its own histograms.
    await state.observe(at(600, { txid: 'z', offerId: 'off_2', segment: seg('pub_1', 'a') }));
    const c = await state.observe(at(-2, { txid: 'd', at: t0 + 2 * MINUTE, segment: seg('pub_1', 'a') }));
    const [instant, days, week] = [ctitBucket(0), ctitBucket(2 * 86_400), CTIT_BUCKETS - 1];
    expect(c.ctit).toEqual({
      offer: hist({ [instant]: 2, [days]: 1, [week]: 1 }),
      publisher: hist({ [instant]: 2, [days]: 1 }),
      segment: hist({ [instant]: 2 }),
    });
    // A missing sub1 and an empty one are one segment.
    const empty = await state.observe(at(8 * 86_400, { txid: 'e', segment: seg('pub_2', '') }));
    expect(empty.ctit?.segment).toEqual(hist({ [week]: 2 }));
    await state.close();
  });

  it.skipIf(skip)('slides the histograms over the current UTC day and the six before it', async () => {
    const state = make(prefix());
    const DAY = 86_400_000;
    const day0 = Date.parse('2026-11-21T00:00:00Z');
    for (let d = 0; d < 8; d++) await state.observe(conversion({ txid: `d${d}`, at: day0 + d * DAY + 1, clickAt: day0 + d * DAY - 600_000 }));
    // Day 7's window is days 1-7: day 0's conversion has left it.
    const last = await state.observe(conversion({ txid: 'last', at: day0 + 7 * DAY + 2, clickAt: day0 + 7 * DAY - 600_000 }));
    expect(last.ctit?.offer).toEqual(hist({ [TEN_MINUTES]: 8 }));
    expect(last.ctit?.segment).toEqual(hist({ [TEN_MINUTES]: 8 }));
    await state.close();
  });
});

describe('memory scoring state', () => {
  it('forgets keys once they expire', async () => {
    const state = new MemoryFraudState({ prefix: 'm:' });
    for (let i = 0; i < 50; i++) await state.observe(conversion({ txid: `t${i}`, clickId: `c${i}`, addresses: [`192.0.2.${i}`] }));
    const busy = state.size;
    await state.observe(conversion({ txid: 'late', clickId: 'late', at: t0 + 40 * 86_400_000, clickExpiresAt: t0 + 41 * 86_400_000 }));
    expect(busy).toBeGreaterThan(50);
    // Left: the late conversion's own keys (address, click, offer, segment, publisher, and its three CTIT histograms).
    expect(state.size).toBeLessThanOrEqual(8);
  });
});

describe('TimeSet (the memory state\'s sorted set)', () => {
  type Op = { op: 'add'; member: string; t: number } | { op: 'trim'; t: number } | { op: 'count'; t: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ op: fc.constant('add' as const), member: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'), t: fc.integer({ min: 0, max: 50 }) }),
    fc.record({ op: fc.constant('trim' as const), t: fc.integer({ min: 0, max: 50 }) }),
    fc.record({ op: fc.constant('count' as const), t: fc.integer({ min: 0, max: 50 }) }),
  );

  it('answers like a ZSET under any mix of ZADD NX, trims from the front and counts', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const set = new TimeSet();
        const model = new Map<string, number>();
        for (const o of ops) {
          if (o.op === 'add') {
            expect(set.add(o.member, o.t)).toBe(!model.has(o.member));
            if (!model.has(o.member)) model.set(o.member, o.t);
          } else if (o.op === 'trim') {
            set.removeBelow(o.t);
            for (const [m, t] of model) if (t < o.t) model.delete(m);
          } else {
            expect(set.countFrom(o.t)).toBe([...model.values()].filter((t) => t >= o.t).length);
          }
          expect(set.size).toBe(model.size);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe.skipIf(!redisUrl)('redis scoring state across nodes', () => {
  it('lets two scorers on one Redis count each other (cross-node ip_burst)', async () => {
    const p = prefix();
    const nodeA = new Scorer({ state: new RedisFraudState(redisClient(), { prefix: p, onError: () => undefined }), datacenter: testDatacenter });
    const nodeB = new Scorer({ state: new RedisFraudState(redisClient(), { prefix: p, onError: () => undefined }), datacenter: testDatacenter });
    const from = (i: number) => scoreInput({ click: { ip: '192.0.2.99', userAgent: BROWSER_UA, subs: [null, null, null, null, null] }, now: new Date(t0 + i * 1000) });
    const reasons: string[][] = [];
    for (let i = 0; i < 6; i++) reasons.push((await (i % 2 === 0 ? nodeA : nodeB).score(from(i))).reasons);
    expect(reasons.slice(0, 5)).toEqual([[], [], [], [], []]);
    expect(reasons[5]).toEqual(['ip_burst']);
  });

  it('reloads its script after Redis forgot it (a restart or failover)', async () => {
    const client = redisClient();
    const state = new RedisFraudState(client, { prefix: prefix(), onError: () => undefined });
    await state.observe(conversion({ txid: 'before' }));
    await client.script('FLUSH');
    expect((await state.observe(conversion({ txid: 'after' }))).offerToday).toBe(2);
  });

  it('reloads it for every postback of a burst sent together, each counted once', async () => {
    const client = redisClient();
    const state = new RedisFraudState(client, { prefix: prefix(), onError: () => undefined });
    await state.observe(conversion({ txid: 'before' }));
    await client.script('FLUSH');
    const burst = await Promise.all(Array.from({ length: 5 }, (_, i) => state.observe(conversion({ txid: `after${i}`, clickId: `c${i}` }))));
    expect(burst.map((c) => c.offerToday).sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6]);
    expect((await state.observe(conversion({ txid: 'after0', clickId: 'c0' }))).offerToday).toBe(6);
  });

  it('reads a settled closed hour once per node, and the hour still filling every time', async () => {
    const p = prefix();
    const state = new RedisFraudState(redisClient(), { prefix: p, onError: () => undefined });
    const click = async (at: number) => {
      state.recordClick({ offerId: 'off_1', publisherId: 'pub_1', sub1: 'a', address: null, at: new Date(at) });
      await state.flush();
    };
    await click(t0 - 120 * MINUTE);
    await click(t0 - 30 * MINUTE);
    // t0 is the start of an hour. Just after it, another node may still be flushing into the hour
    // that just closed: its sum is read, not kept.
    expect((await state.observe(conversion({ txid: 'a', at: t0 + 1_000 }))).segment?.clicks).toBe(2);
    await click(t0 - MINUTE);
    expect((await state.observe(conversion({ txid: 'b', at: t0 + SETTLE_MS }))).segment?.clicks).toBe(3);
    // From now on this node keeps the closed hours' sum: a write into them (which no node makes once
    // they have settled) is not read again, while the current hour always is.
    await click(t0 - 5 * MINUTE);
    await click(t0 + 10 * MINUTE);
    const later = await state.observe(conversion({ txid: 'c', at: t0 + 20 * MINUTE }));
    expect(later.segment?.clicks).toBe(4);
    expect(later.publisher?.clicks).toBe(4);
    expect(later.offerBaseline.clicks).toBe(5);
    // A node that has kept nothing reads every bucket.
    const other = new RedisFraudState(redisClient(), { prefix: p, onError: () => undefined });
    const fresh = await other.observe(conversion({ txid: 'd', at: t0 + 20 * MINUTE }));
    expect(fresh.segment?.clicks).toBe(5);
    expect(fresh.publisher?.clicks).toBe(5);
  });

  it('reads settled closed days of the CTIT histograms once per node, and today every time', async () => {
    const p = prefix();
    const client = redisClient();
    const state = new RedisFraudState(client, { prefix: p, onError: () => undefined });
    const DAY = 86_400_000;
    const day0 = Date.parse('2026-11-21T00:00:00Z');
    const total = (h: number[] | undefined) => (h ?? []).reduce((x, y) => x + y, 0);
    const at = (txid: string, t: number) => conversion({ txid, at: t, clickAt: t - 10 * MINUTE });
    await state.observe(at('a', day0 + 10 * 60 * MINUTE));
    // Just after midnight another node's script may still write into the day that just closed: read, not kept.
    expect(total((await state.observe(at('b', day0 + DAY + 1_000))).ctit?.offer)).toBe(2);
    expect(total((await state.observe(at('c', day0 + DAY + SETTLE_MS))).ctit?.offer)).toBe(3);
    // Kept from now on: a write into the closed day (which no node makes once it has settled) is not
    // read again by this node, while today's hash always is.
    await client.hincrby(`${p}offer:off_1:ctit:20261121`, String(TEN_MINUTES), 1);
    const later = await state.observe(at('d', day0 + DAY + 60 * MINUTE));
    expect(later.ctit?.offer).toEqual(hist({ [TEN_MINUTES]: 4 }));
    expect(later.ctit?.segment).toEqual(hist({ [TEN_MINUTES]: 4 }));
    // A node that has kept nothing reads every day.
    const other = new RedisFraudState(redisClient(), { prefix: p, onError: () => undefined });
    expect((await other.observe(at('e', day0 + DAY + 61 * MINUTE))).ctit?.offer).toEqual(hist({ [TEN_MINUTES]: 6 }));
    // And a retry counts nothing on either node.
    expect((await state.observe(at('e', day0 + DAY + 62 * MINUTE))).ctit?.offer).toEqual(hist({ [TEN_MINUTES]: 5 }));
  });

  it('gives every key it writes an expiry', async () => {
    const p = prefix();
    const client = redisClient();
    const state = new RedisFraudState(client, { prefix: p, onError: () => undefined });
    // Redis expires keys on its own clock, so every time in this test is read from the real clock once:
    // a fixed click time mixed with the real one made the click's keys expire as the calendar moved on.
    const now = Date.now();
    state.recordClick({ offerId: 'off_1', publisherId: 'pub_1', sub1: 'a', address: parseAddress('198.51.100.7') ?? null, at: new Date(now) });
    await state.flush();
    await state.observe(conversion({ at: now, clickAt: now - 10 * MINUTE, clickExpiresAt: now + 86_400_000, spreadOf: ['198.51.100.7'] }));
    const keys = await client.keys(`${p}*`);
    expect(keys.length).toBeGreaterThanOrEqual(8);
    expect(keys.some((k) => k.includes(':pub:'))).toBe(true);
    for (const key of keys) expect(await client.pttl(key), key).toBeGreaterThan(0);
  });
});

describe('redis scoring state when Redis is unreachable', () => {
  it('rejects observe and counts click failures without throwing', async () => {
    const dead = new Redis({ port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    dead.on('error', () => undefined);
    const errors: string[] = [];
    const state = new RedisFraudState(dead, { prefix: 'x:', onError: (op) => errors.push(op) });
    await expect(state.observe(conversion())).rejects.toThrow();
    expect(() => state.recordClick({ offerId: 'o', publisherId: 'p', sub1: null, address: null, at: new Date() })).not.toThrow();
    await state.flush();
    expect(errors).toEqual(['click']);
    dead.disconnect();
  });
});
