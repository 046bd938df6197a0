import { DatabaseUnavailableError, type DatabaseBreaker } from '../db/breaker.js';
import { isDatabaseUnavailable, type Sql } from '../db/database.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { CommitItem, CommitOutcome } from './commit-batch.js';
import { retryingAbortedCommits, unavailableError, withoutExpired } from './commit-errors.js';
import { commitCapped } from './caps.js';

export type WaitingPostback = { item: CommitItem; deadlineAt: number; resolve: (o: CommitOutcome) => void; reject: (e: unknown) => void };

const MAX_BATCH = 256;

/**
 * One lane per capped offer on this node. A capped offer's transactions serialize on its usage row
 * locks anyway (caps.ts), so sending several at once only makes them queue inside PostgreSQL, each
 * holding a connection. Instead a node keeps at most one capped transaction per offer in flight, and
 * everything that arrives for that offer meanwhile goes into the next one: the busier the offer, the
 * more postbacks share one lock hold and one fsync.
 */
export class CapLanes {
  /** Offers with a transaction in flight, each with the postbacks waiting for the next one. */
  private readonly lanes = new Map<string, WaitingPostback[]>();

  constructor(
    private readonly txSql: Sql,
    private readonly refireWindowS: number,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly breaker: DatabaseBreaker,
    /** Called when the last lane empties (the committer's drain). */
    private readonly onIdle: () => void,
  ) {}

  get busy(): boolean {
    return this.lanes.size > 0;
  }

  submit(waiting: WaitingPostback): void {
    const offerId = waiting.item.offerId;
    const lane = this.lanes.get(offerId);
    if (lane) {
      lane.push(waiting);
      return;
    }
    this.lanes.set(offerId, []);
    void this.run(offerId, [waiting]);
  }

  private async run(offerId: string, first: WaitingPostback[]): Promise<void> {
    let batch = first;
    for (;;) {
      await this.commit(batch);
      const lane = this.lanes.get(offerId) ?? [];
      if (lane.length === 0) break;
      batch = lane.splice(0, MAX_BATCH);
    }
    this.lanes.delete(offerId);
    if (this.lanes.size === 0) this.onIdle();
  }

  /** Settles every postback of the batch; never throws. */
  private async commit(batch: WaitingPostback[]): Promise<void> {
    const live = withoutExpired(batch, this.breaker);
    if (live.length === 0) return;
    this.metrics.commitBatchSize.observe(live.length);
    const deadlineAt = Math.min(...live.map((w) => w.deadlineAt));
    let pending = live;
    try {
      await this.breaker.run(async () => {
        // A txid sent twice in one batch waits for the next round, after the first one committed.
        while (pending.length > 0) {
          if (this.breaker.isPast(deadlineAt)) throw new DatabaseUnavailableError('timeout');
          const items = pending.map((w) => w.item);
          const { outcomes, deferred } = await retryingAbortedCommits(() =>
            this.txSql.begin((tx) => commitCapped(tx, items, this.refireWindowS)),
          );
          for (const w of pending) {
            const outcome = outcomes.get(w.item);
            if (outcome) w.resolve(outcome);
          }
          pending = pending.filter((w) => deferred.includes(w.item));
        }
      }, deadlineAt);
    } catch (err) {
      if (pending.length > 1 && !isDatabaseUnavailable(err)) {
        // One bad row must not fail its neighbours: commit each alone, in arrival order.
        for (const w of pending) await this.commit([w]);
        return;
      }
      if (!isDatabaseUnavailable(err)) this.log.error({ err }, 'capped postback commit failed');
      const unavailable = unavailableError(err);
      for (const w of pending) w.reject(unavailable);
    }
  }
}
