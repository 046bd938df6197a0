import type { Sql, TxSql } from '../db/database.js';
import { createdRangeOfId } from '../ids.js';

/**
 * Records attempt outcomes: the attempt log row and the delivery's new state, for many deliveries in
 * one statement. Each autocommitted write costs a WAL flush, so one write per attempt would cap a
 * node at the disk's flush rate; instead the writer batches naturally: a write starts at once when
 * none is running, and whatever arrives meanwhile goes into the next one. No timer, so an idle node
 * adds no delay, and a busy one writes bigger batches.
 *
 * Rules per row: a 2xx makes the delivery `delivered` whoever holds the lease (it is final and true).
 * A failure reschedules only if this worker still holds the lease (a worker whose lease ran out must
 * not undo the newer holder's state), and leaves a delivered or expired delivery as it is (a failed
 * replay changes nothing but the log). The next try is capped at the deadline.
 */

export type AttemptRecord = {
  deliveryId: string;
  attemptedAt: Date;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  snippet: string | null;
  replay: boolean;
};

export type Outcome = { attempt: AttemptRecord; delivered: boolean; retryInMs: number };

/** Largest batch per statement: bounds the statement's size and the rows one failure would retry. */
const MAX_BATCH = 500;

export async function writeOutcomes(db: Sql | TxSql, workerId: string, rows: Outcome[]): Promise<void> {
  if (rows.length === 0) return;
  const a = rows.map((r) => r.attempt);
  const ranges = a.map((x) => createdRangeOfId(x.deliveryId));
  await db`
    with input as materialized (
      -- Flags travel as 0/1: postgres.js types a JS boolean array as a scalar boolean, which cannot be cast to boolean[].
      -- Times computed here, in a materialized input: Citus refuses now() inside CASE, and time
      -- arithmetic (a STABLE operator) on the target's columns, in a distributed UPDATE. (Read
      -- twice, PostgreSQL materializes it anyway.)
      select id, attempted_at, status_code, latency_ms, error, snippet, replay = 1 as replay, delivered = 1 as delivered, lo, hi,
             now() as now, now() + retry_in_ms * interval '1 millisecond' as retry_at
      from unnest(
        ${a.map((x) => x.deliveryId)}::text[], ${a.map((x) => x.attemptedAt.toISOString())}::timestamptz[],
        ${a.map((x) => x.statusCode)}::int[], ${a.map((x) => x.latencyMs)}::int[], ${a.map((x) => x.error)}::text[],
        ${a.map((x) => x.snippet)}::text[], ${a.map((x) => (x.replay ? 1 : 0))}::int[], ${rows.map((r) => (r.delivered ? 1 : 0))}::int[],
        ${rows.map((r) => r.retryInMs)}::float8[], ${ranges.map((r) => r[0])}::timestamptz[], ${ranges.map((r) => r[1])}::timestamptz[]
      ) as u(id, attempted_at, status_code, latency_ms, error, snippet, replay, delivered, retry_in_ms, lo, hi)
    ), updated as (
    update deliveries d
    set attempts = d.attempts + 1,
        state = case when i.delivered then 'delivered'
                     when d.leased_by = ${workerId} and d.state in ('pending', 'failed') then 'failed'
                     else d.state end,
        delivered_at = case when i.delivered then coalesce(d.delivered_at, i.now) else d.delivered_at end,
        last_status_code = case when i.delivered or d.state <> 'delivered' then i.status_code else d.last_status_code end,
        last_error = case when i.delivered then null when d.state = 'delivered' then d.last_error else i.error end,
        next_attempt_at = case when not i.delivered and d.leased_by = ${workerId} and d.state in ('pending', 'failed')
                               then least(i.retry_at, d.deadline_at)
                               else d.next_attempt_at end,
        lease_until = case when i.delivered or d.leased_by = ${workerId} then null else d.lease_until end,
        leased_by = case when i.delivered or d.leased_by = ${workerId} then null else d.leased_by end,
        updated_at = now()
    from input i
    -- The delivery's ID carries its time, which names its partition.
    where d.id = i.id and d.created_at >= i.lo and d.created_at < i.hi
    returning d.id, d.publisher_id
    )
    -- The attempt log carries the publisher: its rows are placed by it on a distributed database.
    insert into delivery_attempts (delivery_id, publisher_id, attempted_at, status_code, latency_ms, error, response_snippet, replay)
    select i.id, u.publisher_id, i.attempted_at, i.status_code, i.latency_ms, i.error, i.snippet, i.replay
    from input i join updated u on u.id = i.id`;
}

type Pending = { outcome: Outcome; resolve: () => void; reject: (err: unknown) => void };

export class OutcomeWriter {
  private queue: Pending[] = [];
  private writing: Promise<void> | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly workerId: string,
    private readonly onBatch: (size: number) => void = () => undefined,
  ) {}

  /** Resolves once the outcome is committed; rejects if its batch failed (the lease then brings the delivery back). */
  write(outcome: Outcome): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ outcome, resolve, reject });
      this.writing ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0, MAX_BATCH);
        try {
          await writeOutcomes(this.sql, this.workerId, batch.map((p) => p.outcome));
          this.onBatch(batch.length);
          for (const p of batch) p.resolve();
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.writing = undefined;
    }
  }
}
