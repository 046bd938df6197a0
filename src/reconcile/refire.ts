import type { Sql } from '../db/database.js';
import { expiredDeliveriesCte, refiredDeliveriesCte } from '../delivery/rescheduling.js';
import { wakeWorkers } from '../delivery/wake.js';
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
 *
 * The changes to deliveries are the delivery feature's (delivery/rescheduling.ts); the counting is
 * this feature's, in the same statement, so a run's counts and what they count commit together.
 */

/** Re-fires the deliveries of conversions created in `w`, a slice of the run's window `run` (the mark). */
export async function refireDeliveries(db: Sql, runId: string, w: RunWindow, run: RunWindow): Promise<number> {
  const rows = await db<{ n: number }[]>`
    with ${refiredDeliveriesCte(db, w, run)}, counted as (
      insert into reconciliation_rows (run_id, offer_id, publisher_id, hour, s2s, pixel, matched, s2s_only, pixel_only, recovered, refired, expired)
      select ${runId}, offer_id, publisher_id, date_trunc('hour', created_at, 'UTC'), 0, 0, 0, 0, 0, 0, count(*), 0
      from refired
      group by offer_id, publisher_id, date_trunc('hour', created_at, 'UTC')
      on conflict (run_id, offer_id, publisher_id, hour) do update set refired = reconciliation_rows.refired + excluded.refired
    )
    select count(*)::int as n from refired`;
  const total = rows[0]?.n ?? 0;
  if (total > 0) await wakeWorkers(db);
  return total;
}

/** Expires, and counts once, the deliveries of conversions created in `w`. */
export async function expireDeliveries(db: Sql, runId: string, w: RunWindow): Promise<number> {
  const rows = await db<{ n: number }[]>`
    with ${expiredDeliveriesCte(db, runId, w)}, counted as (
      insert into reconciliation_rows (run_id, offer_id, publisher_id, hour, s2s, pixel, matched, s2s_only, pixel_only, recovered, refired, expired)
      select ${runId}, offer_id, publisher_id, date_trunc('hour', created_at, 'UTC'), 0, 0, 0, 0, 0, 0, 0, count(*)
      from expired_in_slice
      group by offer_id, publisher_id, date_trunc('hour', created_at, 'UTC')
      on conflict (run_id, offer_id, publisher_id, hour) do update set expired = reconciliation_rows.expired + excluded.expired
    )
    select count(*)::int as n from expired_in_slice`;
  return rows[0]?.n ?? 0;
}
