import { randomBytes } from 'node:crypto';
import type { Cluster } from 'ioredis';
import { beforeAll, describe, expect, it } from 'vitest';
import { PostbackRateLimits } from '../src/postback/rate-limits.js';
import { testRedis, testRedisCluster } from './helpers/redis.js';

/**
 * Postback rate limits, per source address and per advertiser, in memory and in Redis. With Redis
 * the counters are shared, so two engine nodes do not double an advertiser's allowance.
 */

const { url: redisUrl, client: redisClient } = testRedis();
const { url: clusterUrl, client: clusterClient } = testRedisCluster();
/** Two clients of the three-master cluster, as two engine nodes would hold. */
let cluster: Cluster[] = [];
beforeAll(async () => {
  if (clusterUrl) cluster = await Promise.all([clusterClient(), clusterClient()]);
});

const unique = (prefix: string) => `${prefix}_${randomBytes(6).toString('hex')}`;
const address = () => `198.51.${randomBytes(1)[0]}.${randomBytes(1)[0]}`;

async function decisions(limits: PostbackRateLimits[], n: number, advertiserId: string, perS: number, from: () => string) {
  return Promise.all(Array.from({ length: n }, (_, i) => (limits[i % limits.length] as PostbackRateLimits).check(advertiserId, perS, from())));
}

describe.each([
  { name: 'memory', skip: false, make: (addressPerS: number) => new PostbackRateLimits(undefined, addressPerS) },
  { name: 'redis', skip: !redisUrl, make: (addressPerS: number) => new PostbackRateLimits(redisClient(), addressPerS) },
  { name: 'redis cluster', skip: !clusterUrl, make: (addressPerS: number) => new PostbackRateLimits(cluster[0], addressPerS) },
])('$name rate limits', ({ skip, make }) => {
  it.skipIf(skip)('refuses an advertiser over its rate per second, from any address, with a Retry-After', async () => {
    const limits = make(1000);
    const answers = await decisions([limits], 8, unique('adv'), 5, address);
    expect(answers.filter((a) => a.ok)).toHaveLength(5);
    expect(answers.filter((a) => !a.ok)).toEqual(Array(3).fill({ ok: false, retryAfterS: 1, scope: 'advertiser' }));
  });

  it.skipIf(skip)('refuses one address over its rate, whatever advertiser it names, and names the address as the cause', async () => {
    const limits = make(4);
    const from = address();
    const answers = await Promise.all(Array.from({ length: 7 }, () => limits.check(unique('adv'), 1000, from)));
    expect(answers.filter((a) => a.ok)).toHaveLength(4);
    expect(answers.filter((a) => !a.ok)).toEqual(Array(3).fill({ ok: false, retryAfterS: 1, scope: 'address' }));
    // Another address is not affected.
    expect(await limits.check(unique('adv'), 1000, address())).toEqual({ ok: true });
  });

  it.skipIf(skip)('an unknown advertiser is limited by its address only', async () => {
    const limits = make(2);
    const from = address();
    const answers = await Promise.all(Array.from({ length: 3 }, () => limits.check(undefined, undefined, from)));
    expect(answers.map((a) => a.ok)).toEqual([true, true, false]);
  });
});

describe('shared across nodes', () => {
  it.skipIf(!redisUrl)('two nodes on one Redis share one advertiser allowance', async () => {
    const nodes = [new PostbackRateLimits(redisClient(), 1000), new PostbackRateLimits(redisClient(), 1000)];
    const answers = await decisions(nodes, 10, unique('adv'), 6, address);
    expect(answers.filter((a) => a.ok)).toHaveLength(6);
  });

  it.skipIf(!clusterUrl)('two nodes on one Redis Cluster share one advertiser allowance, and each address counts on its own shard', async () => {
    const nodes = cluster.map((c) => new PostbackRateLimits(c, 1000));
    const adv = unique('adv');
    const answers = await decisions(nodes, 10, adv, 6, address);
    expect(answers.filter((a) => a.ok)).toHaveLength(6);
    // In the cluster, not in either node's insurance limiter: all ten were counted on one key.
    expect(await cluster[0]?.get(`rl:adv:6:${adv}`)).toBe('10');
    // Address counters carry no hash tag, so many addresses spread over all three masters.
    const addresses = Array.from({ length: 30 }, address);
    await Promise.all(addresses.map((a) => nodes[0]?.check(undefined, undefined, a)));
    const owners = new Set(await Promise.all(addresses.map((a) => masterOf(cluster[0] as Cluster, `rl:addr:${a}`))));
    expect(owners.size).toBe(3);
  });
});

/** host:port of the master holding `key`, asked of the cluster (CLUSTER KEYSLOT, CLUSTER SLOTS). */
async function masterOf(client: Cluster, key: string): Promise<string> {
  expect(await client.exists(key)).toBe(1);
  const slot = (await client.cluster('KEYSLOT', key)) as number;
  const range = (await client.cluster('SLOTS')).find(([from, to]) => slot >= from && slot <= to);
  return `${range?.[2]?.[0]}:${range?.[2]?.[1]}`;
}
