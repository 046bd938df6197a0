import type { Sql } from '../../src/db/database.js';

/**
 * The reconciliation benchmark's data set, made inside PostgreSQL with generate_series (set-based,
 * no rows through Node), deterministic for a given size. Over a 72-hour window ending now, per
 * `clicks` clicks (evenly spread over offers, publishers and time):
 * - every 10th click converts: an S2S conversion 0-30 min after the click (`clicks / 10`);
 *   9 in 10 of those also fired the pixel a few seconds before the S2S arrived (matched), 1 in 10 did not (S2S only);
 * - 1 click in 100 fired only the pixel (pixel-only, `clicks / 100`), so pixel events = `clicks / 10`;
 *   a third of those left a refused postback in the attempt log (signature, address, click validity);
 * - every conversion has one outbound delivery: 98% delivered, 1% failed and waiting an hour on its
 *   backoff (re-fired by a run), 1% pending past its deadline (expired by a run or the worker).
 */

export const WINDOW_H = 72;

export type DataShape = { clicks: number; conversions: number; pixels: number; pixelOnly: number; deliveries: number };

export type CatalogIds = { advertiserId: string; offerIds: string[]; publisherIds: string[] };

export async function generateData(sql: Sql, ids: CatalogIds, clicks: number, to: Date, log: (line: string) => void): Promise<DataShape> {
  const from = new Date(to.getTime() - WINDOW_H * 3600_000);
  const stepMs = (WINDOW_H * 3600_000) / clicks;
  const offers = sql.array(ids.offerIds);
  const pubs = sql.array(ids.publisherIds);
  const o = ids.offerIds.length;
  const p = ids.publisherIds.length;
  const at = (i: string) => sql`(${from.toISOString()}::timestamptz + (${sql.unsafe(i)} - 1) * ${stepMs}::float8 * interval '1 millisecond')`;
  // Conversion i arrives 0-30 min after its click, never after the window's end.
  const convAt = sql`least(${at('i')} + ((i::bigint * 7919) % 1800) * interval '1 second', ${to.toISOString()}::timestamptz - interval '1 second')`;
  const offer = sql`(${offers}::text[])[1 + i % ${o}]`;
  const pub = sql`(${pubs}::text[])[1 + i % ${p}]`;

  await sql`select ensure_partitions('clicks', ${from.toISOString()}::date, ${to.toISOString()}::date)`;
  const step = async (label: string, run: () => Promise<unknown>) => {
    const t0 = performance.now();
    await run();
    log(`${label}: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  };
  await step(`${clicks.toLocaleString('en-US')} clicks`, () => sql`
    insert into clicks (id, created_at, offer_id, publisher_id, advertiser_id, sub1, ip, user_agent)
    select 'bc' || i, ${at('i')}, ${offer}, ${pub}, ${ids.advertiserId}, 's' || (i % 97), ('198.51.100.' || (i % 250))::inet, 'Mozilla/5.0 bench'
    from generate_series(1, ${clicks}) as i`);
  await step('conversions', () => sql`
    insert into conversions (id, advertiser_id, offer_id, publisher_id, click_id, click_created_at, txid, event, status,
                             payout_minor, revenue_minor, currency, decision, score, source, created_at, updated_at)
    select 'bcv' || i, ${ids.advertiserId}, ${offer}, ${pub}, 'bc' || i, ${at('i')}, 't' || i, 'conversion', 'approved',
           250, 250, 'USD', 'accepted', 0, 's2s', ${convAt}, ${convAt}
    from generate_series(10, ${clicks}, 10) as i`);
  // The txid key the intake writes beside every conversion (unique across conversions' partitions):
  // reconciliation finds a pixel's S2S conversion through it, and recovery claims txids in it.
  await step('txid keys', () => sql`
    insert into conversion_txids (advertiser_id, txid, conversion_id, created_at)
    select advertiser_id, txid, id, created_at from conversions where id like 'bcv%'`);
  await step('pixel events', () => sql`
    insert into pixel_events (click_id, click_created_at, advertiser_id, offer_id, publisher_id, event, txid, ip, user_agent, created_at)
    select 'bc' || i, ${at('i')}, ${ids.advertiserId}, ${offer}, ${pub}, 'conversion', 't' || i, '198.51.100.1'::inet, 'Mozilla/5.0 bench',
           ${convAt} - interval '5 seconds'
    from generate_series(10, ${clicks}, 10) as i where (i / 10) % 10 <> 0
    union all
    select 'bc' || i, ${at('i')}, ${ids.advertiserId}, ${offer}, ${pub}, 'conversion', 'p' || i, '198.51.100.2'::inet, 'Mozilla/5.0 bench',
           ${at('i')} + interval '30 seconds'
    from generate_series(5, ${clicks}, 100) as i`);
  await step('refused postbacks in the attempt log', () => sql`
    insert into postback_attempts (advertiser_id, received_at, source_ip, http_status, error_code, reason, click_id, txid)
    select ${ids.advertiserId}, ${at('i')} + interval '40 seconds', '192.0.2.1'::inet,
           (array[401, 403, 422])[1 + (i / 300) % 3], (array['bad_signature', 'ip_not_allowed', 'invalid_click'])[1 + (i / 300) % 3],
           case when (i / 300) % 3 = 2 then 'expired' end, 'bc' || i, 'p' || i
    from generate_series(5, ${clicks}, 300) as i`);
  await step('deliveries', () => sql`
    insert into deliveries (id, conversion_id, conversion_created_at, publisher_id, state, attempts, next_attempt_at, deadline_at, created_at, delivered_at, updated_at)
    select 'bd' || i, 'bcv' || i, ${convAt}, ${pub},
           case when (i / 10) % 100 = 1 then 'failed' when (i / 10) % 100 = 2 then 'pending' else 'delivered' end,
           case when (i / 10) % 100 = 2 then 0 else 1 end,
           case when (i / 10) % 100 = 1 then now() + interval '1 hour'
                when (i / 10) % 100 = 2 then now() - interval '1 hour' else ${convAt} end,
           case when (i / 10) % 100 = 2 then now() - interval '1 hour' else ${convAt} + interval '72 hours' end,
           ${convAt}, case when (i / 10) % 100 > 2 then ${convAt} end, ${convAt}
    from generate_series(10, ${clicks}, 10) as i`);
  await step('analyze', () => sql`analyze clicks, conversions, conversion_txids, pixel_events, postback_attempts, deliveries`);
  const conversions = Math.floor(clicks / 10);
  const pixelOnly = Math.floor((clicks - 5) / 100) + 1;
  return { clicks, conversions, pixels: conversions - Math.floor(conversions / 10) + pixelOnly, pixelOnly, deliveries: conversions };
}
