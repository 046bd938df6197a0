import { performance } from 'node:perf_hooks';
import { isDatabaseUnavailable } from './database.js';

/**
 * A deadline and a circuit breaker for the work a request waits on PostgreSQL for.
 *
 * Why a deadline: postgres.js has no query timeout. A query that finds no free connection waits in
 * the pool's queue until a connection opens, and while PostgreSQL refuses connections each attempt
 * fails one queued query and then backs off, so the others wait for as long as the outage lasts; a
 * query sent on a connection whose network path went silent waits for TCP to give up (minutes). The
 * contract wants a 503 within 5 s instead, so every request-path wait races a deadline. When the
 * deadline passes after a statement was sent, its outcome is unknown: the answer is still 503 (never
 * 200), and the sender's retry is idempotent because the unique key (advertiser_id, txid) decides.
 *
 * Why a breaker: once PostgreSQL has failed a few statements in a row, queueing more requests behind
 * the deadline only holds sockets and memory for seconds to answer 503 anyway. The breaker opens and
 * requests fail fast. After a cooldown it lets one call through (half-open) as a probe: success
 * closes it, failure opens it again. Recovery therefore needs no restart, only traffic (or a /readyz
 * poll, which goes through the breaker like everything else).
 *
 * One breaker per engine: every pool of a node talks to the same PostgreSQL, so one verdict serves all.
 */

export type BreakerState = 'closed' | 'open' | 'half_open';

/** Why a request could not wait for PostgreSQL; also the `reason` label of the 503 counter. */
export type UnavailableReason = 'timeout' | 'circuit_open';

export const DATABASE_TIMEOUT = 'DATABASE_TIMEOUT';
export const CIRCUIT_OPEN = 'CIRCUIT_OPEN';

export class DatabaseUnavailableError extends Error {
  override name = 'DatabaseUnavailableError';
  readonly code: string;
  constructor(readonly reason: UnavailableReason) {
    super(reason === 'timeout' ? 'PostgreSQL did not answer within the deadline' : 'PostgreSQL is unreachable (circuit open)');
    this.code = reason === 'timeout' ? DATABASE_TIMEOUT : CIRCUIT_OPEN;
  }
}

export type BreakerOptions = {
  /** How long one request may wait on PostgreSQL in all. */
  deadlineMs: number;
  /** Consecutive failures (connection errors or deadline misses) that open the circuit. */
  failureThreshold?: number;
  /** How long the circuit stays open before a probe is let through. */
  cooldownMs?: number;
  /** Monotonic clock in ms; tests may substitute it. */
  now?: () => number;
  /** Told of every state change (metrics, logs, cutting connections that went silent). */
  onStateChange?: (state: BreakerState) => void;
};

/** Three misses in a row are an outage, not bad luck: one slow statement must not refuse everyone. */
const DEFAULT_FAILURE_THRESHOLD = 3;
/** Short: PostgreSQL restarts take seconds, and a probe costs one statement. */
const DEFAULT_COOLDOWN_MS = 1000;

export class DatabaseBreaker {
  readonly deadlineMs: number;
  readonly cooldownMs: number;
  private readonly failureThreshold: number;
  private readonly now: () => number;
  private readonly onStateChange: (state: BreakerState) => void;
  private current: BreakerState = 'closed';
  private failures = 0;
  private openedAt = 0;
  private probing = false;

  constructor(opts: BreakerOptions) {
    this.deadlineMs = opts.deadlineMs;
    this.failureThreshold = opts.failureThreshold ?? DEFAULT_FAILURE_THRESHOLD;
    this.cooldownMs = opts.cooldownMs ?? DEFAULT_COOLDOWN_MS;
    this.now = opts.now ?? (() => performance.now());
    this.onStateChange = opts.onStateChange ?? (() => undefined);
  }

  get state(): BreakerState {
    return this.current;
  }

  /** The deadline of a request that starts now; pass it to every `run` the request makes. */
  deadline(): number {
    return this.now() + this.deadlineMs;
  }

  isPast(deadlineAt: number): boolean {
    return this.now() >= deadlineAt;
  }

  /** Throws at once when no call would be let through, so callers refuse before queueing anything. */
  check(): void {
    if (this.current === 'closed') return;
    if (this.current === 'open' && this.now() - this.openedAt < this.cooldownMs) throw new DatabaseUnavailableError('circuit_open');
    if (this.probing) throw new DatabaseUnavailableError('circuit_open');
  }

  /**
   * Runs `work` unless the circuit is open, and gives up on it at `deadlineAt`. Work given up on is
   * not cancelled (postgres.js cannot cancel a statement on a silent connection); its late result is
   * ignored, which is why a deadline miss must never be answered as a success.
   */
  async run<T>(work: () => Promise<T>, deadlineAt: number = this.deadline()): Promise<T> {
    this.check();
    const probe = this.current !== 'closed';
    if (probe) {
      this.probing = true;
      this.setState('half_open');
    }
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DatabaseUnavailableError('timeout')), Math.max(0, deadlineAt - this.now()));
    });
    const attempt = work();
    // The abandoned attempt may still fail later; that must not become an unhandled rejection.
    attempt.catch(() => undefined);
    try {
      const result = await Promise.race([attempt, expired]);
      this.succeeded();
      return result;
    } catch (err) {
      if (err instanceof DatabaseUnavailableError || isDatabaseUnavailable(err)) this.failed();
      // Any other error (a constraint, a bug) came from a database that answered.
      else this.succeeded();
      throw err;
    } finally {
      clearTimeout(timer);
      if (probe) this.probing = false;
    }
  }

  private succeeded(): void {
    this.failures = 0;
    this.setState('closed');
  }

  private failed(): void {
    // Calls sent before the circuit opened keep failing for up to a deadline; the verdict is already in.
    if (this.current === 'open') return;
    this.failures++;
    if (this.current === 'half_open' || this.failures >= this.failureThreshold) {
      this.openedAt = this.now();
      this.setState('open');
    }
  }

  private setState(state: BreakerState): void {
    if (this.current === state) return;
    this.current = state;
    this.onStateChange(state);
  }
}

/** The reason label for a 503, looking through `cause` chains (an ApiError wraps the database's error). */
export function unavailableReason(err: unknown): UnavailableReason | 'connection' | 'other' {
  for (let e = err, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof DatabaseUnavailableError) return e.reason;
    if (isDatabaseUnavailable(e)) return 'connection';
  }
  return 'other';
}
