import { Cluster, Redis } from 'ioredis';

/**
 * The shared Redis, when REDIS_URL is set: rate limits, replay caches and fraud counters that must be
 * counted across every engine node. Commands fail fast instead of queueing while Redis is down, so a
 * Redis outage degrades those features (documented per feature) but never stalls the intake.
 *
 * With REDIS_CLUSTER=true, REDIS_URL names one or more seed nodes of a Redis Cluster (comma-separated
 * redis:// URLs); the client learns the rest of the cluster from them. Every command the engine sends
 * to Redis names keys of one hash slot (a script or transaction's keys share one `{tag}`), so a
 * cluster serves the same features as one server.
 */

export type RedisClient = Redis | Cluster;

const CONNECT_TIMEOUT_MS = 2000;
const COMMAND_TIMEOUT_MS = 1000;

export function connectRedis(url: string): Redis;
export function connectRedis(url: string, cluster: boolean): RedisClient;
export function connectRedis(url: string, cluster = false): RedisClient {
  if (!cluster) {
    return new Redis(url, {
      maxRetriesPerRequest: 1,
      enableOfflineQueue: true,
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: COMMAND_TIMEOUT_MS,
      lazyConnect: false,
    });
  }
  const seeds = parseSeeds(url);
  const first = seeds[0] as Seed;
  return new Cluster(
    seeds.map((s) => ({ host: s.host, port: s.port })),
    {
      // A cluster client has no per-command timeout while it is not connected: a queued command would
      // wait for the cluster however long it is down. Refused at once instead (the node waits for the
      // cluster at start-up, see redisReady).
      enableOfflineQueue: false,
      // A shard that stopped answering is retried a few times (a failover takes one slot-map refresh),
      // then its commands fail, within about half a second, rather than ioredis's 16 retries.
      maxRedirections: 5,
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      lazyConnect: false,
      redisOptions: {
        maxRetriesPerRequest: 1,
        connectTimeout: CONNECT_TIMEOUT_MS,
        commandTimeout: COMMAND_TIMEOUT_MS,
        ...(first.username ? { username: first.username } : {}),
        ...(first.password ? { password: first.password } : {}),
        ...(first.tls ? { tls: {} } : {}),
      },
    },
  );
}

/**
 * Waits until a cluster client is ready (it refuses commands until then), at most `timeoutMs`; a
 * cluster that is down does not stop the engine from starting, as one Redis does not.
 */
export async function redisReady(client: RedisClient, timeoutMs = CONNECT_TIMEOUT_MS): Promise<boolean> {
  if (!(client instanceof Cluster) || client.status === 'ready') return true;
  // Not events.once: it gives up on the first 'error', and a cluster reports every refused connection.
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(false), timeoutMs);
    const onReady = () => done(true);
    const done = (ready: boolean) => {
      clearTimeout(timer);
      client.off('ready', onReady);
      resolve(ready);
    };
    client.on('ready', onReady);
  });
}

export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

type Seed = { host: string; port: number; username: string; password: string; tls: boolean };

/** Comma-separated redis:// or rediss:// URLs; credentials and TLS of the first apply to every node. */
export function parseSeeds(list: string): Seed[] {
  return list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((text) => {
      const u = new URL(text);
      return {
        host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
        port: u.port ? Number(u.port) : 6379,
        username: decodeURIComponent(u.username),
        password: decodeURIComponent(u.password),
        tls: u.protocol === 'rediss:',
      };
    });
}

/**
 * The part of a key Redis Cluster hashes: the text between the first `{` and the next `}` when that
 * is not empty, else the whole key. Keys with one tag share one hash slot.
 */
export function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : key;
}
