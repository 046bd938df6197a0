import type postgres from 'postgres';
import type { Sql, TxSql } from '../db/database.js';
import { createdRangeOfId } from '../ids.js';
import { wokenCte } from './wake.js';

/**
 * The transactional outbox, and the only module that creates deliveries (or takes back those of a
 * conversion the intake undoes). Deliveries are written in the same transaction as the conversion
 * (or the analyst's approval), so a committed conversion always has its outbound postback queued, and
 * a rolled back one never does. Every statement here wakes the workers itself (wake.ts), in the same
 * statement, so the signal arrives with the commit and costs no round trip. The group commit's
 * one-statement path (postback/commit-fresh.ts) embeds `queueDeliveriesCtes` in its INSERT chain.
 */

/**
 * Whether the publisher `p` wants the conversion `c`'s event (CONTRACT §10): a publisher with an
 * `events` list is sent only those, first delivery and status changes alike. Every statement that
 * queues a delivery filters with this, so a filtered event never gets a row at all.
 */
const PUBLISHER_WANTS_EVENT = '(p.events is null or c.event = any(p.events))';

/**
 * Deliveries are day-partitioned on created_at, which their ID carries (timed_id). A delivery is never
 * dated before its conversion, even when the database's clock is behind the node that dated the
 * conversion: reads of a conversion's deliveries look only in partitions from the conversion's day on.
 */
const DATED_AFTER_CONVERSION = 'greatest(now(), c.created_at)';

/**
 * CTEs `queued` (the first delivery, sequence 0, of each row of `source` whose event its publisher
 * takes; returns id, conversion_id) and `woken` (the workers' wake-up when any was queued). The
 * statement must read `woken` (`cross join woken`), or PostgreSQL skips it.
 *
 * `source` is a SELECT with the columns conversion_id, conversion_created_at, publisher_id, event and
 * status (the conversion's, which the delivery announces), window_from (the refire window starts
 * here: the conversion's time, or the approval's for one an analyst released) and dated_at (the
 * delivery's created_at, never before its conversion's).
 */
export function queueDeliveriesCtes(db: Sql | TxSql, source: postgres.Fragment, refireWindowS: number): postgres.Fragment {
  const deadline = db`c.window_from + ${refireWindowS}::float8 * interval '1 second'`;
  return db`queued as (
      insert into deliveries (id, created_at, conversion_id, conversion_created_at, publisher_id, state, status, next_attempt_at, deadline_at)
      select timed_id('dlv', c.dated_at), c.dated_at, c.conversion_id, c.conversion_created_at, c.publisher_id, 'pending', c.status,
             -- A disabled endpoint's deliveries wait parked at their deadline (rescheduling.ts) until it is re-enabled.
             case when p.disabled_at is null then now() else ${deadline} end,
             ${deadline}
      from (${source}) as c
      left join publishers p on p.id = c.publisher_id
      where ${db.unsafe(PUBLISHER_WANTS_EVENT)}
      returning id, conversion_id, publisher_id
    ), ${wokenCte(db, 'queued')}`;
}

export type OutboxItem = { conversionId: string; publisherId: string; conversionCreatedAt: Date };

/**
 * Queues one delivery per item, due now, expiring `refireWindowS` after `conversionCreatedAt`.
 * Returns the IDs of the deliveries queued, in item order (an item whose event its publisher does not
 * take has none); each is that delivery's `webhook-id` on every try, forever.
 */
export async function enqueueDeliveries(tx: TxSql | Sql, items: OutboxItem[], refireWindowS: number): Promise<string[]> {
  if (items.length === 0) return [];
  const ranges = items.map((i) => createdRangeOfId(i.conversionId));
  const source = tx`
    select c.id as conversion_id, c.created_at as conversion_created_at, t.publisher_id, c.event, c.status,
           t.created_at as window_from, ${tx.unsafe(DATED_AFTER_CONVERSION)} as dated_at
    from unnest(
      ${items.map((i) => i.conversionId)}::text[],
      ${items.map((i) => i.publisherId)}::text[],
      ${items.map((i) => i.conversionCreatedAt.toISOString())}::timestamptz[],
      ${ranges.map((r) => r[0])}::timestamptz[], ${ranges.map((r) => r[1])}::timestamptz[]
    ) as t(conversion_id, publisher_id, created_at, lo, hi)
    join conversions c on c.id = t.conversion_id and c.created_at >= t.lo and c.created_at < t.hi`;
  const inserted = await tx<{ id: string; conversion_id: string }[]>`
    with ${queueDeliveriesCtes(tx, source, refireWindowS)}
    select queued.id, queued.conversion_id from queued cross join woken`;
  const byConversion = new Map(inserted.map((r) => [r.conversion_id, r.id]));
  return items.map((i) => byConversion.get(i.conversionId)).filter((id): id is string => id !== undefined);
}

/**
 * The same, for conversions written earlier in the current transaction, named by ID and time: the
 * publisher and creation time are read from the rows themselves, so this statement can be pipelined
 * right behind the INSERT that creates them (a conversion not created is simply not joined).
 */
export function enqueueDeliveriesOf(tx: TxSql, conversions: { id: string; createdAt: Date }[], refireWindowS: number) {
  const source = tx`
    select c.id as conversion_id, c.created_at as conversion_created_at, c.publisher_id, c.event, c.status,
           c.created_at as window_from, ${tx.unsafe(DATED_AFTER_CONVERSION)} as dated_at
    from unnest(${conversions.map((c) => c.id)}::text[], ${conversions.map((c) => c.createdAt.toISOString())}::timestamptz[]) as u(id, at)
    join conversions c on c.id = u.id and c.created_at = u.at`;
  return tx`with ${queueDeliveriesCtes(tx, source, refireWindowS)} select woken.n from woken`;
}

/**
 * Whether the conversion already has a delivery, in any state: "its outbound postback fired"
 * (CONTRACT §10). Deliveries are never dated before their conversion, hence the time bound.
 */
export async function hasDelivery(tx: TxSql, conversion: { id: string; createdAt: Date }): Promise<boolean> {
  const [row] = await tx`select 1 from deliveries where conversion_id = ${conversion.id} and created_at >= ${conversion.createdAt} limit 1`;
  return row !== undefined;
}

/**
 * Takes back the deliveries of conversions the intake undoes in the same transaction (their message
 * ID turned out reused): nothing was committed, so no worker has seen them. `since` bounds the
 * partitions: the earliest of those conversions' times.
 */
export async function withdrawDeliveries(tx: TxSql, conversionIds: string[], since: Date): Promise<void> {
  await tx`delete from deliveries where conversion_id = any(${conversionIds}::text[]) and created_at >= ${since.toISOString()}::timestamptz`;
}

/**
 * A status change of a conversion that was already sent (CONTRACT §10), called under the
 * conversion's row lock in the transaction that commits the change. Queues one more delivery, with
 * a new ID (its `webhook-id`), the next sequence number and the new status fixed in the row, when:
 *
 * - the publisher has `onStatusChange` (read now, so turning it on applies to later changes);
 * - the conversion already has a delivery (any state: pending, failing, delivered or expired). That
 *   is what "its outbound postback fired" means here: the publisher was told of the conversion, or
 *   is being told. A flagged conversion not yet approved, an advertiser-rejected one and an event the
 *   publisher filters out have none, so they get no status change either (an approval later sends
 *   the first delivery with the status current then).
 *
 * An earlier delivery still pending or retrying is not superseded: each announces the status it was
 * queued with, so the receiver gets every change once, pending before approved before rejected. A
 * receiver that gets them out of order (a retry of an older one succeeding late) can order them by
 * status alone, since the allowed changes only go forward (pending → approved → rejected).
 *
 * The deadline is the first delivery's: the refire window counts from the conversion (from the
 * approval for one an analyst released), not from the change. A change after it is queued and
 * expires at once (kept for the record and for a replay), since nothing may be sent after the window.
 *
 * Returns the delivery's ID, or null when none was queued.
 */
export async function enqueueStatusChange(tx: TxSql, conversion: { id: string; createdAt: Date }, status: string): Promise<string | null> {
  const [row] = await tx<{ id: string }[]>`
    with queued as (
      insert into deliveries (id, created_at, conversion_id, conversion_created_at, publisher_id, state, status, sequence, next_attempt_at, deadline_at)
      select timed_id('dlv', x.at), x.at, c.id, c.created_at, c.publisher_id, 'pending', ${status}, prior.last_sequence + 1,
             case when p.disabled_at is null then least(now(), prior.deadline_at) else prior.deadline_at end,
             prior.deadline_at
      from conversions c
      join publishers p on p.id = c.publisher_id
      cross join lateral (select ${tx.unsafe(DATED_AFTER_CONVERSION)} as at) x
      cross join lateral (
        select max(d.sequence) as last_sequence, min(d.deadline_at) as deadline_at
        from deliveries d where d.conversion_id = c.id and d.created_at >= c.created_at
      ) prior
      where c.id = ${conversion.id} and c.created_at = ${conversion.createdAt} and p.on_status_change and prior.last_sequence is not null and ${tx.unsafe(PUBLISHER_WANTS_EVENT)}
      returning id, publisher_id
    ), ${wokenCte(tx, 'queued')}
    select queued.id from queued cross join woken`;
  return row?.id ?? null;
}
