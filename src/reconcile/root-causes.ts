import type postgres from 'postgres';
import type { Sql } from '../db/database.js';
import type { RunWindow } from './window.js';

/**
 * Why a pixel-only conversion has no S2S postback, so finance and the advertiser can fix the cause
 * rather than the symptom. Decided from what the engine recorded, in this order:
 *
 * - txid_other_click: the advertiser's postback for this txid named another click (it was recorded
 *   there; this pixel's conversion cannot be).
 * - a refused postback for this click in the attempt log (the most recent one, preferring one with
 *   this txid): signature (bad_signature, stale_signature, bad_token), address (ip_not_allowed),
 *   click_validity (invalid_click, with its reason: expired, wrong_advertiser...), invalid_request,
 *   conflict, unknown_advertiser (sent to the wrong advertiser URL), other_refusal.
 * - rate_limit: 429s are counted per advertiser and minute, not logged one by one (CONTRACT §4), so
 *   this is an inference: the advertiser was over its rate from the minute before the pixel until
 *   the grace period ended.
 * - awaiting_s2s: nothing known yet and the pixel is younger than PIXEL_GRACE_S.
 * - never_attempted: nothing reached the engine for this click.
 */

export const ROOT_CAUSES = [
  'txid_other_click',
  'signature',
  'address',
  'click_validity',
  'invalid_request',
  'conflict',
  'unknown_advertiser',
  'other_refusal',
  'rate_limit',
  'awaiting_s2s',
  'never_attempted',
] as const;

export type RootCause = (typeof ROOT_CAUSES)[number];

/** The columns of reconciliation_root_causes that a run's root-cause query fills, in its select's order. */
export const ROOT_CAUSE_QUERY_COLUMNS = ['advertiser_id', 'txid', 'click_id', 'click_created_at', 'offer_id', 'publisher_id', 'event', 'pixel_at', 'user_ip',
  'user_agent', 'existing_conversion_id', 'cause', 'error_code', 'reason', 'attempts', 'last_attempt_at', 'rate_limited'] as const;

/**
 * The root cause of every pixel-only unit first seen in `w`, as a query over the traffic tables.
 * With `advertiser`, every traffic table it reads is filtered by that advertiser (their distribution
 * column on Citus), so the whole query runs on one shard.
 */
export function rootCauseQuery(db: Sql, w: RunWindow, graceS: number, advertiser?: string): { ctes: postgres.Fragment; select: postgres.Fragment } {
  const from = w.from.toISOString();
  const to = w.to.toISOString();
  const grace = db`${graceS}::float8 * interval '1 second'`;
  const of = (alias: string) => (advertiser === undefined ? db`` : db`and ${db.unsafe(alias)}.advertiser_id = ${advertiser}`);
  // Most S2S postbacks arrive within the hour of their pixel; later ones are found by index below.
  const near = db`interval '1 hour'`;
  const ctes = db`near as materialized (
      -- S2S conversions around the window: the pixels of matched units (the common case) leave by a
      -- hash anti-join before any per-unit work.
      select advertiser_id, txid, click_id from conversions n
      where source = 's2s' and created_at >= ${from}::timestamptz - ${near} and created_at < ${to}::timestamptz + ${near} ${of('n')}
    ), unmatched as materialized (
      select p.* from pixel_events p
      where p.created_at >= ${from}::timestamptz and p.created_at < ${to}::timestamptz ${of('p')}
        and not exists (select 1 from near n where n.advertiser_id = p.advertiser_id and n.txid = p.txid and n.click_id = p.click_id)
    ), units as (
      select distinct on (advertiser_id, txid, click_id) * from unmatched order by advertiser_id, txid, click_id, created_at, id
    ), pixel_only as materialized (
      -- The rest by correlated lookups on indexes: a join would scan both whole tables once per slice.
      select p.*, c.id as existing_id, c.source as existing_source
      from units p
      -- At most one row (the txid key); the limit keeps the planner from turning this into a join.
      left join lateral (
        select c.id, c.source, c.click_id from conversion_txids t
        join conversions c on c.id = t.conversion_id and c.created_at = t.created_at and c.advertiser_id = t.advertiser_id
        where t.advertiser_id = p.advertiser_id and t.txid = p.txid ${of('t')} ${of('c')} limit 1
      ) c on true
      where not coalesce(c.source = 's2s' and c.click_id = p.click_id, false)
        -- First seen in an earlier window (window.ts): not this one's to explain.
        and (select min(e.created_at) from pixel_events e where e.click_id = p.click_id and e.txid = p.txid ${of('e')}) >= ${from}::timestamptz
    )`;
  const select = db`
    select u.advertiser_id, u.txid, u.click_id, u.click_created_at, u.offer_id, u.publisher_id, u.event,
           u.created_at as pixel_at, u.ip as user_ip, u.user_agent, u.existing_id as existing_conversion_id,
           case
             when u.existing_source = 's2s' then 'txid_other_click'
             when a.error_code in ('bad_signature', 'stale_signature', 'bad_token') then 'signature'
             when a.error_code = 'ip_not_allowed' then 'address'
             when a.error_code = 'invalid_click' then 'click_validity'
             when a.error_code in ('invalid_request', 'conflict', 'unknown_advertiser') then a.error_code
             when a.error_code is not null then 'other_refusal'
             when coalesce(rl.n, 0) > 0 then 'rate_limit'
             when u.created_at > now() - ${grace} then 'awaiting_s2s'
             else 'never_attempted'
           end as cause,
           a.error_code, a.reason, coalesce(a.n, 0)::int as attempts, a.received_at as last_attempt_at, coalesce(rl.n, 0) as rate_limited
    from pixel_only u
    left join lateral (
      select pa.error_code, pa.reason, pa.received_at, count(*) over () as n
      from postback_attempts pa
      where pa.click_id = u.click_id and (pa.txid = u.txid or pa.txid is null) ${of('pa')}
      order by (pa.txid is not null) desc, pa.received_at desc, pa.id desc
      limit 1
    ) a on true
    left join lateral (
      select sum(r.count)::bigint as n
      from postback_rate_limited r
      where r.advertiser_id = u.advertiser_id ${of('r')}
        and r.minute >= date_trunc('minute', u.created_at) - interval '1 minute'
        and r.minute <= u.created_at + ${grace}
    ) rl on true`;
  return { ctes, select };
}

/** Records a root cause for every pixel-only unit first seen in `w`. Returns how many. */
export async function recordRootCauses(db: Sql, runId: string, w: RunWindow, graceS: number): Promise<number> {
  const { ctes, select } = rootCauseQuery(db, w, graceS);
  const rows = await db`
    with ${ctes}, causes as (${select})
    insert into reconciliation_root_causes (run_id, ${db.unsafe(ROOT_CAUSE_QUERY_COLUMNS.join(', '))})
    select ${runId}, ${db.unsafe(ROOT_CAUSE_QUERY_COLUMNS.map((c) => `x.${c}`).join(', '))} from causes x
    returning 1`;
  return rows.length;
}

export type RootCauseItem = {
  advertiserId: string;
  offerId: string;
  publisherId: string;
  clickid: string;
  txid: string;
  event: string;
  pixelAt: string;
  cause: RootCause;
  errorCode: string | null;
  reason: string | null;
  refusedAttempts: number;
  lastAttemptAt: string | null;
  rateLimited: number;
  conversionId: string | null;
  recovered: boolean;
};

export type RootCauseKey = [advertiserId: string, txid: string, clickId: string];

/** One run's root causes, ordered by their key and paged after `after`. */
export async function listRootCauses(
  db: Sql,
  runId: string,
  opts: { cause?: RootCause; limit: number; after?: RootCauseKey },
): Promise<{ items: RootCauseItem[]; last: RootCauseKey | undefined }> {
  const rows = await db`
    select advertiser_id, offer_id, publisher_id, click_id, txid, event, pixel_at, cause, error_code, reason, attempts,
           last_attempt_at, rate_limited, coalesce(recovered_conversion_id, existing_conversion_id) as conversion_id,
           recovered_conversion_id is not null as recovered
    from reconciliation_root_causes
    where run_id = ${runId}
      ${opts.cause ? db`and cause = ${opts.cause}` : db``}
      ${opts.after ? db`and (advertiser_id, txid, click_id) > (${opts.after[0]}, ${opts.after[1]}, ${opts.after[2]})` : db``}
    order by advertiser_id, txid, click_id
    limit ${opts.limit}`;
  const items = rows.map((r) => ({
    advertiserId: r.advertiser_id as string,
    offerId: r.offer_id as string,
    publisherId: r.publisher_id as string,
    clickid: r.click_id as string,
    txid: r.txid as string,
    event: r.event as string,
    pixelAt: (r.pixel_at as Date).toISOString(),
    cause: r.cause as RootCause,
    errorCode: r.error_code as string | null,
    reason: r.reason as string | null,
    refusedAttempts: r.attempts as number,
    lastAttemptAt: (r.last_attempt_at as Date | null)?.toISOString() ?? null,
    rateLimited: Number(r.rate_limited),
    conversionId: r.conversion_id as string | null,
    recovered: r.recovered as boolean,
  }));
  const last = items[items.length - 1];
  return { items, last: last ? [last.advertiserId, last.txid, last.clickid] : undefined };
}
