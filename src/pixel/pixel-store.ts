import { BatchWriter } from '../db/batch-writer.js';
import { isDatabaseUnavailable, type Sql } from '../db/database.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';

/**
 * Pixel hits, written in batches off the request path like clicks: the GIF is answered before the
 * row reaches PostgreSQL. The unique key (click_id, event, txid) keeps the first hit; a reload of
 * the thank-you page, a second tab or a retried batch adds nothing.
 */

export type PixelRow = {
  clickId: string;
  clickCreatedAt: Date;
  advertiserId: string;
  offerId: string;
  publisherId: string;
  event: string;
  txid: string;
  ip: string | null;
  userAgent: string | null;
  createdAt: Date;
};

export async function insertPixelEvents(sql: Sql, rows: PixelRow[]): Promise<void> {
  const col = <K>(f: (r: PixelRow) => K) => rows.map(f);
  await sql`
    insert into pixel_events (click_id, click_created_at, advertiser_id, offer_id, publisher_id, event, txid, ip, user_agent, created_at)
    select * from unnest(
      ${col((r) => r.clickId)}::text[], ${col((r) => r.clickCreatedAt.toISOString())}::timestamptz[],
      ${col((r) => r.advertiserId)}::text[], ${col((r) => r.offerId)}::text[], ${col((r) => r.publisherId)}::text[],
      ${col((r) => r.event)}::text[], ${col((r) => r.txid)}::text[], ${col((r) => r.ip)}::inet[],
      ${col((r) => r.userAgent)}::text[], ${col((r) => r.createdAt.toISOString())}::timestamptz[])
    -- No conflict target: on Citus the unique key also carries advertiser_id (its shard), and the click fixes the advertiser.
    on conflict do nothing`;
}

export function createPixelWriter(sql: Sql, metrics: Metrics, log: Logger): BatchWriter<PixelRow> {
  const writer = new BatchWriter<PixelRow>({
    name: 'pixel_events',
    write: (rows) => insertPixelEvents(sql, rows),
    isTransient: isDatabaseUnavailable,
    onFlush: (size, ms) => {
      metrics.batchSize.observe({ writer: 'pixel_events' }, size);
      metrics.batchDuration.observe({ writer: 'pixel_events' }, ms / 1000);
    },
    onError: (err, buffered) => log.error({ err, buffered }, 'pixel batch write failed; will retry'),
    onDrop: (count) => metrics.batchDropped.inc({ writer: 'pixel_events' }, count),
  });
  metrics.sources.bufferedRows.set('pixel_events', () => writer.pending);
  return writer;
}
