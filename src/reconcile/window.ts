import type postgres from 'postgres';
import type { Sql } from '../db/database.js';

/**
 * The comparison at the heart of a run: S2S conversions against pixel events over a window, counted
 * per offer, publisher and UTC hour.
 *
 * Unit of comparison: one conversion, keyed (advertiser, txid, click). Its S2S side is a conversion
 * with source 's2s'; its pixel side is any pixel event with the same click and txid (a pixel fired
 * for several events counts once). A pixel and an S2S postback for the same txid but different clicks
 * are two units that do not match. A conversion recovered from a pixel (source 'pixel') is not S2S:
 * its unit stays pixel-only until the late postback completes it.
 *
 * Each unit belongs to exactly one window and one hour: those of its first sighting, the earlier of
 * its first pixel and its S2S conversion. So adjacent windows never count a unit twice, a run may
 * work through its window in slices (see reconciler.ts) with the same result, and in every row
 * s2s = matched + s2sOnly and pixel = matched + pixelOnly.
 */

export type RunWindow = { from: Date; to: Date };


/** Largest window one run may cover (API and CLI): a month of hourly rows, still one sitting of work. */
export const MAX_WINDOW_DAYS = 31;

/**
 * The units first seen in `w`, as CTEs ending in `units` (offer_id, publisher_id, t, has_s2s,
 * has_pixel). With `advertiser`, every traffic table read is filtered by that advertiser (their
 * distribution column on Citus), so the query runs on one shard.
 */
export function comparisonUnits(db: Sql, w: RunWindow, advertiser?: string): postgres.Fragment {
  const from = w.from.toISOString();
  const to = w.to.toISOString();
  const of = (alias: string) => (advertiser === undefined ? db`` : db`and ${db.unsafe(alias)}.advertiser_id = ${advertiser}`);
  return db`
    -- Materialised (here and below): inlined, a correlated lookup would run once per reference.
    s2s as materialized (
      select c.advertiser_id, c.txid, c.click_id, c.offer_id, c.publisher_id, c.created_at,
             (select min(pe.created_at) from pixel_events pe where pe.click_id = c.click_id and pe.txid = c.txid ${of('pe')}) as pixel_at
      from conversions c
      where c.source = 's2s' and c.created_at >= ${from}::timestamptz and c.created_at < ${to}::timestamptz ${of('c')}
    ), px_rest as materialized (
      -- Pixel units whose S2S is not inside the window (those are counted from the S2S side): a hash
      -- anti-join removes the common case before any grouping or per-unit work.
      select p.advertiser_id, p.txid, p.click_id, min(p.offer_id) as offer_id, min(p.publisher_id) as publisher_id,
             min(p.created_at) as pixel_at
      from pixel_events p
      where p.created_at >= ${from}::timestamptz and p.created_at < ${to}::timestamptz ${of('p')}
        and not exists (select 1 from s2s where s2s.click_id = p.click_id and s2s.txid = p.txid and s2s.advertiser_id = p.advertiser_id)
      group by p.advertiser_id, p.txid, p.click_id
    ), px_units as materialized (
      -- Correlated lookups by index: a join would scan both whole tables once per slice. A unit
      -- whose pixel fired earlier (for another event) was first seen in an earlier window.
      select px.offer_id, px.publisher_id, px.pixel_at,
             (select c.created_at from conversion_txids t
              join conversions c on c.id = t.conversion_id and c.created_at = t.created_at and c.advertiser_id = t.advertiser_id
              where t.advertiser_id = px.advertiser_id and t.txid = px.txid and c.click_id = px.click_id and c.source = 's2s' ${of('t')} ${of('c')}) as s2s_at
      from px_rest px
      where (select min(e.created_at) from pixel_events e where e.click_id = px.click_id and e.txid = px.txid ${of('e')}) >= ${from}::timestamptz
    ), units as (
      -- least() skips a null pixel time.
      select offer_id, publisher_id, least(created_at, pixel_at) as t, true as has_s2s, pixel_at is not null as has_pixel
      from s2s
      where pixel_at is null or pixel_at >= ${from}::timestamptz
      union all
      -- A unit whose S2S came before the window was first seen in an earlier window.
      select offer_id, publisher_id, pixel_at, s2s_at is not null, true
      from px_units
      where s2s_at is null or s2s_at >= ${to}::timestamptz
    )`;
}

/** The comparison columns of the run's rows from `units`, one row per offer, publisher and hour. */
export const COMPARISON_COUNTS = `offer_id, publisher_id, date_trunc('hour', t, 'UTC') as hour,
  count(*) filter (where has_s2s) as s2s, count(*) filter (where has_pixel) as pixel, count(*) filter (where has_s2s and has_pixel) as matched,
  count(*) filter (where has_s2s and not has_pixel) as s2s_only, count(*) filter (where has_pixel and not has_s2s) as pixel_only
  from units group by offer_id, publisher_id, date_trunc('hour', t, 'UTC')`;

/** Adds the counted rows' comparison columns to the run's rows (an upsert's conflict clause). */
export const ADD_COMPARISON = `on conflict (run_id, offer_id, publisher_id, hour) do update
  set s2s = reconciliation_rows.s2s + excluded.s2s, pixel = reconciliation_rows.pixel + excluded.pixel,
      matched = reconciliation_rows.matched + excluded.matched, s2s_only = reconciliation_rows.s2s_only + excluded.s2s_only,
      pixel_only = reconciliation_rows.pixel_only + excluded.pixel_only`;

/** Adds the units first seen in `w` to the comparison columns of the run's rows. */
export async function compareWindow(db: Sql, runId: string, w: RunWindow): Promise<number> {
  const rows = await db`
    with ${comparisonUnits(db, w)}, counts as (select ${db.unsafe(COMPARISON_COUNTS)})
    insert into reconciliation_rows (run_id, offer_id, publisher_id, hour, s2s, pixel, matched, s2s_only, pixel_only, recovered, refired, expired)
    select ${runId}, offer_id, publisher_id, hour, s2s, pixel, matched, s2s_only, pixel_only, 0, 0, 0 from counts
    ${db.unsafe(ADD_COMPARISON)}
    returning 1`;
  return rows.length;
}
