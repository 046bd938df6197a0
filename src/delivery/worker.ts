import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import type { Registry } from 'prom-client';
import type { Catalog } from '../catalog/catalog.js';
import type { Config } from '../config.js';
import type { Sql } from '../db/database.js';
import type { Logger } from '../logger.js';
import { performAttempt, type AttemptDeps, type AttemptSummary } from './attempt.js';
import { systemResolver, type Resolver } from './destination-guard.js';
import { HttpSender } from './http-sender.js';
import { CLAIM_BATCH, CONCURRENCY, resolveTimings, SWEEP_MIN_INTERVAL_MS } from './limits.js';
import { createDeliveryMetrics, type DeliveryMetrics } from './metrics.js';
import { OutcomeWriter } from './outcome-writer.js';
import { PublisherGate, type GateOptions } from './publisher-gate.js';
import { DELIVERIES_CHANNEL, wakesFor } from './wake.js';
import { claimDue, leaseOne, msUntilNextDue, releaseLeases, sweepExpired, type ClaimedDelivery, type LeaseOneResult } from './store.js';

/**
 * The delivery worker, one per engine process. It claims due deliveries with FOR UPDATE SKIP LOCKED
 * under a lease, sends each with no transaction open, and records the outcome. It wakes on NOTIFY
 * (a commit that enqueued deliveries or re-enabled a publisher), on a timer set for the next due row,
 * when a slot frees while work is waiting, and at least every poll interval as a backstop.
 */

export type WorkerConfig = Pick<Config, 'deliveryBackoffS' | 'allowPrivateDestinations'> &
  Partial<Pick<Config, 'deliveryLeaseS' | 'deliveryPollS' | 'deliveryTimeoutS'>>;

export type WorkerOptions = {
  leaseMs?: number;
  pollMs?: number;
  timeoutMs?: number;
  concurrency?: number;
  claimBatch?: number;
  gate?: GateOptions;
  /** Tests substitute DNS to prove that a name resolving to a private address is refused. */
  resolve?: Resolver;
  workerId?: string;
};

export type WorkerDeps = {
  /** Plain statements. */
  sql: Sql;
  /** Transactions (see TX_POOL_MAX in db/database.ts). */
  txSql: Sql;
  /** The claims run here (PLANNED_POOL_MAX in db/database.ts); `sql` when absent. */
  plannedSql?: Sql;
  catalog: Catalog;
  log: Logger;
  registry: Registry;
  config: WorkerConfig;
};

export type ReplayResult = Exclude<LeaseOneResult, { kind: 'leased' }> | { kind: 'done'; attempt: AttemptSummary };

/** Shortest timer: a row due "now" that another node is claiming must not make us spin. */
const MIN_WAKE_MS = 10;
/**
 * How long stop() waits for the claim cycle and the attempts' writes. A statement sent on a
 * connection whose network path went silent waits for TCP to give up (minutes), and this pool is not
 * behind the request breaker; past this wait the process stops anyway. Nothing is lost: a claimed
 * delivery whose outcome was not written is leased, and its lease runs out (at least once).
 */
const STOP_WAIT_MS = 5000;

export class DeliveryWorker {
  readonly id: string;
  readonly leaseMs: number;
  readonly pollMs: number;
  readonly metrics: DeliveryMetrics;
  private readonly sql: Sql;
  private readonly plannedSql: Sql;
  private readonly log: Logger;
  private readonly concurrency: number;
  private readonly claimBatch: number;
  private readonly gate: PublisherGate;
  private readonly sender: HttpSender;
  private readonly deps: AttemptDeps;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly stopController = new AbortController();
  private started = false;
  private stopped = false;
  private running: Promise<void> | undefined;
  private rerun = false;
  /** Attempts were claimed or a publisher was at its cap: a publisher slot freeing up wakes us. */
  private backlog = false;
  /** Every slot of this process was taken: an attempt finishing completely wakes us. */
  private saturated = false;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private lastSweep = 0;
  private unlisten: (() => Promise<void>) | undefined;

  constructor(deps: WorkerDeps, opts: WorkerOptions = {}) {
    const { config } = deps;
    this.id = opts.workerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
    const { timeoutMs, leaseMs, pollMs } = resolveTimings(config, opts);
    this.leaseMs = leaseMs;
    this.pollMs = pollMs;
    // One abort listener per attempt in flight (removed when it ends), so the default cap of 10 is meaningless here.
    setMaxListeners(0, this.stopController.signal);
    this.sql = deps.sql;
    this.plannedSql = deps.plannedSql ?? deps.sql;
    this.log = deps.log;
    this.concurrency = opts.concurrency ?? CONCURRENCY;
    this.claimBatch = opts.claimBatch ?? CLAIM_BATCH;
    this.gate = new PublisherGate(opts.gate);
    this.sender = new HttpSender({
      allowPrivate: config.allowPrivateDestinations,
      resolve: opts.resolve ?? systemResolver,
      timeoutMs,
      connectionsPerPublisher: this.gate.perPublisher,
    });
    this.metrics = createDeliveryMetrics(deps.registry, deps.sql, {
      inFlight: () => this.inFlight.size,
      openCircuits: () => this.gate.openCircuits(),
    });
    this.deps = {
      sql: deps.sql,
      txSql: deps.txSql,
      catalog: deps.catalog,
      log: deps.log,
      metrics: this.metrics,
      sender: this.sender,
      outcomes: new OutcomeWriter(deps.sql, this.id),
      gate: this.gate,
      workerId: this.id,
      backoffS: config.deliveryBackoffS,
      allowPrivate: config.allowPrivateDestinations,
    };
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    // onlisten also fires after a reconnect, when notifications may have been missed.
    const meta = await this.sql.listen(DELIVERIES_CHANNEL, (payload) => this.wakeFor(payload), () => this.wake());
    this.unlisten = meta.unlisten;
    this.wake();
  }

  /** Stops claiming, aborts attempts in flight (recorded, and due again at once for any node), waits for their writes. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.unlisten?.().catch(() => undefined);
    this.stopController.abort();
    let waited: NodeJS.Timeout | undefined;
    const giveUp = new Promise<void>((resolve) => {
      waited = setTimeout(resolve, STOP_WAIT_MS);
    });
    const finished = (async () => {
      await this.running?.catch(() => undefined);
      await Promise.allSettled([...this.inFlight]);
    })();
    await Promise.race([finished, giveUp]);
    clearTimeout(waited);
    if (this.running || this.inFlight.size > 0) {
      this.log.warn({ inFlight: this.inFlight.size }, 'delivery worker stopped with PostgreSQL work unanswered; leases run out and those deliveries are retried');
    }
    await this.sender.close();
  }

  /**
   * A NOTIFY: new deliveries for the publisher it names. One this node cannot take now costs no
   * claim: the probe timer (circuit open) or a freed slot (at its cap) wakes the worker for it, as
   * for the publisher's older deliveries, since `backlog` is set.
   */
  private wakeFor(payload: string): void {
    const publisherId = wakesFor(payload);
    if (publisherId !== undefined && this.gate.room(publisherId) === 0) {
      this.backlog = true;
      return;
    }
    this.wake();
  }

  wake(): void {
    if (!this.started || this.stopped) return;
    if (this.running) {
      this.rerun = true;
      return;
    }
    this.running = this.run().finally(() => {
      this.running = undefined;
    });
  }

  /** An operator's extra try (CONTRACT §6 replay): same webhook-id, any state, sent now, result returned. */
  async replay(id: string): Promise<ReplayResult> {
    if (this.stopped) throw new Error('delivery worker is stopped');
    const lease = await leaseOne(this.sql, id, this.id, this.leaseMs);
    if (lease.kind !== 'leased') return lease;
    const attempt = this.track(performAttempt(this.deps, lease.delivery, { replay: true, stop: this.stopController.signal }));
    return { kind: 'done', attempt: await attempt };
  }

  private async run(): Promise<void> {
    try {
      do {
        this.rerun = false;
        await this.cycle();
      } while (this.rerun && !this.stopped);
    } catch (err) {
      this.log.error({ err }, 'delivery worker cycle failed; retrying after the poll interval');
      this.schedule(this.pollMs);
    }
  }

  private async cycle(): Promise<void> {
    await this.maybeSweep();
    let claimedAny = false;
    for (;;) {
      const free = this.concurrency - this.inFlight.size;
      this.saturated = free <= 0;
      if (this.saturated) {
        this.backlog = true;
        return this.schedule(this.pollMs);
      }
      const want = Math.min(free, this.claimBatch);
      const limits = this.gate.limits();
      const rows = await claimDue(this.plannedSql, {
        workerId: this.id,
        leaseMs: this.leaseMs,
        want,
        perPublisher: this.gate.perPublisher,
        limitIds: limits.ids,
        limitRooms: limits.rooms,
      });
      if (this.stopped) {
        await releaseLeases(this.sql, rows.map((r) => r.id), this.id);
        return;
      }
      // The claim saw the deadline ahead at its own start; a row whose deadline passed since then is
      // handed back unsent, and the sweep expires it: no attempt ever starts after the deadline.
      const now = Date.now();
      const late = rows.filter((r) => r.deadlineAt.getTime() <= now);
      for (const row of rows) if (row.deadlineAt.getTime() > now) this.dispatch(row);
      if (late.length > 0) await releaseLeases(this.sql, late.map((r) => r.id), this.id);
      claimedAny ||= rows.length > 0;
      if (rows.length < want) break;
    }
    const limits = this.gate.limits();
    const blocked = limits.ids.filter((_, i) => limits.rooms[i] === 0);
    // While attempts are in flight their ends wake us (a freed slot may have due work behind it), so
    // only an empty-handed cycle needs to ask when the next delivery falls due.
    this.backlog = claimedAny || blocked.length > 0;
    if (claimedAny) return this.schedule(this.pollMs);
    const dueInMs = await msUntilNextDue(this.plannedSql, blocked);
    const probeAt = this.gate.nextProbeAt();
    const probeInMs = probeAt === undefined ? Infinity : probeAt - Date.now();
    this.schedule(Math.min(dueInMs ?? Infinity, probeInMs, this.pollMs));
  }

  private dispatch(row: ClaimedDelivery): void {
    // The publisher's slot frees when its HTTP exchange ends, before the outcome is written: claim again then.
    const onSent = () => {
      if (this.backlog) this.wake();
    };
    void this.track(performAttempt(this.deps, row, { replay: false, stop: this.stopController.signal, onSent })).catch((err: unknown) => {
      // The lease runs out and the delivery is tried again (same webhook-id): at least once, never lost.
      this.log.error({ err, deliveryId: row.id }, 'recording a delivery attempt failed');
    });
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.inFlight.add(work);
    const done = () => {
      this.inFlight.delete(work);
      if (this.saturated) this.wake();
    };
    work.then(done, done);
    return work;
  }

  private async maybeSweep(): Promise<void> {
    if (Date.now() - this.lastSweep < Math.min(SWEEP_MIN_INTERVAL_MS, this.pollMs)) return;
    this.lastSweep = Date.now();
    const expired = await sweepExpired(this.sql);
    if (expired > 0) {
      this.metrics.finished.inc({ state: 'expired' }, expired);
      this.log.warn({ count: expired }, 'deliveries expired: REFIRE_WINDOW_S passed without a 2xx');
    }
  }

  /** Keeps the earliest pending wake-up; every cycle re-arms one, so polling never stops. */
  private schedule(inMs: number): void {
    if (this.stopped) return;
    const delay = Math.max(MIN_WAKE_MS, Math.min(inMs, this.pollMs));
    const at = Date.now() + delay;
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.wake();
    }, delay);
    this.timer.unref();
  }
}
