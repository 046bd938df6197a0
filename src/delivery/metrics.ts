import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Sql } from '../db/database.js';
import { STATS_CACHE_MS } from './limits.js';

/**
 * Delivery metrics, registered on the engine's registry. Counts of open deliveries come from
 * PostgreSQL at scrape time (every node reports the shared queue; the partial index keeps it cheap);
 * final states are counters of transitions made by this node, since counting an ever-growing table
 * of delivered rows on every scrape would not stay cheap.
 *
 * Alerting: `postback_engine_delivery_endpoint_disabled_total` increases and `postback_engine_delivery_publishers_disabled` > 0 when a
 * publisher answered 410; `postback_engine_delivery_oldest_due_age_seconds` grows when workers fall behind.
 */

export type QueueStats = { pending: number; failed: number; due: number; oldestDueAgeS: number; publishersDisabled: number };

export async function queueStats(sql: Sql): Promise<QueueStats> {
  const [row] = await sql<QueueStats[]>`
    select
      count(*) filter (where d.state = 'pending')::int as pending,
      count(*) filter (where d.state = 'failed')::int as failed,
      count(*) filter (where due)::int as due,
      coalesce(extract(epoch from now() - min(d.next_attempt_at) filter (where due)), 0)::float8 as "oldestDueAgeS",
      (select count(*) from publishers where disabled_at is not null)::int as "publishersDisabled"
    from deliveries d
    join publishers p on p.id = d.publisher_id
    cross join lateral (
      select d.next_attempt_at <= now() and d.deadline_at > now() and p.disabled_at is null
             and (d.lease_until is null or d.lease_until <= now()) as due
    ) x
    where d.state in ('pending', 'failed')`;
  return row ?? { pending: 0, failed: 0, due: 0, oldestDueAgeS: 0, publishersDisabled: 0 };
}

const SCRAPE_DEADLINE_MS = 2000;

function withinScrapeDeadline<T>(query: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('queue stats timed out')), SCRAPE_DEADLINE_MS);
  });
  query.catch(() => undefined);
  return Promise.race([query, expired]).finally(() => clearTimeout(timer));
}

const UNKNOWN: QueueStats = { pending: NaN, failed: NaN, due: NaN, oldestDueAgeS: NaN, publishersDisabled: NaN };

export type LocalSources = { inFlight: () => number; openCircuits: () => number };

export function createDeliveryMetrics(registry: Registry, sql: Sql, local: LocalSources) {
  let cached: { at: number; stats: Promise<QueueStats> } | undefined;
  const stats = () => {
    const now = Date.now();
    // A scrape during a database outage reports NaN rather than failing the whole /metrics page.
    // Bounded too: on a silent connection the query would never settle and /metrics would hang with it.
    if (!cached || now - cached.at > STATS_CACHE_MS) cached = { at: now, stats: withinScrapeDeadline(queueStats(sql)).catch(() => UNKNOWN) };
    return cached.stats;
  };
  return {
    attempts: new Counter({
      name: 'postback_engine_delivery_attempts_total',
      help: 'Outbound postback attempts by result (delivered, http_error, timeout, network_error, refused, redirect, rate_limited, gone, aborted)',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    attemptDuration: new Histogram({
      name: 'postback_engine_delivery_attempt_duration_seconds',
      help: 'Time from sending an outbound postback to its response status (or to the failure), by result',
      labelNames: ['result'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    finished: new Counter({
      name: 'postback_engine_deliveries_finished_total',
      help: 'Deliveries that reached a final state on this node (delivered, expired)',
      labelNames: ['state'] as const,
      registers: [registry],
    }),
    endpointDisabled: new Counter({
      name: 'postback_engine_delivery_endpoint_disabled_total',
      help: 'Publisher endpoints disabled by this node after a 410 Gone',
      registers: [registry],
    }),
    open: new Gauge({
      name: 'postback_engine_deliveries_open',
      help: 'Deliveries not yet final, by state (pending: never tried; failed: tried, retry scheduled or endpoint disabled)',
      labelNames: ['state'] as const,
      registers: [registry],
      async collect() {
        const s = await stats();
        this.set({ state: 'pending' }, s.pending);
        this.set({ state: 'failed' }, s.failed);
      },
    }),
    queueDepth: new Gauge({
      name: 'postback_engine_delivery_queue_depth',
      help: 'Deliveries due now and waiting for a worker (enabled publishers, inside their window)',
      registers: [registry],
      async collect() {
        this.set((await stats()).due);
      },
    }),
    oldestDueAge: new Gauge({
      name: 'postback_engine_delivery_oldest_due_age_seconds',
      help: 'How long the oldest due delivery has been waiting past its scheduled time',
      registers: [registry],
      async collect() {
        this.set((await stats()).oldestDueAgeS);
      },
    }),
    publishersDisabled: new Gauge({
      name: 'postback_engine_delivery_publishers_disabled',
      help: 'Publisher endpoints currently disabled (after a 410) and waiting for an admin to re-enable them',
      registers: [registry],
      async collect() {
        this.set((await stats()).publishersDisabled);
      },
    }),
    inFlight: new Gauge({
      name: 'postback_engine_delivery_attempts_in_flight',
      help: 'Outbound postback attempts in flight on this node',
      registers: [registry],
      collect() {
        this.set(local.inFlight());
      },
    }),
    circuitsOpen: new Gauge({
      name: 'postback_engine_delivery_circuits_open',
      help: "Publishers whose circuit breaker is open on this node (attempts paused after repeated failures)",
      registers: [registry],
      collect() {
        this.set(local.openCircuits());
      },
    }),
  };
}

export type DeliveryMetrics = ReturnType<typeof createDeliveryMetrics>;
