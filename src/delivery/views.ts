import type { Sql } from '../db/database.js';
import { createdRangeOfId } from '../ids.js';

/**
 * What the API shows of deliveries: each with its full attempt log, newest deliveries first, paged
 * by an opaque keyset cursor.
 */

export type DeliveryState = 'pending' | 'delivered' | 'failed' | 'expired';

export type AttemptView = {
  at: string;
  statusCode: number | null;
  latencyMs: number;
  error: string | null;
  /** The first bytes of the response body, as text. */
  response: string | null;
  replay: boolean;
};

export type DeliveryView = {
  id: string;
  /** The `webhook-id` header of every try: the same as `id`, stated so receivers' support can match it. */
  webhookId: string;
  conversionId: string;
  publisherId: string;
  /** For people: finance may read deliveries but not list publishers. */
  publisherName: string;
  /** The `{status}` this delivery announces; `sequence` 0 is the first delivery, 1, 2, ... the status changes after it. */
  status: string;
  sequence: number;
  state: DeliveryState;
  attemptCount: number;
  /** When the next scheduled try is due; null once final, while in flight, while the endpoint is disabled, or when no try is left before the deadline. */
  nextAttemptAt: string | null;
  inFlight: boolean;
  publisherDisabled: boolean;
  deadlineAt: string;
  deliveredAt: string | null;
  lastStatusCode: number | null;
  lastError: string | null;
  createdAt: string;
  updatedAt: string;
  attempts: AttemptView[];
};

export type DeliveryFilter = {
  state?: DeliveryState;
  publisherId?: string;
  conversionId?: string;
  limit: number;
  cursor?: { createdAt: string; id: string };
};

type Row = {
  id: string;
  conversion_id: string;
  publisher_id: string;
  status: string;
  sequence: number;
  state: DeliveryState;
  attempts: number;
  next_attempt_at: Date;
  deadline_at: Date;
  delivered_at: Date | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: Date;
  updated_at: Date;
  in_flight: boolean;
  publisher_disabled: boolean;
  publisher_name: string;
  cursor_ts: string;
};

type AttemptRow = {
  delivery_id: string;
  attempted_at: Date;
  status_code: number | null;
  latency_ms: number;
  error: string | null;
  response_snippet: string | null;
  replay: boolean;
};

export function encodeCursor(c: { createdAt: string; id: string }): string {
  return Buffer.from(JSON.stringify([c.createdAt, c.id])).toString('base64url');
}

export function decodeCursor(text: string): { createdAt: string; id: string } | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
    if (!Array.isArray(value) || value.length !== 2) return undefined;
    const [createdAt, id] = value as unknown[];
    if (typeof createdAt !== 'string' || typeof id !== 'string' || Number.isNaN(Date.parse(createdAt))) return undefined;
    return { createdAt, id };
  } catch {
    return undefined;
  }
}

export async function listDeliveries(sql: Sql, f: DeliveryFilter): Promise<{ items: DeliveryView[]; nextCursor: string | null }> {
  const rows = await selectDeliveries(sql, f, f.limit + 1);
  const page = rows.slice(0, f.limit);
  const last = page[page.length - 1];
  const nextCursor = rows.length > f.limit && last ? encodeCursor({ createdAt: last.cursor_ts, id: last.id }) : null;
  return { items: await withAttempts(sql, page), nextCursor };
}

export async function getDelivery(sql: Sql, id: string): Promise<DeliveryView | undefined> {
  const rows = await selectDeliveries(sql, { limit: 1 }, 1, id);
  return (await withAttempts(sql, rows))[0];
}

function selectDeliveries(sql: Sql, f: Partial<DeliveryFilter>, limit: number, id?: string): Promise<Row[]> {
  const empty = sql``;
  // The cursor keeps microseconds; a parameter typed timestamptz would pass through a JS Date and lose
  // them, skipping rows that share a millisecond. Hence `::text::timestamptz`.
  return sql<Row[]>`
    select d.id, d.conversion_id, d.publisher_id, coalesce(d.status, c.status) as status, d.sequence, d.state, d.attempts, d.next_attempt_at, d.deadline_at, d.delivered_at,
           d.last_status_code, d.last_error, d.created_at, d.updated_at,
           coalesce(d.lease_until > now(), false) as in_flight,
           p.disabled_at is not null as publisher_disabled, p.name as publisher_name,
           to_char(d.created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as cursor_ts
    from deliveries d join publishers p on p.id = d.publisher_id
    join conversions c on c.id = d.conversion_id and c.created_at = d.conversion_created_at
    where true
      ${id ? sql`and d.id = ${id} and d.created_at >= ${createdRangeOfId(id)[0]}::timestamptz and d.created_at < ${createdRangeOfId(id)[1]}::timestamptz` : empty}
      ${f.state ? sql`and d.state = ${f.state}` : empty}
      ${f.publisherId ? sql`and d.publisher_id = ${f.publisherId}` : empty}
      ${f.conversionId ? sql`and d.conversion_id = ${f.conversionId} and d.created_at >= ${createdRangeOfId(f.conversionId)[0]}::timestamptz` : empty}
      ${f.cursor ? sql`and (d.created_at, d.id) < (${f.cursor.createdAt}::text::timestamptz, ${f.cursor.id})` : empty}
    order by d.created_at desc, d.id desc
    limit ${limit}`;
}

async function withAttempts(sql: Sql, rows: Row[]): Promise<DeliveryView[]> {
  if (rows.length === 0) return [];
  const attempts = await sql<AttemptRow[]>`
    select delivery_id, attempted_at, status_code, latency_ms, error, response_snippet, replay
    from delivery_attempts where delivery_id = any(${rows.map((r) => r.id)}::text[])
    order by id`;
  const byDelivery = new Map<string, AttemptView[]>();
  for (const a of attempts) {
    const list = byDelivery.get(a.delivery_id) ?? [];
    list.push({
      at: a.attempted_at.toISOString(),
      statusCode: a.status_code,
      latencyMs: a.latency_ms,
      error: a.error,
      response: a.response_snippet,
      replay: a.replay,
    });
    byDelivery.set(a.delivery_id, list);
  }
  return rows.map((r) => {
    const open = r.state === 'pending' || r.state === 'failed';
    return {
      id: r.id,
      webhookId: r.id,
      conversionId: r.conversion_id,
      publisherId: r.publisher_id,
      publisherName: r.publisher_name,
      status: r.status,
      sequence: r.sequence,
      state: r.state,
      attemptCount: r.attempts,
      // A retry that would fall after the deadline is parked at it and never made: no next attempt then either.
      nextAttemptAt: open && !r.in_flight && !r.publisher_disabled && r.next_attempt_at < r.deadline_at ? r.next_attempt_at.toISOString() : null,
      inFlight: r.in_flight,
      publisherDisabled: r.publisher_disabled,
      deadlineAt: r.deadline_at.toISOString(),
      deliveredAt: r.delivered_at?.toISOString() ?? null,
      lastStatusCode: r.last_status_code,
      lastError: r.last_error,
      createdAt: r.created_at.toISOString(),
      updatedAt: r.updated_at.toISOString(),
      attempts: byDelivery.get(r.id) ?? [],
    };
  });
}
