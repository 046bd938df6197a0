import type { Sql } from '../../src/db/database.js';
import { INDEX_JUSTIFICATIONS } from '../../src/db/index-justifications.js';

/**
 * Which indexes the engine's queries use, from PostgreSQL's own counters (pg_stat_user_indexes), and
 * how many entries each holds (pageinspect). An index a
 * whole bench run never scans is a candidate for dropping, unless its query is one the bench does not
 * exercise (admin lists, reports): `justification` says which query that is (src/db/index-justifications.ts).
 *
 * A partitioned table's index is reported once, summed over its partitions' copies.
 * The counters are flushed by each backend at the end of a transaction, at most once a second while
 * it is busy: read them after the load has stopped for a second or more.
 */

export type IndexUsage = {
  index: string;
  /** Index scans since the counters were reset (pg_stat_reset) or the server started. */
  scans: number;
  /** Index entries returned by those scans. */
  tuplesRead: number;
  sizeBytes: number;
  neverScanned: boolean;
  /** The query that needs it, or null when no entry in src/db/index-justifications.ts names it. */
  justification: string | null;
};

export type TableIndexUsage = { table: string; indexes: IndexUsage[] };

const TOP_LEVEL_INDEXES = `
  with recursive tree as (
    select i.indexrelid as idx, i.indexrelid as top
    from pg_index i join pg_class c on c.oid = i.indexrelid
    where c.relnamespace = current_schema()::regnamespace
      and not exists (select 1 from pg_inherits h where h.inhrelid = i.indexrelid)
    union all
    select h.inhrelid, t.top from pg_inherits h join tree t on h.inhparent = t.idx
  )`;

/** Every index of the current schema, grouped by table, with its scans and size. */
export async function readIndexUsage(sql: Sql): Promise<TableIndexUsage[]> {
  // Counters read inside one transaction come from a snapshot taken at its first read; start fresh.
  await sql`select pg_stat_clear_snapshot()`;
  const rows = await sql<{ table: string; index: string; scans: string; tuples_read: string; size_bytes: string }[]>`
    ${sql.unsafe(TOP_LEVEL_INDEXES)}
    select tc.relname as table, ic.relname as index,
           coalesce(sum(s.idx_scan), 0)::text as scans, coalesce(sum(s.idx_tup_read), 0)::text as tuples_read,
           sum(pg_relation_size(t.idx))::text as size_bytes
    from tree t
    join pg_class ic on ic.oid = t.top
    join pg_index pi on pi.indexrelid = t.top
    join pg_class tc on tc.oid = pi.indrelid
    left join pg_stat_all_indexes s on s.indexrelid = t.idx
    group by tc.relname, ic.relname
    order by tc.relname, ic.relname`;
  const byTable = new Map<string, IndexUsage[]>();
  for (const r of rows) {
    const scans = Number(r.scans);
    const list = byTable.get(r.table) ?? [];
    list.push({
      index: r.index,
      scans,
      tuplesRead: Number(r.tuples_read),
      sizeBytes: Number(r.size_bytes),
      neverScanned: scans === 0,
      justification: INDEX_JUSTIFICATIONS[r.index]?.why ?? null,
    });
    byTable.set(r.table, list);
  }
  return [...byTable].map(([table, indexes]) => ({ table, indexes }));
}

/** The indexes a run never scanned, as `table.index`: what a report should list first. */
export function neverScanned(usage: TableIndexUsage[]): string[] {
  return usage.flatMap((t) => t.indexes.filter((i) => i.neverScanned).map((i) => `${t.table}.${i.index}`));
}

/**
 * Heap tuples each index references now (btree only; the tables named), read from its leaf pages
 * (pageinspect, superuser, created if missing): how big each index really is in entries. Not a count
 * of entries written: btree's bottom-up deletion removes entries of dead row versions as pages fill,
 * so a difference over a run undercounts what non-HOT updates wrote (write-path-indexes.ts counts
 * those from the table counters). Reads every leaf page: use it on a bench database, not a big one.
 */
export async function countIndexEntries(sql: Sql, tables: string[]): Promise<Map<string, number>> {
  await sql`create extension if not exists pageinspect`;
  const rows = await sql<{ index: string; entries: string }[]>`
    ${sql.unsafe(TOP_LEVEL_INDEXES)}
    select ic.relname as index, coalesce(sum(n.entries), 0)::text as entries
    from tree t
    join pg_class ic on ic.oid = t.top
    join pg_index pi on pi.indexrelid = t.top
    join pg_class tc on tc.oid = pi.indrelid
    join pg_class leaf on leaf.oid = t.idx and leaf.relkind = 'i'
    join pg_am am on am.oid = leaf.relam and am.amname = 'btree'
    cross join lateral (
      -- Block 0 is the metapage; on a leaf page that is not the rightmost, item 1 is the high key.
      select sum(coalesce(cardinality(i.tids), 1)) as entries
      from generate_series(1, (pg_relation_size(t.idx) / current_setting('block_size')::int)::int - 1) as b(blkno)
      cross join lateral bt_page_stats(t.idx::regclass::text, b.blkno) ps
      cross join lateral bt_page_items(t.idx::regclass::text, b.blkno) i
      where ps.btpo_level = 0 and ps.type <> 'd' and (ps.btpo_next = 0 or i.itemoffset > 1)
    ) n
    where tc.relname = any(${tables}::text[])
    group by ic.relname`;
  return new Map(rows.map((r) => [r.index, Number(r.entries)]));
}
