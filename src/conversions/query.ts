import { z } from 'zod';
import type { Catalog } from '../catalog/catalog.js';
import type { Sql } from '../db/database.js';
import { invalidRequest } from '../errors.js';
import { formatMoney } from '../money.js';
import { strictIsoTime } from '../http/utc-day.js';
import { EXTERNAL_ID_MAX, isTxid, TXID_RULE } from '../ids.js';

/**
 * The conversions list for analysts and finance: filters, newest first, keyset pagination. The cursor
 * is the (created_at, id) of the last item, so pages stay stable while new conversions arrive.
 */

export const DEFAULT_PAGE = 50;
export const MAX_PAGE = 500;

const id = z.string().min(1).max(64);
const REASON_CODE = /^[a-z][a-z0-9_]{0,63}$/;

export const listQuery = z
  .object({
    decision: z.enum(['accepted', 'flagged', 'rejected']).optional(),
    source: z.enum(['s2s', 'pixel']).optional(),
    status: z.enum(['approved', 'pending', 'rejected']).optional(),
    advertiserId: id.optional(),
    offerId: id.optional(),
    publisherId: id.optional(),
    txid: z.string().refine(isTxid, TXID_RULE).optional(),
    clickid: z.string().min(1).max(EXTERNAL_ID_MAX).optional(),
    /** Conversions whose reasons include this code (a fraud rule's, or over_cap). */
    reason: z.string().regex(REASON_CODE, 'must be a reason code such as ctit_too_short').optional(),
    from: strictIsoTime.optional(),
    to: strictIsoTime.optional(),
    /** No default here: with format=csv a limit means nothing, so a given one is refused. */
    limit: z.coerce.number().int().min(1).max(MAX_PAGE).optional(),
    cursor: z.string().max(200).optional(),
    /** csv: every matching conversion, newest first, in one download (csv.ts). */
    format: z.enum(['json', 'csv']).default('json'),
  })
  .strict()
  .superRefine((q, ctx) => {
    if (q.format !== 'csv') return;
    for (const key of ['limit', 'cursor'] as const) {
      if (q[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'does not apply to format=csv, which exports every matching conversion' });
    }
  });

export type ListQuery = z.infer<typeof listQuery>;

type Cursor = { at: string; id: string };

function decodeCursor(text: string): Cursor {
  try {
    const parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(parsed) && typeof parsed[0] === 'string' && typeof parsed[1] === 'string' && !Number.isNaN(Date.parse(parsed[0]))) {
      return { at: parsed[0], id: parsed[1] };
    }
  } catch {
    // fall through to the 400
  }
  throw invalidRequest([{ path: 'cursor', message: 'is not a cursor returned by this API' }]);
}

const encodeCursor = (at: string, id: string) => Buffer.from(JSON.stringify([at, id])).toString('base64url');

export type ConversionRow = Record<string, unknown> & {
  id: string;
  created_at: Date;
  payout_minor: bigint;
  revenue_minor: bigint;
  amount_minor: bigint | null;
  currency: string;
};

/**
 * Names come from this node's catalog, so analysts and finance (who may not list offers, publishers or
 * advertisers) see who a conversion is about. A rename reaches every node within a catalog refresh;
 * an entity the catalog does not hold yet shows null.
 */
export type CatalogNames = Pick<Catalog, 'advertisers' | 'offers' | 'publishers'>;

const nameOf = (map: ReadonlyMap<string, { name: string }>, id: unknown) => (typeof id === 'string' ? (map.get(id)?.name ?? null) : null);

export function conversionView(r: ConversionRow, names: CatalogNames) {
  return {
    id: r.id,
    txid: r.txid,
    clickid: r.click_id,
    advertiserId: r.advertiser_id,
    advertiserName: nameOf(names.advertisers, r.advertiser_id),
    offerId: r.offer_id,
    offerName: nameOf(names.offers, r.offer_id),
    publisherId: r.publisher_id,
    publisherName: nameOf(names.publishers, r.publisher_id),
    event: r.event,
    decision: r.decision,
    score: r.score,
    reasons: r.reasons,
    status: r.status,
    payout: formatMoney(r.payout_minor, r.currency),
    revenue: formatMoney(r.revenue_minor, r.currency),
    margin: formatMoney(r.revenue_minor - r.payout_minor, r.currency),
    amount: r.amount_minor === null ? null : formatMoney(r.amount_minor, r.currency),
    currency: r.currency.trim(),
    source: r.source,
    reviewState: r.review_state,
    createdAt: r.created_at.toISOString(),
    updatedAt: (r.updated_at as Date).toISOString(),
  };
}

export async function listConversions(sql: Sql, names: CatalogNames, q: Omit<ListQuery, 'format'>) {
  const cursor = q.cursor ? decodeCursor(q.cursor) : undefined;
  const limit = q.limit ?? DEFAULT_PAGE;
  const where = [
    q.decision && sql`decision = ${q.decision}`,
    q.source && sql`source = ${q.source}`,
    q.status && sql`status = ${q.status}`,
    q.advertiserId && sql`advertiser_id = ${q.advertiserId}`,
    q.offerId && sql`offer_id = ${q.offerId}`,
    q.publisherId && sql`publisher_id = ${q.publisherId}`,
    // Through the txid key (conversions have no txid index): with the advertiser, one key lookup
    // and the conversion by ID in its own partition.
    q.txid &&
      sql`txid = ${q.txid} and (id, created_at) in (select conversion_id, created_at from conversion_txids
        where txid = ${q.txid} ${q.advertiserId ? sql`and advertiser_id = ${q.advertiserId}` : sql``})`,
    q.clickid && sql`click_id = ${q.clickid}`,
    q.reason && sql`reasons @> array[${q.reason}]::text[]`,
    q.from && sql`created_at >= ${q.from}::timestamptz`,
    q.to && sql`created_at < ${q.to}::timestamptz`,
    cursor && sql`(created_at, id) < (${cursor.at}::text::timestamptz, ${cursor.id})`,
  ].filter((c) => !!c);
  const clause = where.reduce((acc, c, i) => (i === 0 ? sql`where ${c}` : sql`${acc} and ${c}`), sql``);
  const rows = await sql<ConversionRow[]>`
    select *, to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as cursor_at
    from conversions ${clause} order by created_at desc, id desc limit ${limit + 1}`;
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return {
    items: page.map((r) => conversionView(r, names)),
    // Microsecond precision: a millisecond cursor would skip or repeat rows committed in the same ms.
    nextCursor: rows.length > limit && last ? encodeCursor(last.cursor_at as string, last.id) : null,
  };
}
