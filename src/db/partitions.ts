import { hasCitus } from './citus.js';
import type { Sql } from './database.js';

/**
 * Day partitions and retention for every time-partitioned table (sql/000085 ensure_partitions). Each
 * run makes partitions from yesterday to two weeks ahead, so a node that stops running it for a while
 * loses nothing, and drops the partitions of days older than the table's retention.
 *
 * Neither may block intake. Creating or dropping a partition takes an ACCESS EXCLUSIVE lock on the
 * parent table; queued behind a long report (which holds its lock on the parent until its
 * transaction ends), that request would hold up every insert queued behind it, for as long as the
 * report runs. So every DDL statement here waits at most `lockTimeoutMs` for its lock: inserts are
 * delayed by that much at worst, then the statement gives up and is retried a little later, a few
 * times, and otherwise at the next run. DETACH ... CONCURRENTLY would not need this, but PostgreSQL
 * refuses it on a table with a default partition, and the default partitions stay: a row dated where
 * no partition exists (a clock jump, a pixel recovered from long ago, an engine down for weeks) must
 * still be written.
 *
 * Rows that landed in a default partition are deleted past the retention in small batches (plain
 * row locks, nothing that blocks inserts). A table kept beside a partitioned one (its `companion`:
 * conversion_txids beside conversions) loses the rows of a day just before that day's partition is
 * dropped, found through the partition's own rows, so it needs no index on time of its own.
 */

/** A table whose rows belong to rows of a partitioned one and go with them (`t`: its row, `c`: the owner's). */
export type Companion = { table: string; matches: string };

export type PartitionedTable = {
  table: string;
  retentionDays: number;
  companion?: Companion;
};

export type RetentionOptions = {
  /** How long each DDL statement may wait for its lock. */
  lockTimeoutMs: number;
  /** Tries per partition drop within one run before it is left to the next run. */
  dropTries: number;
  retryDelayMs: number;
  /** Rows per DELETE when trimming default partitions and companions. */
  deleteBatch: number;
};

export const RETENTION_DEFAULTS: RetentionOptions = { lockTimeoutMs: 100, dropTries: 5, retryDelayMs: 2000, deleteBatch: 5000 };

/** Days kept per family of tables (config: *_RETENTION_DAYS). */
export type RetentionDays = { clicks: number; conversions: number; deliveries: number; attemptLogs: number };

/**
 * Every day-partitioned table with its family's retention. A conversion's txid key lives in
 * conversion_txids (a unique key must hold across partitions), kept exactly as long as the conversion.
 */
export function partitionedTables(days: RetentionDays): PartitionedTable[] {
  return [
    { table: 'clicks', retentionDays: days.clicks },
    { table: 'conversions', retentionDays: days.conversions, companion: TXID_KEYS },
    { table: 'conversion_status_history', retentionDays: days.conversions },
    { table: 'deliveries', retentionDays: days.deliveries },
    { table: 'postback_attempts', retentionDays: days.attemptLogs },
    { table: 'delivery_attempts', retentionDays: days.attemptLogs },
  ];
}

/** A table that is not partitioned, whose rows older than its retention are deleted in batches by `column`. */
export type TrimmedTable = { table: string; column: string; retentionDays: number };

/**
 * The traffic tables kept without partitions (each small per row, or read by a unique key that a
 * partitioned table could not keep without the time): pixels as long as the conversions they are
 * reconciled with and recovered into; message IDs and 429 counts as long as the attempt log, whose
 * forensics they belong to (a message ID is needed only within SIGNATURE_TOLERANCE_S, after which
 * its replay is refused as stale anyway).
 */
export function trimmedTables(days: RetentionDays): TrimmedTable[] {
  return [
    { table: 'pixel_events', column: 'created_at', retentionDays: days.conversions },
    { table: 'message_ids', column: 'created_at', retentionDays: days.attemptLogs },
    { table: 'postback_rate_limited', column: 'minute', retentionDays: days.attemptLogs },
  ];
}

/** Deletes each table's rows older than its retention (UTC days before `now`), in batches of plain row locks. Returns how many. */
export async function trimTables(sql: Sql, tables: readonly TrimmedTable[], now: Date, opts: Partial<RetentionOptions> = {}): Promise<number> {
  const o = { ...RETENTION_DEFAULTS, ...opts };
  let deleted = 0;
  const conn = await sql.reserve();
  try {
    for (const t of tables) {
      if (Number.isFinite(t.retentionDays)) deleted += await deleteInBatches(conn, t.table, t.column, utcDay(now, -t.retentionDays), o.deleteBatch);
    }
  } finally {
    conn.release();
  }
  return deleted;
}

const TXID_KEYS: Companion = {
  table: 'conversion_txids',
  matches: 't.advertiser_id = c.advertiser_id and t.txid = c.txid and t.conversion_id = c.id',
};

/** Partitions made ahead of today, and the first day partitions are made for. */
const DAYS_AHEAD = 14;
const DAYS_BEHIND = 1;
const LOCK_NOT_AVAILABLE = '55P03';

export type MaintenanceResult = { created: number; dropped: string[]; deferred: string[]; deleted: number };

export async function maintainPartitions(
  sql: Sql,
  tables: readonly PartitionedTable[],
  now: Date,
  opts: Partial<RetentionOptions> = {},
): Promise<MaintenanceResult> {
  const o = { ...RETENTION_DEFAULTS, ...opts };
  const result: MaintenanceResult = { created: 0, dropped: [], deferred: [], deleted: 0 };
  const conn = await sql.reserve();
  try {
    await conn.unsafe(`set lock_timeout = ${Math.max(1, Math.floor(o.lockTimeoutMs))}`);
    for (const t of tables) {
      const [row] = await conn<{ created: number }[]>`
        select ensure_partitions(${t.table}, ${utcDay(now, -DAYS_BEHIND)}::date, ${utcDay(now, DAYS_AHEAD)}::date) as created`;
      result.created += row?.created ?? 0;
      if (!Number.isFinite(t.retentionDays)) continue;
      const cutoff = utcDay(now, -t.retentionDays);
      for (const name of await partitionsBefore(conn, t.table, cutoff)) {
        // A drop left for later finds no companion rows on its next run, and tries again.
        if (t.companion) result.deleted += await deleteCompanionsOf(conn, name, t.companion, o.deleteBatch);
        if (await dropWithRetry(conn, name, o)) result.dropped.push(name);
        else result.deferred.push(name);
      }
      const strays = `${t.table}_default`;
      if (t.companion && (await exists(conn, strays))) {
        // The default partition holds only strays: their companions go in one statement, before them.
        result.deleted += (
          await conn.unsafe(
            `delete from ${ident(t.companion.table)} t using ${ident(strays)} c
             where ${t.companion.matches} and c.${partitionKeyOf(t.table)} < $1::date::timestamp at time zone 'UTC' returning 1`,
            [cutoff],
          )
        ).length;
      }
      result.deleted += await deleteInBatches(conn, strays, partitionKeyOf(t.table), cutoff, o.deleteBatch);
    }
  } finally {
    await conn.unsafe('reset lock_timeout').catch(() => undefined);
    conn.release();
  }
  return result;
}

/** The partition key column of each partitioned table. */
const PARTITION_KEYS: Record<string, string> = {
  clicks: 'created_at',
  conversions: 'created_at',
  conversion_status_history: 'created_at',
  postback_attempts: 'received_at',
  deliveries: 'created_at',
  delivery_attempts: 'attempted_at',
};

function partitionKeyOf(table: string): string {
  const key = PARTITION_KEYS[table];
  if (!key) throw new Error(`${table} is not a day-partitioned table`);
  return key;
}

/** `YYYY-MM-DD` of the UTC day `offsetDays` from `now`. */
export function utcDay(now: Date, offsetDays: number): string {
  return new Date(now.getTime() + offsetDays * 86_400_000).toISOString().slice(0, 10);
}

type Conn = Awaited<ReturnType<Sql['reserve']>>;

/** Day partitions of `table` whose whole day lies before `cutoffDay`. */
async function partitionsBefore(conn: Conn, table: string, cutoffDay: string): Promise<string[]> {
  const rows = await conn<{ name: string }[]>`
    select c.relname as name from pg_inherits i
    join pg_class c on c.oid = i.inhrelid join pg_class p on p.oid = i.inhparent
    where p.relname = ${table} and c.relname ~ ${`^${table}_[0-9]{8}$`}
      and right(c.relname, 8) < ${cutoffDay.replaceAll('-', '')}
    order by c.relname`;
  return rows.map((r) => r.name);
}

async function dropWithRetry(conn: Conn, name: string, o: RetentionOptions): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      await conn`drop table if exists ${conn(name)}`;
      return true;
    } catch (err) {
      if ((err as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw err;
      if (attempt >= o.dropTries) return false;
      await new Promise((resolve) => setTimeout(resolve, o.retryDelayMs));
    }
  }
}

/** Names here come from this module's table list and from pg_class (`<table>_YYYYMMDD`), quoted all the same. */
const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

async function exists(conn: Conn, table: string): Promise<boolean> {
  return (await conn`select to_regclass(${table}) as t`)[0]?.t !== null;
}

/** The companion rows of one day partition's rows, in batches walked along the partition's primary key (id first). */
async function deleteCompanionsOf(conn: Conn, partition: string, companion: Companion, batch: number): Promise<number> {
  let deleted = 0;
  for (let after = ''; ; ) {
    const [step] = await conn.unsafe<{ last: string | null; n: number; gone: number }[]>(
      `with c as (select * from ${ident(partition)} where id > $1 order by id limit $2),
            gone as (delete from ${ident(companion.table)} t using c where ${companion.matches} returning 1)
       select max(c.id) as last, count(*)::int as n, (select count(*)::int from gone) as gone from c`,
      [after, batch],
    );
    deleted += step?.gone ?? 0;
    if (!step?.last || step.n < batch) return deleted;
    after = step.last;
  }
}

async function deleteInBatches(conn: Conn, table: string, column: string, cutoffDay: string, batch: number): Promise<number> {
  if (!(await exists(conn, table))) return 0;
  // A Citus table has no ctid across its shards: one multi-shard delete instead (each shard deletes
  // its own rows in parallel; a default partition holds only strays).
  if (await hasCitus(conn)) {
    return (await conn`delete from ${conn(table)} where ${conn(column)} < ${cutoffDay}::date::timestamp at time zone 'UTC' returning 1`).length;
  }
  let deleted = 0;
  for (;;) {
    const rows = await conn`
      delete from ${conn(table)} where ctid = any(array(
        select ctid from ${conn(table)} where ${conn(column)} < ${cutoffDay}::date::timestamp at time zone 'UTC' limit ${batch}))
      returning 1`;
    deleted += rows.length;
    if (rows.length < batch) return deleted;
  }
}
