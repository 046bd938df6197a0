import type { Sql } from '../db/database.js';

export type ClickRow = {
  id: string;
  createdAt: Date;
  offerId: string;
  publisherId: string;
  advertiserId: string;
  subs: (string | null)[];
  ip: string | null;
  userAgent: string | null;
};

/** One statement per batch; ON CONFLICT makes a retried batch (lost acknowledgement) harmless. */
export async function insertClicks(sql: Sql, rows: ClickRow[]): Promise<void> {
  const col = <K>(f: (r: ClickRow) => K) => rows.map(f);
  await sql`
    insert into clicks (id, created_at, offer_id, publisher_id, advertiser_id, sub1, sub2, sub3, sub4, sub5, ip, user_agent)
    select * from unnest(
      ${col((r) => r.id)}::text[], ${col((r) => r.createdAt.toISOString())}::timestamptz[],
      ${col((r) => r.offerId)}::text[], ${col((r) => r.publisherId)}::text[], ${col((r) => r.advertiserId)}::text[],
      ${col((r) => r.subs[0] ?? null)}::text[], ${col((r) => r.subs[1] ?? null)}::text[], ${col((r) => r.subs[2] ?? null)}::text[],
      ${col((r) => r.subs[3] ?? null)}::text[], ${col((r) => r.subs[4] ?? null)}::text[],
      ${col((r) => r.ip)}::inet[], ${col((r) => r.userAgent)}::text[])
    on conflict do nothing`;
}

export type StoredClick = {
  id: string;
  createdAt: Date;
  offerId: string;
  publisherId: string;
  subs: (string | null)[];
  ip: string | null;
  userAgent: string | null;
};

/** The click ID carries its own time, so the lookup names the exact partition. */
export async function findClick(sql: Sql, id: string, createdAt: Date): Promise<StoredClick | undefined> {
  const [row] = await sql`
    select id, created_at, offer_id, publisher_id, sub1, sub2, sub3, sub4, sub5, host(ip) as ip, user_agent
    from clicks where id = ${id} and created_at = ${createdAt}`;
  if (!row) return undefined;
  return {
    id: row.id,
    createdAt: row.created_at,
    offerId: row.offer_id,
    publisherId: row.publisher_id,
    subs: [row.sub1, row.sub2, row.sub3, row.sub4, row.sub5],
    ip: row.ip,
    userAgent: row.user_agent,
  };
}

/** Day partitions from yesterday to two weeks ahead; older than the retention are dropped. */
export async function maintainClickPartitions(sql: Sql, retentionDays: number, now = new Date()): Promise<{ created: number; dropped: string[] }> {
  const day = (offset: number) => new Date(now.getTime() + offset * 86_400_000).toISOString().slice(0, 10);
  const [row] = await sql<{ created: number }[]>`select ensure_click_partitions(${day(-1)}::date, ${day(14)}::date) as created`;
  const cutoff = day(-retentionDays).replaceAll('-', '');
  const old = await sql<{ name: string }[]>`
    select c.relname as name from pg_inherits i
    join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
    where p.relname = 'clicks' and c.relname ~ '^clicks_[0-9]{8}$' and substring(c.relname from 8) < ${cutoff}`;
  for (const { name } of old) await sql`drop table if exists ${sql(name)}`;
  return { created: row?.created ?? 0, dropped: old.map((o) => o.name) };
}
