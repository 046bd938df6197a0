import type { Sql } from '../db/database.js';
import { DELIVERIES_CHANNEL } from '../delivery/outbox.js';
import type { RunWindow } from './window.js';

/**
 * Re-fire and expiry of outbound postbacks whose conversion falls in the window, counted per the
 * conversion's offer, publisher and hour.
 *
 * Re-fire: an open delivery (pending or failed) still before its deadline (the conversion time plus
 * REFIRE_WINDOW_S, fixed when it was queued) that waits on its backoff is made due now, and every
 * node's worker is woken. Left alone: deliveries already due (the worker has them), in flight (a
 * live lease), of a publisher disabled by a 410 (only an admin re-enables it), and those a run over
 * this very window already re-fired, so repeating a run changes nothing even after the worker has
 * tried and failed again in between.
 *
 * Expiry: an open delivery past its deadline and not in flight becomes 'expired'. The worker's own
 * sweep expires them too; a run counts every expiry in its window that no run had counted yet,
 * whoever made it, so each is reported once.
 */

/** Re-fires the deliveries of conversions created in `w`, a slice of the run's window `run` (the mark). */
export async function refireDeliveries(db: Sql, runId: string, w: RunWindow, run: RunWindow): Promise<number> {
  const window = db`tstzrange(${run.from.toISOString()}::timestamptz, ${run.to.toISOString()}::timestamptz, '[)')`;
  const rows = await db<{ n: number }[]>`
    with refired as (
      update deliveries d
      set next_attempt_at = now(), refired_at = now(), refire_window = ${window}, updated_at = now()
      from conversions c, publishers p
      where c.id = d.conversion_id and p.id = d.publisher_id
        and d.state in ('pending', 'failed')
        and c.created_at >= ${w.from.toISOString()}::timestamptz and c.created_at < ${w.to.toISOString()}::timestamptz
        and d.deadline_at > now()
        and d.next_attempt_at > now()
        and (d.lease_until is null or d.lease_until <= now())
        and p.disabled_at is null
        and d.refire_window is distinct from ${window}
      returning c.offer_id, c.publisher_id, c.created_at
    ), counted as (
      insert into reconciliation_rows (run_id, offer_id, publisher_id, hour, s2s, pixel, matched, s2s_only, pixel_only, recovered, refired, expired)
      select ${runId}, offer_id, publisher_id, date_trunc('hour', created_at, 'UTC'), 0, 0, 0, 0, 0, 0, count(*), 0
      from refired
      group by offer_id, publisher_id, date_trunc('hour', created_at, 'UTC')
      on conflict (run_id, offer_id, publisher_id, hour) do update set refired = reconciliation_rows.refired + excluded.refired
    )
    select count(*)::int as n from refired`;
  const total = rows[0]?.n ?? 0;
  if (total > 0) await db`select pg_notify(${DELIVERIES_CHANNEL}, '')`;
  return total;
}

/** Expires, and counts once, the deliveries of conversions created in `w`. */
export async function expireDeliveries(db: Sql, runId: string, w: RunWindow): Promise<number> {
  const from = w.from.toISOString();
  const to = w.to.toISOString();
  const rows = await db<{ n: number }[]>`
    with expired_now as (
      update deliveries d
      set state = 'expired', lease_until = null, leased_by = null, expiry_reported_by = ${runId}, updated_at = now()
      from conversions c
      where c.id = d.conversion_id
        and d.state in ('pending', 'failed')
        and c.created_at >= ${from}::timestamptz and c.created_at < ${to}::timestamptz
        and d.deadline_at <= now()
        and (d.lease_until is null or d.lease_until <= now())
      returning c.offer_id, c.publisher_id, c.created_at
    ), expired_before as (
      -- Disjoint from the rows above: this sub-statement sees the table as it was before them.
      update deliveries d
      set expiry_reported_by = ${runId}
      from conversions c
      where c.id = d.conversion_id
        and d.state = 'expired' and d.expiry_reported_by is null
        and c.created_at >= ${from}::timestamptz and c.created_at < ${to}::timestamptz
      returning c.offer_id, c.publisher_id, c.created_at
    ), found as (
      select * from expired_now union all select * from expired_before
    ), counted as (
      insert into reconciliation_rows (run_id, offer_id, publisher_id, hour, s2s, pixel, matched, s2s_only, pixel_only, recovered, refired, expired)
      select ${runId}, offer_id, publisher_id, date_trunc('hour', created_at, 'UTC'), 0, 0, 0, 0, 0, 0, 0, count(*)
      from found
      group by offer_id, publisher_id, date_trunc('hour', created_at, 'UTC')
      on conflict (run_id, offer_id, publisher_id, hour) do update set expired = reconciliation_rows.expired + excluded.expired
    )
    select count(*)::int as n from found`;
  return rows[0]?.n ?? 0;
}
