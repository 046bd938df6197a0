import { z } from 'zod';
import type { Sql } from '../db/database.js';
import { decodeKeyset, encodeKeyset, KEYSET_AT_FORMAT } from '../http/keyset-cursor.js';
import { strictIsoTime } from '../http/utc-day.js';
import { AUDIT_ENTITIES } from './audit-log.js';

/** `GET /v1/audit`: the admin audit newest first, filtered, keyset-paged by (at, id). */

export const DEFAULT_AUDIT_PAGE = 50;
export const MAX_AUDIT_PAGE = 500;

export const auditQuery = z
  .object({
    entity: z.enum(AUDIT_ENTITIES as [string, ...string[]]).optional(),
    entityId: z.string().min(1).max(64).optional(),
    from: strictIsoTime.optional(),
    to: strictIsoTime.optional(),
    limit: z.coerce.number().int().min(1).max(MAX_AUDIT_PAGE).default(DEFAULT_AUDIT_PAGE),
    cursor: z.string().max(200).optional(),
  })
  .strict();

export type AuditQuery = z.infer<typeof auditQuery>;

type AuditRow = {
  id: bigint;
  at: Date;
  actor_token_id: string;
  actor_name: string;
  action: string;
  entity: string;
  entity_id: string;
  before: unknown;
  after: unknown;
  cursor_at: string;
};

export async function listAudit(sql: Sql, q: AuditQuery) {
  const cursor = q.cursor ? decodeKeyset(q.cursor) : undefined;
  const where = [
    q.entity && sql`entity = ${q.entity}`,
    q.entityId && sql`entity_id = ${q.entityId}`,
    q.from && sql`at >= ${q.from}`,
    q.to && sql`at < ${q.to}`,
    cursor && sql`(at, id) < (${cursor.at}::timestamptz, ${cursor.id}::bigint)`,
  ].filter((c) => !!c);
  const clause = where.reduce((acc, c, i) => (i === 0 ? sql`where ${c}` : sql`${acc} and ${c}`), sql``);
  const rows = await sql<AuditRow[]>`
    select id, at, actor_token_id, actor_name, action, entity, entity_id, before, after,
           to_char(at at time zone 'UTC', ${KEYSET_AT_FORMAT}) as cursor_at
    from admin_audit ${clause} order by at desc, id desc limit ${q.limit + 1}`;
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  return {
    items: page.map((r) => ({
      at: r.at.toISOString(),
      actor: { tokenId: r.actor_token_id, name: r.actor_name },
      action: r.action,
      entity: r.entity,
      entityId: r.entity_id,
      before: r.before,
      after: r.after,
    })),
    nextCursor: rows.length > q.limit && last ? encodeKeyset({ at: last.cursor_at, id: last.id.toString() }) : null,
  };
}
