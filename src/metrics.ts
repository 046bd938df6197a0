import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per engine instance (tests build several apps in one process). */
export type Metrics = ReturnType<typeof createMetrics>;

/** Sources read at scrape time; the engine fills them in as its parts come up. */
export type MetricSources = {
  bufferedRows: Map<string, () => number>;
  dbConnections?: () => Promise<{ state: string; n: number }[]>;
  /** Unix seconds: when the last reconciliation run (any node) finished successfully; undefined if none has. */
  lastReconcileSuccess?: () => Promise<number | undefined>;
  /** Unix seconds this engine started: the floor of the reconcile gauge, so a reconciler that never runs still ages. */
  startedAt?: number;
};

/**
 * Every engine metric starts with this (Prometheus naming: one application prefix, `_total` on
 * counters, base units as suffix). prom-client's default process and Node.js metrics keep their
 * standard names, which shared dashboards expect.
 */
export const METRIC_PREFIX = 'postback_engine_';

export function createMetrics() {
  const registry = new Registry();
  const sources: MetricSources = { bufferedRows: new Map() };
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    sources,
    /** The text `/metrics` answers: this registry's, or under WORKERS > 1 the whole box's (ops/cluster-metrics.ts). */
    scrape: (): Promise<string> => registry.metrics(),
    httpRequests: new Counter({
      name: 'postback_engine_http_requests_total',
      help: 'HTTP requests by route, method and status code',
      labelNames: ['route', 'method', 'status'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'postback_engine_http_request_duration_seconds',
      help: 'HTTP request latency by route',
      labelNames: ['route', 'method'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: 'postback_engine_db_batch_rows',
      help: 'Rows per batched write, by writer',
      labelNames: ['writer'] as const,
      buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
      registers: [registry],
    }),
    batchDuration: new Histogram({
      name: 'postback_engine_db_batch_duration_seconds',
      help: 'Time to write one batch, by writer',
      labelNames: ['writer'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    batchBuffered: new Gauge({
      name: 'postback_engine_db_batch_buffered_rows',
      help: 'Rows accepted but not yet written, by writer',
      labelNames: ['writer'] as const,
      registers: [registry],
      collect() {
        for (const [writer, read] of sources.bufferedRows) this.set({ writer }, read());
      },
    }),
    batchDropped: new Counter({
      name: 'postback_engine_db_batch_dropped_rows_total',
      help: 'Rows dropped because the buffer was full during a database outage',
      labelNames: ['writer'] as const,
      registers: [registry],
    }),
    dbConnections: new Gauge({
      name: 'postback_engine_db_pool_connections',
      help: "This engine's PostgreSQL connections by state (from pg_stat_activity)",
      labelNames: ['state'] as const,
      registers: [registry],
      async collect() {
        if (!sources.dbConnections) return;
        this.reset();
        // During an outage /metrics still answers (with the 503 counts an operator needs), without this gauge.
        const rows = await sources.dbConnections().catch(() => []);
        for (const r of rows) this.set({ state: r.state }, r.n);
      },
    }),
    postbacks: new Counter({
      name: 'postback_engine_postbacks_total',
      help: 'Postbacks by outcome (decision or error code)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    unavailable: new Counter({
      name: 'postback_engine_http_unavailable_total',
      help: '503 answers by route and reason (timeout, circuit_open, connection, not_migrated, ...)',
      labelNames: ['route', 'reason'] as const,
      registers: [registry],
    }),
    dbCircuitOpen: new Gauge({
      name: 'postback_engine_db_circuit_open',
      help: '1 while the PostgreSQL circuit breaker fails requests fast (open or probing), 0 when closed',
      registers: [registry],
    }),
    lastReconcileSuccess: new Gauge({
      name: 'postback_engine_reconcile_last_success_timestamp_seconds',
      help: 'Unix time the last reconciliation run (on any node) finished successfully; before any has, when this engine started',
      registers: [registry],
      async collect() {
        if (!sources.lastReconcileSuccess) return;
        // Unknown during an outage (NaN, which no alert compares true): better than a stale age.
        const at = await sources.lastReconcileSuccess().catch(() => NaN);
        this.set(Math.max(at ?? 0, sources.startedAt ?? 0) || NaN);
      },
    }),
    commitBatchSize: new Histogram({
      name: 'postback_engine_commit_batch_postbacks',
      help: 'Postbacks committed per PostgreSQL transaction (group commit)',
      buckets: [1, 2, 4, 8, 16, 32, 64, 128],
      registers: [registry],
    }),
  };
}
