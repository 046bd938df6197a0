import { onCitus } from '../db/citus.js';
import { DatabaseBreaker, DatabaseUnavailableError } from '../db/breaker.js';
import { isDatabaseUnavailable, type Sql } from '../db/database.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { CapLanes, type WaitingPostback } from './cap-lanes.js';
import { commitBatch, type CommitItem, type CommitOutcome } from './commit-batch.js';
import { retryingAbortedCommits, unavailableError, withoutExpired } from './commit-errors.js';
import { capsApply } from './caps.js';
import { commitFresh, isFresh } from './commit-fresh.js';

export { unavailableError };

/**
 * Group commit. A postback is answered 200 only after it is committed, but concurrent postbacks
 * share commits: while MAX_CONCURRENT_BATCHES groups are in flight, new arrivals queue, and the next
 * free slot takes up to MAX_BATCH of them at once. Under light load a postback commits alone with no
 * added delay; under heavy load one fsync serves many. A group is one statement for its new txids
 * (commit-fresh.ts) and, when needed, one transaction for the rest (commit-batch.ts).
 *
 * Every postback carries its request's deadline (db/breaker.ts). A group is given up on at the
 * earliest deadline among its postbacks, which frees its slot even when its connection went silent,
 * so postbacks queued behind it still get their answer in time. While the breaker is open nothing
 * is queued: the postback is answered 503 at once. Postbacks under an offer's caps take their
 * offer's lane instead (cap-lanes.ts).
 */

/**
 * Two: PostgreSQL's CPU per conversion falls with the group's size, and fewer groups in flight make
 * bigger groups. Measured with `npm run bench -- --scenario postbacks` (10 connections): 4 groups
 * gave 772 distinct postbacks/s at 1,242 µs of PostgreSQL CPU each (groups of 1.6), 1 gave 1,315/s
 * at 441 µs (4.2), 2 gave 1,446/s at 470 µs (2.5). Two rather than one so that a group stuck on a
 * lock (a txid being committed by another node) does not hold up every postback of this node.
 */
const MAX_CONCURRENT_BATCHES = 2;
const MAX_BATCH = 64;
type Waiting = WaitingPostback;

export class GroupCommitter {
  private queue: Waiting[] = [];
  private inflight = 0;
  private idle: (() => void)[] = [];
  private readonly capLanes: CapLanes;

  constructor(
    /** Plain statements (the one-statement commit); never `begin` here (see TX_POOL_MAX in db/database.ts). */
    private readonly sql: Sql,
    /** Transactions only. */
    private readonly txSql: Sql,
    private readonly refireWindowS: number,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    /** Tests lower it to make postbacks queue into one group. */
    private readonly maxConcurrentBatches = MAX_CONCURRENT_BATCHES,
    /** The engine's; a committer built alone (tests) gets one with the default deadline. */
    private readonly breaker = new DatabaseBreaker({ deadlineMs: 4000 }),
  ) {
    this.capLanes = new CapLanes(txSql, refireWindowS, metrics, log, breaker, () => this.notifyIfIdle());
  }

  /** `deadlineAt` is the request's (breaker.deadline() when it arrived). */
  submit(item: CommitItem, deadlineAt: number = this.breaker.deadline()): Promise<CommitOutcome> {
    try {
      this.breaker.check();
    } catch (err) {
      return Promise.reject(unavailableError(err));
    }
    return new Promise((resolve, reject) => {
      if (capsApply(item)) {
        this.capLanes.submit({ item, deadlineAt, resolve, reject });
        return;
      }
      this.queue.push({ item, deadlineAt, resolve, reject });
      this.pump();
    });
  }

  /** Resolves once nothing is queued or in flight (SIGTERM drain). */
  drain(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  private isIdle(): boolean {
    return this.inflight === 0 && this.queue.length === 0 && !this.capLanes.busy;
  }

  private notifyIfIdle(): void {
    if (this.isIdle()) for (const done of this.idle.splice(0)) done();
  }

  private pump(): void {
    while (this.inflight < this.maxConcurrentBatches && this.queue.length > 0) {
      const batch = withoutExpired(this.queue.splice(0, MAX_BATCH), this.breaker);
      if (batch.length === 0) continue;
      this.inflight++;
      void this.run(batch).finally(() => {
        this.inflight--;
        if (this.queue.length > 0) this.pump();
        else this.notifyIfIdle();
      });
    }
  }

  private async run(batch: Waiting[]): Promise<void> {
    this.metrics.commitBatchSize.observe(batch.length);
    let undecided = batch;
    const deadlineAt = Math.min(...batch.map((w) => w.deadlineAt));
    try {
      await this.breaker.run(async () => {
        undecided = await this.commitNew(undecided);
        if (undecided.length === 0) return;
        // Past the deadline the rest are answered 503: a transaction nobody waits for is not started.
        if (this.breaker.isPast(deadlineAt)) throw new DatabaseUnavailableError('timeout');
        const items = undecided.map((w) => w.item);
        const outcomes = await retryingAbortedCommits(() => this.txSql.begin((tx) => commitBatch(tx, items, this.refireWindowS)));
        undecided.forEach((w, i) => {
          w.resolve(outcomes[i] as CommitOutcome);
        });
      }, deadlineAt);
    } catch (err) {
      // Postbacks already answered are committed: only the undecided ones are retried or refused.
      if (undecided.length > 1 && !isDatabaseUnavailable(err)) {
        // One bad row must not fail its neighbours: isolate it by committing each alone.
        await Promise.all(undecided.map((w) => this.run([w])));
        return;
      }
      if (!isDatabaseUnavailable(err)) this.log.error({ err }, 'postback commit failed');
      // Waiters already resolved (committed) ignore this: a promise settles once.
      const unavailable = unavailableError(err);
      for (const w of undecided) w.reject(unavailable);
    }
  }

  /**
   * New txids without message IDs (the common signed GET) commit in one statement and are answered
   * at once. Returns the rest: what it could not create (the txid exists) and everything else, for
   * the transaction of commit-batch.ts.
   */
  private async commitNew(batch: Waiting[]): Promise<Waiting[]> {
    // Citus cannot run the one-statement chain across shards; there every group takes the transaction.
    if (onCitus()) return batch;
    const fresh = batch.map((w) => w.item).filter(isFresh);
    if (fresh.length === 0) return batch;
    const created = await retryingAbortedCommits(() => commitFresh(this.sql, fresh, this.refireWindowS));
    const rest: Waiting[] = [];
    for (const w of batch) {
      const { item } = w;
      if (item.score && created.has(item.conversionId)) {
        w.resolve({ kind: 'created', conversionId: item.conversionId, decision: item.score.decision, reasons: item.score.reasons, status: item.status });
      } else {
        rest.push(w);
      }
    }
    return rest;
  }
}
