import type { Sql, TxSql } from '../db/database.js';
import { newId } from '../ids.js';

/**
 * The transactional outbox. Deliveries are written in the same transaction as the conversion (or the
 * analyst's approval), so a committed conversion always has its outbound postback queued, and a rolled
 * back one never does. The NOTIFY is delivered only on commit, waking every node's worker at once.
 */

/** The LISTEN/NOTIFY channel workers wait on. */
export const DELIVERIES_CHANNEL = 'deliveries';

export type OutboxItem = { conversionId: string; publisherId: string; conversionCreatedAt: Date };

/**
 * Queues one delivery per item, due now, expiring `refireWindowS` after its conversion. Returns the
 * delivery IDs in item order; each is that delivery's `webhook-id` on every try, forever.
 */
export async function enqueueDeliveries(tx: TxSql | Sql, items: OutboxItem[], refireWindowS: number): Promise<string[]> {
  if (items.length === 0) return [];
  const ids = items.map(() => newId('dlv'));
  await tx`
    insert into deliveries (id, conversion_id, publisher_id, state, next_attempt_at, deadline_at)
    select t.id, t.conversion_id, t.publisher_id, 'pending',
           -- A disabled endpoint's deliveries wait parked at their deadline (see endpoint.ts) until it is re-enabled.
           case when p.disabled_at is null then now() else t.deadline_at end,
           t.deadline_at
    from (select *, u.created_at + ${refireWindowS}::float8 * interval '1 second' as deadline_at from unnest(
      ${ids}::text[],
      ${items.map((i) => i.conversionId)}::text[],
      ${items.map((i) => i.publisherId)}::text[],
      ${items.map((i) => i.conversionCreatedAt.toISOString())}::timestamptz[]
    ) as u(id, conversion_id, publisher_id, created_at)) as t
    left join publishers p on p.id = t.publisher_id`;
  await tx`select pg_notify(${DELIVERIES_CHANNEL}, '')`;
  return ids;
}

/**
 * The same, for conversions written earlier in the current transaction, named only by ID: the
 * publisher and creation time are read from the rows themselves, so this statement can be pipelined
 * right behind the INSERT that creates them (a conversion not created is simply not joined).
 */
export function enqueueDeliveriesOf(tx: TxSql, conversionIds: string[], refireWindowS: number) {
  const ids = conversionIds.map(() => newId('dlv'));
  return tx`
    with queued as (
      insert into deliveries (id, conversion_id, publisher_id, state, next_attempt_at, deadline_at)
      select u.id, c.id, c.publisher_id, 'pending',
             case when p.disabled_at is null then now() else c.created_at + ${refireWindowS}::float8 * interval '1 second' end,
             c.created_at + ${refireWindowS}::float8 * interval '1 second'
      from unnest(${ids}::text[], ${conversionIds}::text[]) as u(id, conversion_id)
      join conversions c on c.id = u.conversion_id
      left join publishers p on p.id = c.publisher_id
      returning id)
    select pg_notify(${DELIVERIES_CHANNEL}, '') from (select 1 from queued limit 1) as any_queued`;
}
