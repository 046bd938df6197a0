import type postgres from 'postgres';
import type { Sql, TxSql } from '../db/database.js';
import { wakeWorkers } from './wake.js';

/**
 * Changes to deliveries' schedules made from outside the worker: a publisher's endpoint disabled or
 * re-enabled (endpoint.ts), and the reconciler's re-fire and expiry (reconcile/refire.ts). The
 * delivery feature owns every write to `deliveries` (outbox.ts queues, store.ts and outcome-writer.ts
 * are the worker's); these are the rest, so a change of the table's shape or its invariants is made
 * in this feature alone. Each leaves a row in flight (a live lease) alone: its outcome decides.
 *
 * The reconciler's two are CTE fragments: it counts what they changed into its own table in the
 * same statement, so a run's counts and the changes they count commit together.
 */

/**
 * Parks the publisher's waiting deliveries at their deadline (its endpoint answered 410), so claims
 * skip past them cheaply; the sweep expires them there unless re-enabling brings them back first.
 */
export async function parkPublisherDeliveries(tx: TxSql, publisherId: string): Promise<void> {
  await tx`update deliveries set next_attempt_at = deadline_at, updated_at = now()
    where publisher_id = ${publisherId} and state in ('pending', 'failed') and next_attempt_at <= deadline_at
      and (lease_until is null or lease_until <= now())`;
}

/** Makes the re-enabled publisher's deliveries still inside their window due now and wakes the workers; returns how many. */
export async function resumePublisherDeliveries(tx: TxSql, publisherId: string): Promise<number> {
  const resumed = await tx`update deliveries set next_attempt_at = now(), updated_at = now()
    where publisher_id = ${publisherId} and state in ('pending', 'failed') and deadline_at > now()
      and (lease_until is null or lease_until <= now())
    returning 1`;
  await wakeWorkers(tx);
  return resumed.length;
}

export type TimeRange = { from: Date; to: Date };

/** A run's window as the tstzrange that marks the deliveries it re-fired. */
function runWindowRange(db: Sql, runWindow: TimeRange): postgres.Fragment {
  return db`tstzrange(${runWindow.from.toISOString()}::timestamptz, ${runWindow.to.toISOString()}::timestamptz, '[)')`;
}

/**
 * Which deliveries `d` (with their publisher `p`) a re-fire over `slice` makes due: those of
 * conversions created in the slice (by the conversion time each delivery carries), open, before
 * their deadline, waiting on their backoff, not in flight, of an enabled publisher, and not already
 * re-fired by a run over `window`.
 */
function refirable(db: Sql, slice: TimeRange, window: postgres.Fragment): postgres.Fragment {
  return db`p.id = d.publisher_id
        -- A delivery is never dated before its conversion: partitions before the slice are not read.
        and d.created_at >= ${slice.from.toISOString()}::timestamptz
        and d.conversion_created_at >= ${slice.from.toISOString()}::timestamptz and d.conversion_created_at < ${slice.to.toISOString()}::timestamptz
        and d.state in ('pending', 'failed')
        and d.deadline_at > now()
        and d.next_attempt_at > now()
        and (d.lease_until is null or d.lease_until <= now())
        and p.disabled_at is null
        and d.refire_window is distinct from ${window}`;
}

/** Conversions `c` created in `slice`: the same rows as the deliveries' conversion time, said again so their partitions are pruned. */
function inSlice(db: Sql, slice: TimeRange): postgres.Fragment {
  return db`c.created_at >= ${slice.from.toISOString()}::timestamptz and c.created_at < ${slice.to.toISOString()}::timestamptz`;
}

/**
 * Deliveries `d` of conversions created in `slice` (by the conversion time each carries) that an
 * expiry over it marks: `open`, the open ones past their deadline and not in flight; otherwise those
 * the worker's sweep already expired that no run has reported yet.
 */
function expirable(db: Sql, slice: TimeRange, open: boolean): postgres.Fragment {
  const from = slice.from.toISOString();
  return db`d.created_at >= ${from}::timestamptz
        and d.conversion_created_at >= ${from}::timestamptz and d.conversion_created_at < ${slice.to.toISOString()}::timestamptz
        and ${open
          ? db`d.state in ('pending', 'failed') and d.deadline_at <= now() and (d.lease_until is null or d.lease_until <= now())`
          : db`d.state = 'expired' and d.expiry_reported_by is null`}`;
}

/**
 * CTE `refired`: makes due now the open deliveries of conversions created in `slice` that wait on
 * their backoff, before their deadline, of an enabled publisher, and not already re-fired by a run
 * over `runWindow` (so repeating a run changes nothing). Returns (offer_id, publisher_id, created_at)
 * of each one's conversion. The caller wakes the workers after the statement when any was re-fired.
 */
export function refiredDeliveriesCte(db: Sql, slice: TimeRange, runWindow: TimeRange): postgres.Fragment {
  const window = runWindowRange(db, runWindow);
  return db`refired as (
      update deliveries d
      set next_attempt_at = now(), refired_at = now(), refire_window = ${window}, updated_at = now()
      from conversions c, publishers p
      where c.id = d.conversion_id and c.created_at = d.conversion_created_at and ${inSlice(db, slice)} and ${refirable(db, slice, window)}
      returning c.offer_id, c.publisher_id, c.created_at
    )`;
}

/**
 * CTE `expired_in_slice`: the deliveries of conversions created in `slice` whose expiry no run has
 * reported yet, marked reported by `runId`: the open ones past their deadline and not in flight
 * become `expired` now; those the worker's sweep already expired are only marked. Each comes out
 * once, as (offer_id, publisher_id, created_at) of its conversion.
 */
export function expiredDeliveriesCte(db: Sql, runId: string, slice: TimeRange): postgres.Fragment {
  return db`expired_now as (
      update deliveries d
      set state = 'expired', lease_until = null, leased_by = null, expiry_reported_by = ${runId}, updated_at = now()
      from conversions c
      where c.id = d.conversion_id and c.created_at = d.conversion_created_at and ${inSlice(db, slice)} and ${expirable(db, slice, true)}
      returning c.offer_id, c.publisher_id, c.created_at
    ), expired_before as (
      -- Disjoint from the rows above: this sub-statement sees the table as it was before them.
      update deliveries d
      set expiry_reported_by = ${runId}
      from conversions c
      where c.id = d.conversion_id and c.created_at = d.conversion_created_at and ${inSlice(db, slice)} and ${expirable(db, slice, false)}
      returning c.offer_id, c.publisher_id, c.created_at
    ), expired_in_slice as (
      select * from expired_now union all select * from expired_before
    )`;
}

/** A delivery a sharded statement changed, by its conversion (which lives in another colocation group). */
export type ChangedDelivery = { conversion_id: string; conversion_created_at: Date };

/**
 * refiredDeliveriesCte's change on Citus, where deliveries (by publisher) and conversions (by
 * advertiser) are in different colocation groups and cannot be joined in a modification: the same
 * rows, found by the conversion time each delivery carries, in one multi-shard statement.
 */
export async function refireDeliveriesSharded(db: Sql, slice: TimeRange, runWindow: TimeRange): Promise<ChangedDelivery[]> {
  const window = runWindowRange(db, runWindow);
  return db<ChangedDelivery[]>`
    update deliveries d
    set next_attempt_at = now(), refired_at = now(), refire_window = ${window}, updated_at = now()
    from publishers p
    where ${refirable(db, slice, window)}
    returning d.conversion_id, d.conversion_created_at`;
}

/**
 * expiredDeliveriesCte's changes on Citus (see refireDeliveriesSharded), as two statements for the
 * caller's transaction: first the deliveries the sweep already expired are marked reported, then the
 * open ones past their deadline are expired and marked, so the two sets stay disjoint.
 */
export async function expireDeliveriesSharded(db: Sql, runId: string, slice: TimeRange): Promise<ChangedDelivery[]> {
  const before = await db<ChangedDelivery[]>`
    update deliveries d
    set expiry_reported_by = ${runId}
    where ${expirable(db, slice, false)}
    returning d.conversion_id, d.conversion_created_at`;
  const now = await db<ChangedDelivery[]>`
    update deliveries d
    set state = 'expired', lease_until = null, leased_by = null, expiry_reported_by = ${runId}, updated_at = now()
    where ${expirable(db, slice, true)}
    returning d.conversion_id, d.conversion_created_at`;
  return [...before, ...now];
}
