import { randomBytes } from 'node:crypto';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { clickIncrements, clusterTag, planObservation, type Plan } from '../src/fraud/state-keys.js';
import { RedisFraudState } from '../src/fraud/state-redis.js';
import type { ConversionObservation } from '../src/fraud/state.js';
import { parseAddress } from '../src/net/cidr.js';
import { PostbackRateLimits } from '../src/postback/rate-limits.js';
import { RecentCache, type CachedResult } from '../src/postback/recent-cache.js';
import { connectRedis, hashTag, parseSeeds, redisReady } from '../src/state/redis.js';
import { testRedisCluster } from './helpers/redis.js';
import { startRedisCluster, type LocalRedisCluster } from './helpers/redis-cluster.js';

/**
 * Redis Cluster: how it is configured, and the postback caches on a real three-master cluster,
 * where a command may only name keys of one hash slot.
 */

const { url: clusterUrl, client: clusterClient } = testRedisCluster();
let nodes: Cluster[] = [];
beforeAll(async () => {
  if (clusterUrl) nodes = await Promise.all([clusterClient(), clusterClient()]);
});

describe('configuration', () => {
  it('REDIS_CLUSTER=true takes one or more comma-separated seed URLs', () => {
    const config = loadConfig({ REDIS_CLUSTER: 'true', REDIS_URL: 'redis://10.0.0.1:7000, redis://10.0.0.2:7001' });
    expect(config).toMatchObject({ redisCluster: true, redisUrl: 'redis://10.0.0.1:7000, redis://10.0.0.2:7001' });
    expect(loadConfig({ REDIS_CLUSTER: 'true', REDIS_URL: 'redis://10.0.0.1:7000' }).redisCluster).toBe(true);
    expect(loadConfig({ REDIS_URL: 'redis://10.0.0.1:6379/2' })).toMatchObject({ redisCluster: false, redisUrl: 'redis://10.0.0.1:6379/2' });
  });

  it('refuses a node list without REDIS_CLUSTER, a cluster without nodes, a database number and a non-redis URL, naming the variable', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://a:7000,redis://b:7000' })).toThrow(/REDIS_URL lists several nodes: set REDIS_CLUSTER=true/);
    expect(() => loadConfig({ REDIS_CLUSTER: 'true' })).toThrow(/REDIS_CLUSTER=true needs REDIS_URL/);
    expect(() => loadConfig({ REDIS_CLUSTER: 'true', REDIS_URL: 'redis://a:7000/3' })).toThrow(/REDIS_URL: a Redis Cluster has only database 0/);
    expect(() => loadConfig({ REDIS_CLUSTER: 'true', REDIS_URL: 'redis://a:7000,http://b:7000' })).toThrow(/REDIS_URL: must be a redis:\/\/ URL/);
    expect(() => loadConfig({ REDIS_CLUSTER: 'maybe', REDIS_URL: 'redis://a:7000' })).toThrow(/REDIS_CLUSTER/);
  });

  it('reads host, port (6379 when omitted), credentials and TLS from each seed URL', () => {
    expect(parseSeeds('rediss://app:p%40ss@cache.internal:7000,redis://[::1]')).toEqual([
      { host: 'cache.internal', port: 7000, username: 'app', password: 'p@ss', tls: true },
      { host: '::1', port: 6379, username: '', password: '', tls: false },
    ]);
  });

  it('finds the hash tag as Redis does: the first non-empty {...}, else the whole key', () => {
    expect(hashTag('pbe:fraud:offer:{off_1}:clk:20260101')).toBe('off_1');
    expect(hashTag('a{b}{c}')).toBe('b');
    expect(hashTag('a{}{c}')).toBe('a{}{c}');
    expect(hashTag('a{b')).toBe('a{b');
    expect(hashTag('pb:res:adv_1:tx_1')).toBe('pb:res:adv_1:tx_1');
  });
});

const result = (conversionId: string): CachedResult => ({
  conversionId,
  clickId: 'clk_1',
  payoutMinor: '250',
  currency: 'USD',
  status: 'approved',
  decision: 'accepted',
  reasons: [],
});

describe.skipIf(!clusterUrl)('postback caches on a Redis Cluster', () => {
  it('a webhook-id reused with other content is refused on the other node; a committed result is read back on both', async () => {
    const [a, b] = nodes.map((c) => new RecentCache(c)) as [RecentCache, RecentCache];
    const adv = `adv_${randomBytes(6).toString('hex')}`;
    const txid = `tx_${randomBytes(6).toString('hex')}`;
    const message = { kind: 'webhook', id: `msg_${randomBytes(6).toString('hex')}`, hashHex: 'aa'.repeat(32) };
    // The replay key and the result key are independent: they live in different slots here, which
    // a pipeline could not span.
    const slots = await Promise.all([`pb:msg:${adv}:webhook:${message.id}`, `pb:res:${adv}:${txid}`].map((k) => nodes[0]?.cluster('KEYSLOT', k)));
    expect(slots[0]).not.toBe(slots[1]);

    expect(await a.lookup(adv, txid, message)).toEqual({ replay: 'new', result: undefined });
    await a.remember(adv, txid, result('conv_1'));
    expect(await b.lookup(adv, txid, message)).toEqual({ replay: 'same', result: result('conv_1') });
    expect(await b.lookup(adv, `tx_other`, { ...message, hashHex: 'bb'.repeat(32) })).toEqual({ replay: 'different', result: undefined });
    // The first content stays the one vouched for.
    expect(await nodes[1]?.get(`pb:msg:${adv}:webhook:${message.id}`)).toBe('aa'.repeat(32));
  });
});

const HOUR = 3_600_000;
const AT = Date.UTC(2026, 2, 10, 12, 30);

function observation(overrides: Partial<ConversionObservation> = {}): ConversionObservation {
  return {
    advertiserId: 'adv_1',
    txid: 'tx_1',
    at: AT,
    addresses: ['198.51.100.7', '2001:db8:1:2::/64'],
    spreadOf: ['198.51.100.7'],
    addressWindowMs: 2 * HOUR,
    clickId: 'clk_1',
    clickAt: AT - HOUR,
    event: 'conversion',
    clickExpiresAt: AT + 24 * HOUR,
    offerId: 'off_1',
    segment: { publisherId: 'pub_1', sub1: 'a b', windowMs: 24 * HOUR },
    ...overrides,
  };
}

/** The keys one script part names together: per address, the click's, the offer's with its cohorts and histograms. */
function families(plan: Plan): { addresses: string[][]; click: string[]; offer: string[] } {
  const cohorts = [plan.segment, plan.publisher].flatMap((c) => (c ? [c.zset, ...c.clickKeys] : []));
  const ctit = plan.ctit ? [...plan.ctit.offerDays, ...plan.ctit.publisherDays, ...plan.ctit.segmentDays] : [];
  return {
    addresses: plan.addresses.map((a) => [a.zset, ...a.clickKeys, ...(a.publisherKeys ?? [])]),
    click: [plan.click.set],
    offer: [plan.offer.zset, ...plan.offer.dayKeys, ...cohorts, ...ctit],
  };
}

describe('fraud state keys', () => {
  it('keep the names they had on one Redis and in memory: no braces, so an upgrade keeps every counter', () => {
    const plan = planObservation('pbe:fraud:', observation());
    expect(plan.addresses.map((a) => a.zset)).toEqual(['pbe:fraud:addr:198.51.100.7', 'pbe:fraud:addr:2001:db8:1:2::/64']);
    expect(plan.click.set).toBe('pbe:fraud:click:clk_1:conversion');
    expect(plan.offer.zset).toBe('pbe:fraud:offer:off_1');
    expect(plan.segment?.zset).toBe('pbe:fraud:seg:off_1:pub_1:a%20b');
    expect(plan.publisher?.zset).toBe('pbe:fraud:pub:off_1:pub_1');
    const click = { offerId: 'off_1', publisherId: 'pub_1', sub1: 'a b', address: parseAddress('198.51.100.7') ?? null, at: new Date(AT) };
    expect(clickIncrements('pbe:fraud:', click).map((i) => i.key)).toEqual([
      'pbe:fraud:offer:off_1:clk:20260310',
      `pbe:fraud:seg:off_1:pub_1:a%20b:clk:${Math.floor(AT / HOUR)}`,
      `pbe:fraud:pub:off_1:pub_1:clk:${Math.floor(AT / HOUR)}`,
      `pbe:fraud:addr:198.51.100.7:clk:${Math.floor(AT / HOUR)}`,
      `pbe:fraud:addr:198.51.100.7:pub:${Math.floor(AT / HOUR)}`,
    ]);
  });

  it.skipIf(!clusterUrl)("on a cluster, put each family's keys in one slot and different addresses, clicks and offers in different slots", async () => {
    const client = nodes[0] as Cluster;
    const slot = (key: string) => client.cluster('KEYSLOT', key) as Promise<number>;
    const slotsOf = async (keys: string[]) => new Set(await Promise.all(keys.map(slot)));
    const observations = ['1', '2', '3', '4'].map((i) =>
      observation({ addresses: [`198.51.100.${i}`], spreadOf: [`198.51.100.${i}`], clickId: `clk_${i}`, offerId: `off_${i}` }),
    );
    const seen = new Set<number>();
    for (const obs of observations) {
      const f = families(planObservation('pbe:fraud:', obs, clusterTag));
      const click = { offerId: obs.offerId, publisherId: 'pub_1', sub1: 'a b', address: parseAddress(obs.addresses[0] as string) ?? null, at: new Date(AT) };
      const clickKeys = clickIncrements('pbe:fraud:', click, clusterTag).map((i) => i.key);
      // The click route's counters belong to the offer's and the address's families.
      const offerKeys = [...f.offer, ...clickKeys.filter((k) => !k.includes(':addr:'))];
      const addressKeys = [...(f.addresses[0] as string[]), ...clickKeys.filter((k) => k.includes(':addr:'))];
      for (const keys of [addressKeys, f.click, offerKeys]) {
        const slots = await slotsOf(keys);
        expect(slots.size, keys.join(' ')).toBe(1);
        seen.add([...slots][0] as number);
      }
    }
    // Four observations of three families each: twelve slots, no family of one on another's slot.
    expect(seen.size).toBe(12);
  });
});

describe.skipIf(!clusterUrl)('one master of three down', () => {
  let own: LocalRedisCluster;
  let client: Cluster;
  beforeAll(async () => {
    own = await startRedisCluster({ partialCoverage: true });
    client = connectRedis(own.url, true) as Cluster;
    if (!(await redisReady(client, 10_000))) throw new Error('cluster not ready');
  }, 30_000);
  afterAll(async () => {
    await client?.quit().catch(() => undefined);
    await own?.stop();
  });

  it("keeps serving the other masters' keys; the lost master's rate limits fall back to the node's memory, its cache entries are misses, its fraud counts fail", async () => {
    const lostPort = own.ports[2] as number;
    const slots = await client.cluster('SLOTS');
    const portOf = async (key: string) => {
      const slot = (await client.cluster('KEYSLOT', key)) as number;
      return slots.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1];
    };
    /** The first of `candidates` whose key is (or is not) on the master about to be lost. */
    const pick = async (candidates: string[], key: (c: string) => string, lost: boolean) => {
      for (const c of candidates) if (((await portOf(key(c))) === lostPort) === lost) return c;
      throw new Error('no candidate on the wanted master');
    };
    const addresses = Array.from({ length: 64 }, (_, i) => `198.51.100.${i}`);
    const txids = Array.from({ length: 64 }, (_, i) => `tx_${i}`);
    const [liveAddress, lostAddress] = [await pick(addresses, (a) => `rl:addr:${a}`, false), await pick(addresses, (a) => `rl:addr:${a}`, true)];
    const [liveTx, lostTx] = [await pick(txids, (t) => `pb:res:adv_1:${t}`, false), await pick(txids, (t) => `pb:res:adv_1:${t}`, true)];
    const offers = Array.from({ length: 64 }, (_, i) => `off_${i}`);
    const [liveOffer, lostOffer] = [await pick(offers, (o) => `pbe:fraud:offer:{${o}}`, false), await pick(offers, (o) => `pbe:fraud:offer:{${o}}`, true)];
    const fraudAddress = await pick(addresses, (a) => `pbe:fraud:addr:{${a}}`, false);
    const clickIds = await Promise.all(['a', 'b', 'c'].map((n) => pick(Array.from({ length: 64 }, (_, i) => `clk_${n}${i}`), (c) => `pbe:fraud:click:{${c}}:conversion`, false)));

    const lost = own.processes[2];
    const exited = new Promise((resolve) => lost?.once('exit', resolve));
    lost?.kill('SIGKILL');
    await exited;

    const limits = new PostbackRateLimits(client, 2);
    const three = async (address: string) => {
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push((await limits.check(undefined, undefined, address)).ok);
      return answers;
    };
    // Both still limited: the live one in the cluster, the lost one by the insurance limiter.
    expect(await three(liveAddress)).toEqual([true, true, false]);
    expect(await client.get(`rl:addr:${liveAddress}`)).toBe('3');
    expect(await three(lostAddress)).toEqual([true, true, false]);
    await expect(client.get(`rl:addr:${lostAddress}`)).rejects.toThrow();

    const cache = new RecentCache(client);
    await cache.remember('adv_1', liveTx, result('conv_live'));
    await cache.remember('adv_1', lostTx, result('conv_lost'));
    expect(await cache.lookup('adv_1', liveTx, undefined)).toEqual({ replay: 'new', result: result('conv_live') });
    expect(await cache.lookup('adv_1', lostTx, undefined)).toEqual({ replay: 'new', result: undefined });

    const errors: string[] = [];
    const state = new RedisFraudState(client, { prefix: 'pbe:fraud:', onError: (op) => errors.push(op) });
    const conversion = (offerId: string, clickId: string, txid: string) =>
      observation({ addresses: [fraudAddress], spreadOf: [], clickId, offerId, txid, segment: { publisherId: 'pub_1', sub1: null, windowMs: 24 * HOUR } });
    const live = await state.observe(conversion(liveOffer, clickIds[0] as string, 'tx_live'));
    expect([live.addresses[0]?.conversions, live.clickConversions, live.offerToday]).toEqual([1, 1, 1]);
    // The offer's part fails, so the conversion has no counts (the scorer marks their rules not evaluated).
    await expect(state.observe(conversion(lostOffer, clickIds[1] as string, 'tx_lost'))).rejects.toThrow();
    // A click flush loses the lost master's counters (one error for the flush) and writes the others.
    for (const offerId of [liveOffer, lostOffer]) state.recordClick({ offerId, publisherId: 'pub_1', sub1: null, address: null, at: new Date(AT) });
    await state.flush();
    expect(errors).toEqual(['click']);
    // The failed conversion's address part did run (the parts are not atomic together): the address counts three.
    const after = await state.observe(conversion(liveOffer, clickIds[2] as string, 'tx_live_2'));
    expect([after.addresses[0]?.conversions, after.offerToday, after.offerBaseline.clicks]).toEqual([3, 2, 1]);
  }, 30_000);
});
