import { z } from 'zod';
import { conversionView, type CatalogNames, type ConversionRow } from '../conversions/query.js';
import type { Sql } from '../db/database.js';
import { invalidRequest } from '../errors.js';
import { expandEvidence } from '../fraud/evidence.js';

/**
 * The review queue: flagged conversions no analyst has decided yet, most money at risk first, i.e.
 * by payout × score, descending; equal ones oldest first, so nothing waits forever behind its peers.
 *
 * Payout is taken in the currency's minor units and currencies are not converted (the engine keeps
 * no exchange rates). Minor units are a fair proxy across the usual currencies (a cent, a penny, a
 * yen are within a few times of each other), unlike major units (a yen and a dollar are 150x apart).
 *
 * Keyset pagination on (rank, created_at, id), rank = -(payout_minor * score), so every page is one
 * range scan of the partial index in 000022 however deep the queue goes.
 */

const id = z.string().min(1).max(64);
export const QUEUE_PAGE = 50;
export const QUEUE_MAX_PAGE = 200;

export const queueQuery = z
  .object({
    advertiserId: id.optional(),
    offerId: id.optional(),
    publisherId: id.optional(),
    limit: z.coerce.number().int().min(1).max(QUEUE_MAX_PAGE).default(QUEUE_PAGE),
    cursor: z.string().max(300).optional(),
  })
  .strict();

export type QueueQuery = z.infer<typeof queueQuery>;

type Cursor = { rank: string; at: string; id: string };

function decodeCursor(text: string): Cursor {
  try {
    const v = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 3 && /^-?\d{1,20}$/.test(String(v[0])) && typeof v[1] === 'string' && !Number.isNaN(Date.parse(v[1])) && typeof v[2] === 'string') {
      return { rank: String(v[0]), at: v[1], id: v[2] };
    }
  } catch {
    // fall through to the 400
  }
  throw invalidRequest([{ path: 'cursor', message: 'is not a cursor returned by this API' }]);
}

const encodeCursor = (c: Cursor) => Buffer.from(JSON.stringify([c.rank, c.at, c.id])).toString('base64url');

type QueueRow = ConversionRow & { rank: bigint; cursor_at: string; evidence: unknown };

export async function listQueue(sql: Sql, names: CatalogNames, q: QueueQuery) {
  const cursor = q.cursor ? decodeCursor(q.cursor) : undefined;
  // The expression must match the index's exactly for the planner to use it.
  const rank = sql`(-(payout_minor * score))`;
  // The time goes in as text: typed as timestamptz, postgres.js would send it through a JS Date and
  // cut it to milliseconds, and the cursor would skip or repeat rows committed within one millisecond.
  const where = [
    sql`decision = 'flagged' and review_state = 'none'`,
    q.advertiserId && sql`advertiser_id = ${q.advertiserId}`,
    q.offerId && sql`offer_id = ${q.offerId}`,
    q.publisherId && sql`publisher_id = ${q.publisherId}`,
    cursor && sql`(${rank}, created_at, id) > (${cursor.rank}::bigint, ${cursor.at}::text::timestamptz, ${cursor.id})`,
  ].filter((c) => !!c);
  const clause = where.reduce((acc, c, i) => (i === 0 ? sql`where ${c}` : sql`${acc} and ${c}`), sql``);
  const rows = await sql<QueueRow[]>`
    select *, ${rank} as rank, to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as cursor_at
    from conversions ${clause}
    order by ${rank}, created_at, id
    limit ${q.limit + 1}`;
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  return {
    items: page.map((r) => ({
      ...conversionView(r, names),
      priority: (-r.rank).toString(),
      evidence: firedEvidence(r.evidence),
    })),
    nextCursor: rows.length > q.limit && last ? encodeCursor({ rank: last.rank.toString(), at: last.cursor_at, id: last.id }) : null,
  };
}

/** The entries that explain the score: what an analyst reads first. The detail view has every rule's. */
function firedEvidence(stored: unknown): unknown[] {
  return expandEvidence(stored).filter((e) => typeof e === 'object' && e !== null && ((e as { fired?: unknown }).fired === true || Number((e as { points?: unknown }).points) > 0));
}
