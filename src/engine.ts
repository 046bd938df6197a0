import { randomBytes } from 'node:crypto';
import { TokenVerifier } from './auth/tokens.js';
import { bumpCatalogVersion, Catalog } from './catalog/catalog.js';
import { ClickLookup } from './click/click-lookup.js';
import { ClickBatchStore, isUnconfirmedCopy, type ClickRow } from './click/click-store.js';
import { maintainPartitions, partitionedTables, trimmedTables, trimTables } from './db/partitions.js';
import type { Config } from './config.js';
import { BatchWriter } from './db/batch-writer.js';
import { DatabaseBreaker } from './db/breaker.js';
import { hasCitus, onCitus, useCitusForms } from './db/citus.js';
import { cutSockets, serverKey } from './db/sockets.js';
import { APPLICATION_NAME, connect, isDatabaseUnavailable, PLANNED_POOL_MAX, TX_POOL_MAX, type Sql } from './db/database.js';
import type { FieldIssue } from './errors.js';
import type { Logger } from './logger.js';
import { createMetrics, type Metrics } from './metrics.js';
import { connectRedis, redisReady, type RedisClient } from './state/redis.js';
import { PostbackIntake } from './postback/intake.js';
import { DeliveryWorker } from './delivery/worker.js';
import { systemResolver, type Resolver } from './delivery/destination-guard.js';
import type { PostbackScorer } from './postback/types.js';
import { createFraudMetrics } from './fraud/metrics.js';
import { fraudRuleRegistry } from './fraud/registry.js';
import { Scorer } from './fraud/scorer.js';
import { createFraudState, type FraudState } from './fraud/state.js';
import { createPixelWriter, type PixelRow } from './pixel/pixel-store.js';
import { Reconciler } from './reconcile/reconciler.js';
import { lastSuccessfulRunAt } from './reconcile/runs-store.js';
import { scheduleReconciler, type ReconcileSchedule } from './reconcile/schedule.js';

/**
 * The engine's long-lived parts, built once per process (or per test) and handed to the HTTP layer.
 * Terminology:
 * - click: a user's visit through `/c/:offerId`, identified by a self-authenticating click ID.
 * - postback: an advertiser's server-to-server call saying a click converted.
 * - conversion: a committed postback, unique per (advertiser, txid), with a fraud decision.
 * - delivery: one outbound postback to a publisher, retried until delivered or expired.
 */

const PARTITION_MAINTENANCE_MS = 3_600_000;

export type FraudRuleRegistry = { validateOverrides(rules: Record<string, Record<string, unknown>>): FieldIssue[] };

export type Engine = {
  config: Config;
  /** The engine's clock: what time-bucketing code reads, so tests can pin it. */
  now: () => Date;
  /** Plain queries. Never call `begin` on it: see TX_POOL_MAX. */
  sql: Sql;
  /** Transactions only. */
  txSql: Sql;
  /** The write path's hottest statements, on forced generic plans (PLANNED_POOL_MAX). */
  plannedSql: Sql;
  log: Logger;
  /** Deadline and circuit breaker for every request-path wait on PostgreSQL (db/breaker.ts). */
  breaker: DatabaseBreaker;
  catalog: Catalog;
  metrics: Metrics;
  tokens: TokenVerifier;
  clickWriter: BatchWriter<ClickRow>;
  clickLookup: ClickLookup;
  /** Shared state across nodes; undefined means one node with in-process memory. */
  redis: RedisClient | undefined;
  fraudRules?: FraudRuleRegistry;
  /** Fraud scoring's shared counters (Redis or memory); the click route counts clicks in it. */
  fraudState: FraudState;
  intake: PostbackIntake;
  /** Outbound postbacks: this process's delivery worker (also serves replays). */
  deliveries: DeliveryWorker;
  /** DNS for outbound destinations: the admin API checks a publisher's host with the resolver deliveries use. */
  resolve: Resolver;
  /** Pixel hits waiting for their batched insert; tests flush it. */
  pixelWriter: BatchWriter<PixelRow>;
  /** Reconciliation runs (API, CLI, and RECONCILE_CRON unless it is "off"). */
  reconciler: Reconciler;
  /** Set by main on SIGTERM: /readyz answers 503 during SHUTDOWN_DELAY_S while requests are still served. */
  draining: boolean;
  /** Called by main on SIGTERM after the HTTP server stopped taking requests. */
  close(): Promise<void>;
};

/** Tests may replace the fraud scorer to isolate what they measure; production always builds the real one. */
export type EngineOptions = {
  scorer?: PostbackScorer;
  /** DNS for outbound destinations (publisher checks and deliveries); tests substitute it. */
  resolve?: Resolver;
  /** The wall clock that picks which day partitions exist; tests pin it to cross day, month and year ends. */
  now?: () => Date;
};

export async function createEngine(config: Config, sql: Sql, log: Logger, opts: EngineOptions = {}): Promise<Engine> {
  if (!config.databaseUrl) throw new Error('createEngine needs config.databaseUrl');
  const txSql = connect(config.databaseUrl, { max: TX_POOL_MAX });
  useCitusForms(await hasCitus(sql));
  // Citus plans a multi-shard statement only with its parameters bound, so it cannot run a forced generic plan.
  const plannedSql = connect(config.databaseUrl, { max: PLANNED_POOL_MAX, genericPlans: !onCitus() });
  const metrics = createMetrics();
  const servers = new Set([sql, txSql, plannedSql].map((pool) => serverKey((pool as unknown as { options: Parameters<typeof serverKey>[0] }).options)));
  const breaker = new DatabaseBreaker({
    deadlineMs: config.dbDeadlineMs,
    onStateChange: (state) => {
      metrics.dbCircuitOpen.set(state === 'closed' ? 0 : 1);
      if (state === 'closed') {
        log.info('PostgreSQL answers again; circuit closed');
        return;
      }
      if (state !== 'open') return;
      // Connections to a server that stopped answering may never answer again (db/sockets.ts).
      let cut = 0;
      for (const server of servers) cut += cutSockets(server, 'PostgreSQL stopped answering; connection cut by the circuit breaker');
      log.warn({ cut }, 'PostgreSQL unreachable; circuit open, requests answered 503 until a probe succeeds');
    },
  });
  const redis = config.redisUrl ? connectRedis(config.redisUrl, config.redisCluster) : undefined;
  redis?.on('error', (err) => log.warn({ err: err.message }, 'redis error'));
  redis?.on('node error', (err, node) => log.warn({ err: err?.message, node }, 'redis cluster node error'));
  if (redis && !(await redisReady(redis))) log.warn('Redis Cluster not ready; its features degrade until it is');
  await ensureClickKey(txSql);
  const now = opts.now ?? (() => new Date());
  const partitioned = partitionedTables(config.retentionDays);
  // At start only the partitions are made (quickly, before traffic); retention runs with the timer.
  await maintainPartitions(sql, partitioned.map((t) => ({ ...t, retentionDays: Number.POSITIVE_INFINITY })), now());
  const catalog = new Catalog(sql, (err) => log.error({ err }, 'catalog refresh failed'), (work) => breaker.run(work));
  await catalog.listen();
  await catalog.load();
  catalog.startPolling();

  const clickBatches = new ClickBatchStore(sql, config.databaseUrl);
  const clickWriter = new BatchWriter<ClickRow>({
    name: 'clicks',
    write: (rows, attempt) => clickBatches.write(rows, attempt),
    keyOf: (row) => row.id,
    isTransient: (err) => isDatabaseUnavailable(err) || isUnconfirmedCopy(err),
    onFlush: (size, ms) => {
      metrics.batchSize.observe({ writer: 'clicks' }, size);
      metrics.batchDuration.observe({ writer: 'clicks' }, ms / 1000);
    },
    onError: (err, buffered) => log.error({ err, buffered }, 'click batch write failed; will retry'),
    onDrop: (count) => metrics.batchDropped.inc({ writer: 'clicks' }, count),
  });
  metrics.sources.bufferedRows.set('clicks', () => clickWriter.pending);
  metrics.sources.dbConnections = async () => {
    const rows = await breaker.run(() => sql<{ state: string | null; n: number }[]>`
      select state, count(*)::int as n from pg_stat_activity
      where application_name = ${APPLICATION_NAME} and pid <> pg_backend_pid() group by state`);
    return rows.map((r) => ({ state: r.state ?? 'unknown', n: r.n }));
  };
  metrics.sources.lastReconcileSuccess = () => breaker.run(() => lastSuccessfulRunAt(sql));
  metrics.sources.startedAt = Math.floor(now().getTime() / 1000);

  const partitionTimer = setInterval(() => {
    maintainPartitions(sql, partitioned, now())
      .then(async (r) => {
        const trimmed = await trimTables(sql, trimmedTables(config.retentionDays), now());
        if (r.dropped.length > 0 || r.deferred.length > 0 || trimmed > 0) log.info({ ...r, trimmed }, 'partition retention');
      })
      .catch((err) => log.error({ err }, 'partition maintenance failed'));
  }, PARTITION_MAINTENANCE_MS);
  partitionTimer.unref();

  const fraudMetrics = createFraudMetrics(metrics.registry);
  const fraudState = createFraudState(redis, (op) => fraudMetrics.stateErrors.inc({ op }));
  const scorer = opts.scorer ?? new Scorer({ state: fraudState, metrics: fraudMetrics });
  const intake = new PostbackIntake({ config, sql, txSql, plannedSql, redis, metrics, log, breaker }, scorer);
  const resolve = opts.resolve ?? systemResolver;
  const deliveries = new DeliveryWorker({ sql, txSql, plannedSql, catalog, log, registry: metrics.registry, config }, { resolve });
  await deliveries.start();
  const pixelWriter = createPixelWriter(sql, metrics, log);
  const reconciler = new Reconciler({ sql, config, log });
  const reconcileSchedule: ReconcileSchedule | undefined =
    config.reconcileCron === 'off' ? undefined : scheduleReconciler(config.reconcileCron, reconciler, config.refireWindowS, log);

  return {
    config,
    now,
    intake,
    fraudRules: fraudRuleRegistry,
    fraudState,
    deliveries,
    resolve,
    pixelWriter,
    reconciler,
    sql,
    txSql,
    plannedSql,
    log,
    breaker,
    catalog,
    metrics,
    tokens: new TokenVerifier(sql, config.adminToken),
    clickWriter,
    clickLookup: new ClickLookup(plannedSql, clickWriter),
    redis,
    draining: false,
    async close() {
      clearInterval(partitionTimer);
      catalog.stopPolling();
      await catalog.stopListening();
      await reconcileSchedule?.stop();
      await reconciler.close();
      await deliveries.stop();
      await intake.close();
      await clickWriter.close();
      await clickBatches.close();
      await pixelWriter.close();
      await fraudState.close();
      await redis?.quit().catch(() => undefined);
      await txSql.end({ timeout: 5 });
      await plannedSql.end({ timeout: 5 });
    },
  };
}

/** The first node to start on an empty database creates click key 1; everyone else finds it. */
async function ensureClickKey(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    const inserted = await tx`insert into click_keys (kid, secret) values (1, ${randomBytes(32)}) on conflict (kid) do nothing returning kid`;
    if (inserted.length > 0) await bumpCatalogVersion(tx);
  });
}
