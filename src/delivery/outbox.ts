import type { Sql, TxSql } from '../db/database.js';
import { newId } from '../ids.js';

/**
 * The outbox: an outbound postback is a row written in the same transaction as the conversion that
 * causes it, so a committed conversion can never miss its delivery and a rolled-back one never
 * sends. The row's id is the `webhook-id` of every attempt, forever.
 */
export async function enqueueDeliveries(
  tx: TxSql | Sql,
  items: { conversionId: string; publisherId: string; conversionCreatedAt: Date }[],
  refireWindowS: number,
): Promise<string[]> {
  if (items.length === 0) return [];
  const ids = items.map(() => newId('dlv'));
  await tx`
    insert into deliveries (id, conversion_id, publisher_id, state, next_attempt_at, deadline_at)
    select id, conversion_id, publisher_id, 'pending', now(), created + make_interval(secs => ${refireWindowS})
    from unnest(${ids}::text[], ${items.map((i) => i.conversionId)}::text[], ${items.map((i) => i.publisherId)}::text[],
                ${items.map((i) => i.conversionCreatedAt.toISOString())}::timestamptz[]) as u(id, conversion_id, publisher_id, created)`;
  // Delivered to listening workers only when the transaction commits.
  await tx`select pg_notify('deliveries', '')`;
  return ids;
}
