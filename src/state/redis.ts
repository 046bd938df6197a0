import { Redis } from 'ioredis';

/**
 * The shared Redis, when REDIS_URL is set: rate limits, replay caches and fraud counters that must be
 * counted across every engine node. Commands fail fast instead of queueing while Redis is down, so a
 * Redis outage degrades those features (documented per feature) but never stalls the intake.
 */
export function connectRedis(url: string): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: 1,
    enableOfflineQueue: true,
    connectTimeout: 2000,
    commandTimeout: 1000,
    lazyConnect: false,
  });
}
