import postgres from 'postgres';
import { trackedSocketFactory } from './sockets.js';

/** Per process, so pg_stat_activity tells this engine's connections from other nodes'. */
export const APPLICATION_NAME = `postback-engine-${process.pid}`;

export type Sql = postgres.Sql<{ bigint: bigint }>;
export type TxSql = postgres.TransactionSql<{ bigint: bigint }>;

/** Plain-query pool size per engine process; with the other pools a node holds at most 33 connections. */
export const POOL_MAX = 20;

/**
 * Transactions get a pool of their own. postgres.js 3.4.9 can send a transaction's BEGIN without
 * reserving its connection when that BEGIN fills a connection's query pipeline (porsager/postgres
 * #823, #1189), letting unrelated queries run inside the transaction. Pipelines only fill where
 * plain queries share connections; in a pool used for nothing but `begin()`, every busy connection
 * is reserved and a BEGIN always lands on an idle one.
 */
export const TX_POOL_MAX = 8;

/**
 * The write path's hottest statements get a pool of their own whose statements always use their
 * cached generic plan (`plan_cache_mode = force_generic_plan`): click lookups (see click-store.ts),
 * the group commit's one statement (postback/commit-fresh.ts) and the delivery worker's claims
 * (delivery/store.ts). None of them has a parameter that prunes partitions at plan time, so a custom
 * plan is never better, yet PostgreSQL, left to choose, planned each call anew: with day partitions
 * on every table they touch, planning the claim cost more than running it (about 1 ms a call).
 */
export const PLANNED_POOL_MAX = 4;

export function connect(url: string, opts: { max?: number; onnotice?: (n: unknown) => void; genericPlans?: boolean } = {}): Sql {
  return postgres(url, {
    max: opts.max ?? POOL_MAX,
    // bigint columns come back as bigint: money in minor units must never pass through a float.
    types: { bigint: postgres.BigInt },
    connection: {
      TimeZone: 'UTC',
      application_name: APPLICATION_NAME,
      ...(opts.genericPlans ? { plan_cache_mode: 'force_generic_plan' } : {}),
    },
    onnotice: opts.onnotice ?? (() => undefined),
    idle_timeout: 30,
    connect_timeout: 5,
    // postgres.js backs reconnects off up to 20 s after repeated failures; a database back from an
    // outage would then sit unused for that long after the breaker's probe (db/breaker.ts) wanted it.
    // The breaker already rations attempts during an outage, so 1 s (jittered) is enough here.
    backoff: (retries: number) => Math.min(3 ** retries / 100, 1) * (0.5 + Math.random() / 2),
    // Tracked so that sockets to a server that went silent can be cut (db/sockets.ts). postgres.js
    // supports a socket factory but its types do not declare it.
    ...({ socket: trackedSocketFactory() } as object),
  }) as unknown as Sql;
}

/** Errors that mean PostgreSQL could not be reached or refused work: the caller answers 503, never 500. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return (
    code === 'ECONNREFUSED' ||
    code === 'ECONNRESET' ||
    code === 'CONNECT_TIMEOUT' ||
    code === 'CONNECTION_CLOSED' ||
    code === 'CONNECTION_ENDED' ||
    code === 'CONNECTION_DESTROYED' ||
    code === 'DATABASE_TIMEOUT' || // db/breaker.ts: no answer within the request's deadline
    code === 'CIRCUIT_OPEN' || // db/breaker.ts: failing fast during an outage
    code === '57P01' || // admin_shutdown
    code === '57P03' || // cannot_connect_now
    code === '53300' // too_many_connections
  );
}
