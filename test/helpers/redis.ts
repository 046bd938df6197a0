import { type Cluster, Redis } from 'ioredis';
import { afterAll, inject } from 'vitest';
import { connectRedis, redisReady } from '../../src/state/redis.js';

/**
 * Clients of the real redis-server that global-setup.ts starts, closed when the test file ends.
 * `url` is null where the machine has no redis-server (its tests skip; CI never does).
 */
export function testRedis(): { url: string | null; client: () => Redis } {
  const url = inject('redisUrl');
  const clients: Redis[] = [];
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
  });
  return {
    url,
    client: () => {
      const client = new Redis(url as string, { maxRetriesPerRequest: 1 });
      clients.push(client);
      return client;
    },
  };
}

/**
 * Clients of the three-master Redis Cluster that global-setup.ts starts, made as the engine makes
 * them (src/state/redis.ts), ready before they are returned, closed when the test file ends.
 */
export function testRedisCluster(): { url: string | null; client: () => Promise<Cluster> } {
  const url = inject('redisClusterUrl');
  const clients: Cluster[] = [];
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
  });
  return {
    url,
    client: async () => {
      const client = connectRedis(url as string, true) as Cluster;
      clients.push(client);
      if (!(await redisReady(client, 10_000))) throw new Error('the test Redis Cluster is not ready');
      return client;
    },
  };
}
