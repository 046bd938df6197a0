/**
 * Every limit of outbound delivery, in one place, each with why it has its value. The ones tests
 * need to shrink (lease, poll, timeout) are also overridable through config (DELIVERY_LEASE_S,
 * DELIVERY_POLL_MS, DELIVERY_TIMEOUT_MS); the others through the worker's constructor options.
 */

/** CONTRACT §6: no answer in 10 s is a failed attempt. Covers connect, headers and the body we read. */
export const REQUEST_TIMEOUT_MS = 10_000;

/**
 * How long a claimed delivery belongs to the worker that claimed it. Must outlast the longest attempt
 * (REQUEST_TIMEOUT_MS) plus the write that records it, or a slow attempt would be taken over and sent
 * twice; short enough that a crashed node's deliveries are retried by another node within a minute.
 */
export const LEASE_MS = 60_000;

/** The lease must exceed the request timeout by at least this, for the outcome write and event-loop stalls. */
export const LEASE_MARGIN_MS = 1_000;

/**
 * Polling backstop. NOTIFY wakes workers on commit and each worker sets a timer for the next due row,
 * so polling only matters when a notification is lost (LISTEN connection dropped) or a node died
 * holding a timer; 5 s bounds that delay at the cost of one indexed query per node every 5 s.
 */
export const POLL_MS = 5_000;

/**
 * Attempts in flight per engine process. Each holds a socket, not a database connection, so this can
 * exceed the pool size; 64 saturates two cores against a fast receiver while bounding memory.
 */
export const CONCURRENCY = 64;

/**
 * Attempts in flight per publisher per process, and the size of its keep-alive pool. A publisher
 * that hangs ties up at most this many of CONCURRENCY slots, so the others keep flowing.
 */
export const PER_PUBLISHER_CONCURRENCY = 8;

/** Rows claimed per statement: large enough to amortise the claim, small enough to spread across nodes. */
export const CLAIM_BATCH = 64;

/**
 * Consecutive endpoint failures (timeouts, connection errors, 5xx, 429) that open a publisher's
 * circuit. Five rules out a single blip while stopping a dead endpoint before it eats many 10 s slots.
 */
export const BREAKER_THRESHOLD = 5;

/** First open period of a circuit; doubled after each failed probe up to BREAKER_MAX_OPEN_MS. */
export const BREAKER_OPEN_MS = 30_000;

/** An endpoint that keeps failing is probed every 5 minutes: long enough to be cheap, short enough to notice recovery. */
export const BREAKER_MAX_OPEN_MS = 300_000;

/**
 * Random extra delay added to each scheduled retry, as a fraction of it. Upward only so a retry is never
 * earlier than the documented schedule; 20% spreads a burst of failures (a publisher outage fails
 * thousands at once) so they do not return in lockstep, while an increasing schedule keeps its order.
 */
export const JITTER_FRACTION = 0.2;

/** A Retry-After of 0 or a past date still waits this long, so a misbehaving endpoint cannot make us spin. */
export const MIN_RETRY_DELAY_MS = 1_000;

/** First bytes of a response kept with each attempt: enough to read an error message, small enough to store every try. */
export const SNIPPET_BYTES = 512;

/** A response body up to this size is drained so the keep-alive socket can be reused; a larger one closes it. */
export const DRAIN_LIMIT_BYTES = 64 * 1024;

/** Expired deliveries are swept at most this often per node; the sweep is idempotent, so nodes overlap harmlessly. */
export const SWEEP_MIN_INTERVAL_MS = 1_000;

/** Scrape-time queue statistics are cached this long so the several gauges share one query. */
export const STATS_CACHE_MS = 1_000;

export type Timings = { timeoutMs: number; leaseMs: number; pollMs: number };

/** Constructor options over config (seconds) over the defaults above; refuses a lease a slow attempt could outlive. */
export function resolveTimings(
  config: { deliveryTimeoutS?: number; deliveryLeaseS?: number; deliveryPollS?: number },
  opts: Partial<Timings>,
): Timings {
  const ms = (s: number | undefined) => (s === undefined ? undefined : s * 1000);
  const timeoutMs = opts.timeoutMs ?? ms(config.deliveryTimeoutS) ?? REQUEST_TIMEOUT_MS;
  const leaseMs = opts.leaseMs ?? ms(config.deliveryLeaseS) ?? LEASE_MS;
  const pollMs = opts.pollMs ?? ms(config.deliveryPollS) ?? POLL_MS;
  if (!(timeoutMs > 0) || !(pollMs > 0)) throw new Error('delivery timeout and poll interval must be positive');
  if (leaseMs < timeoutMs + LEASE_MARGIN_MS) {
    throw new Error(`delivery lease (${leaseMs} ms) must exceed the request timeout (${timeoutMs} ms) by ${LEASE_MARGIN_MS} ms`);
  }
  return { timeoutMs, leaseMs, pollMs };
}
