import { randomBytes } from 'node:crypto';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
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

  it("keeps serving the other masters' keys; the lost master's rate limits fall back to the node's memory and its cache entries are misses", async () => {
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
  }, 30_000);
});
