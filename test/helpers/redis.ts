import { Redis } from 'ioredis';
import { afterAll, inject } from 'vitest';

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
