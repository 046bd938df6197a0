import { DEFAULT_FLAG_AT } from '../admin/schemas.js';
import type postgres from 'postgres';
import type { Sql } from '../db/database.js';
import type { RunWindow } from './window.js';

/**
 * Recovery: a pixel-only conversion whose S2S postback is still missing PIXEL_GRACE_S after its
 * pixel becomes a conversion with source 'pixel', decision 'flagged' with reason 's2s_missing', so
 * an analyst decides before anyone is paid or notified (no delivery is queued; approving it does
 * that). It is dated at its pixel, when the user converted, and pays the offer's payout. The late
 * S2S postback for the same click and txid completes it (postback/commit-batch.ts completeRecovered).
 *
 * One statement: the conversions, their first status-history row and the run's per-hour counts
 * commit together. The txid key (conversion_txids, ON CONFLICT DO NOTHING) makes a rerun, a concurrent
 * run or an S2S postback arriving at the same moment harmless: whoever commits first owns the txid. The
 * score is the offer's flag threshold: flagged, and no more suspicious than that.
 */

/**
 * The run's root causes in `w` that recovery may turn into conversions: no conversion for their
 * txid when the run looked, the grace period over; one per txid (two clicks' pixels may name it: the
 * one claimed is the one inserted). With `clicks`, each carries its click's sub1-sub5.
 */
export function recoveryCandidates(db: Sql, runId: string, w: RunWindow, graceS: number, clicks: boolean): postgres.Fragment {
  const grace = db`${graceS}::float8 * interval '1 second'`;
  return db`
      select distinct on (r.advertiser_id, r.txid) r.* ${clicks ? db`, k.sub1, k.sub2, k.sub3, k.sub4, k.sub5` : db``}
      from reconciliation_root_causes r
      ${clicks ? db`left join clicks k on k.id = r.click_id and k.created_at = r.click_created_at and k.advertiser_id = r.advertiser_id` : db``}
      where r.run_id = ${runId} and r.existing_conversion_id is null and r.pixel_at <= now() - ${grace}
        and r.pixel_at >= ${w.from.toISOString()}::timestamptz and r.pixel_at < ${w.to.toISOString()}::timestamptz
      order by r.advertiser_id, r.txid, r.pixel_at, r.click_id`;
}

/** Columns of a recovered conversion, in the order of recoveredValues(). */
export const RECOVERED_COLUMNS = `id, advertiser_id, offer_id, publisher_id, click_id, click_created_at, txid, event, status,
  sub1, sub2, sub3, sub4, sub5, payout_minor, revenue_minor, currency, decision, score, reasons, evidence, source, user_ip, user_agent,
  created_at, updated_at`;

/**
 * A recovered conversion's values from a candidate `c` (recoveryCandidates' columns with its click's
 * subs), its offer `o`, and `id`, the conversion ID its txid key was claimed with.
 */
export function recoveredValues(db: Sql, runId: string, graceS: number, id: postgres.Fragment): postgres.Fragment {
  return db`${id}, c.advertiser_id, c.offer_id, c.publisher_id, c.click_id, c.click_created_at, c.txid, c.event, 'approved',
             c.sub1, c.sub2, c.sub3, c.sub4, c.sub5, o.payout_minor, o.revenue_minor, o.currency, 'flagged',
             coalesce((o.fraud ->> 'flagAt')::smallint, ${DEFAULT_FLAG_AT}::smallint), array['s2s_missing'],
             jsonb_build_array(jsonb_build_object(
               'code', 's2s_missing', 'mode', 'score', 'evaluated', true,
               'points', coalesce((o.fraud ->> 'flagAt')::int, ${DEFAULT_FLAG_AT}::int),
               'value', jsonb_build_object('pixelAt', to_char(c.pixel_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                                           'event', c.event, 'rootCause', c.cause, 'errorCode', c.error_code, 'reason', c.reason,
                                           'refusedAttempts', c.attempts, 'rateLimited', c.rate_limited, 'runId', ${runId}::text),
               'threshold', jsonb_build_object('graceS', ${graceS}::float8),
               'window', ${`${graceS} s after the pixel`}::text,
               'note', 'recovered by the reconciler: the browser pixel fired but no S2S postback arrived within the grace period; root cause: ' || c.cause)),
             'pixel', c.user_ip, c.user_agent, c.pixel_at, now()`;
}

/** Recovers the run's eligible pixel-only units first seen in `w`. Returns how many. */
export async function recoverPixelOnly(db: Sql, runId: string, w: RunWindow, graceS: number): Promise<number> {
  const rows = await db<{ n: number }[]>`
    with candidates as (${recoveryCandidates(db, runId, w, graceS, true)}
    ), claimed as (
      -- Dated at the pixel, and so is the ID (it names the conversion's day partition).
      insert into conversion_txids (advertiser_id, txid, conversion_id, created_at)
      select c.advertiser_id, c.txid, timed_id('cv', c.pixel_at), c.pixel_at
      from candidates c
      -- The unique key's order, as the intake locks it, so the two never wait on each other in a cycle.
      order by c.advertiser_id, c.txid
      on conflict (advertiser_id, txid) do nothing
      returning advertiser_id, txid, conversion_id
    ), inserted as (
      insert into conversions (${db.unsafe(RECOVERED_COLUMNS)})
      select ${recoveredValues(db, runId, graceS, db`t.conversion_id`)}
      from candidates c
      join claimed t on t.advertiser_id = c.advertiser_id and t.txid = c.txid
      join offers o on o.id = c.offer_id
      returning id, advertiser_id, txid, click_id, offer_id, publisher_id, payout_minor, currency, created_at
    ), history as (
      insert into conversion_status_history (conversion_id, advertiser_id, from_status, to_status, payout_minor, currency, source, created_at)
      select id, advertiser_id, null, 'approved', payout_minor, currency, 'pixel', greatest(now(), created_at) from inserted
    ), counted as (
      insert into reconciliation_rows (run_id, offer_id, publisher_id, hour, s2s, pixel, matched, s2s_only, pixel_only, recovered, refired, expired)
      select ${runId}, offer_id, publisher_id, date_trunc('hour', created_at, 'UTC'), 0, 0, 0, 0, 0, count(*), 0, 0
      from inserted
      group by offer_id, publisher_id, date_trunc('hour', created_at, 'UTC')
      ${db.unsafe(ADD_RECOVERED)}
    )
    select count(*)::int as n from inserted`;
  const recovered = rows[0]?.n ?? 0;
  if (recovered > 0) await linkRecovered(db, runId, w);
  return recovered;
}

/** Adds counted rows' recoveries to the run's rows (an upsert's conflict clause). */
export const ADD_RECOVERED = 'on conflict (run_id, offer_id, publisher_id, hour) do update set recovered = reconciliation_rows.recovered + excluded.recovered';

/**
 * Points the run's root causes at the conversions it recovered. A unit that had no conversion when
 * the run looked and has a pixel-sourced one for the same click now was recovered by this run: runs
 * are serialised, and only the reconciler creates pixel conversions. A separate statement, driven by
 * the unique key: inside the insert above, the planner has no row estimates for its output.
 */
async function linkRecovered(db: Sql, runId: string, w: RunWindow): Promise<void> {
  await db`
    update reconciliation_root_causes r set recovered_conversion_id = c.id
    from conversion_txids t, conversions c
    where r.run_id = ${runId} and r.existing_conversion_id is null
      and r.pixel_at >= ${w.from.toISOString()}::timestamptz and r.pixel_at < ${w.to.toISOString()}::timestamptz
      and t.advertiser_id = r.advertiser_id and t.txid = r.txid
      and c.id = t.conversion_id and c.created_at = t.created_at and c.advertiser_id = t.advertiser_id
      and c.click_id = r.click_id and c.source = 'pixel'`;
}
