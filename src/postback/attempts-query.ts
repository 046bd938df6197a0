import type { CatalogNames } from '../conversions/query.js';
import { z } from 'zod';
import type { Sql } from '../db/database.js';
import { decodeKeyset, encodeKeyset, KEYSET_AT_FORMAT } from '../http/keyset-cursor.js';
import { strictIsoTime } from '../http/utc-day.js';

/**
 * `GET /v1/postback-attempts`: why postbacks were refused, newest first, for integration support.
 * Reads the log that attempt-log.ts writes; keyset-paged by (received_at, id), each filter served by an
 * index (sql/000001, sql/000061).
 */

export const DEFAULT_ATTEMPT_PAGE = 50;
export const MAX_ATTEMPT_PAGE = 500;

export const attemptsQuery = z
  .object({
    advertiserId: z.string().min(1).max(64).optional(),
    code: z
      .string()
      .regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be a snake_case error code such as bad_signature')
      .optional(),
    from: strictIsoTime.optional(),
    to: strictIsoTime.optional(),
    limit: z.coerce.number().int().min(1).max(MAX_ATTEMPT_PAGE).default(DEFAULT_ATTEMPT_PAGE),
    cursor: z.string().max(200).optional(),
  })
  .strict();

export type AttemptsQuery = z.infer<typeof attemptsQuery>;

type Row = {
  id: bigint;
  received_at: Date;
  advertiser_id: string | null;
  source_ip: string | null;
  click_id: string | null;
  txid: string | null;
  http_status: number;
  error_code: string;
  reason: string | null;
  detail: { message?: unknown; details?: unknown } | null;
  cursor_at: string;
};

function attemptView(r: Row, names: CatalogNames) {
  const message = typeof r.detail?.message === 'string' ? r.detail.message : null;
  return {
    receivedAt: r.received_at.toISOString(),
    advertiserId: r.advertiser_id,
    // Analysts may not list advertisers; null for an ID the catalog does not know (unknown_advertiser).
    advertiserName: r.advertiser_id === null ? null : (names.advertisers.get(r.advertiser_id)?.name ?? null),
    sourceIp: r.source_ip,
    clickid: r.click_id,
    txid: r.txid,
    status: r.http_status,
    code: r.error_code,
    reason: r.reason,
    message,
    // The field-by-field list of a validation error: what an integrator needs to fix the request.
    ...(r.detail?.details !== undefined && r.detail.details !== null ? { details: r.detail.details } : {}),
  };
}

export async function listAttempts(sql: Sql, names: CatalogNames, q: AttemptsQuery) {
  const cursor = q.cursor ? decodeKeyset(q.cursor) : undefined;
  const where = [
    q.advertiserId && sql`advertiser_id = ${q.advertiserId}`,
    q.code && sql`error_code = ${q.code}`,
    q.from && sql`received_at >= ${q.from}`,
    q.to && sql`received_at < ${q.to}`,
    cursor && sql`(received_at, id) < (${cursor.at}::timestamptz, ${cursor.id}::bigint)`,
  ].filter((c) => !!c);
  const clause = where.reduce((acc, c, i) => (i === 0 ? sql`where ${c}` : sql`${acc} and ${c}`), sql``);
  const rows = await sql<Row[]>`
    select id, received_at, nullif(advertiser_id, '') as advertiser_id, host(source_ip) as source_ip, click_id, txid, http_status, error_code, reason, detail,
           to_char(received_at at time zone 'UTC', ${KEYSET_AT_FORMAT}) as cursor_at
    from postback_attempts ${clause} order by received_at desc, id desc limit ${q.limit + 1}`;
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  return {
    items: page.map((r) => attemptView(r, names)),
    nextCursor: rows.length > q.limit && last ? encodeKeyset({ at: last.cursor_at, id: last.id.toString() }) : null,
  };
}
