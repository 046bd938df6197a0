import type { Sql } from '../../src/db/database.js';
import type { CpuSplit } from './cpu-usage.js';
import { countIndexEntries } from './index-usage.js';
import { sleep } from './processes.js';

/**
 * What a durable conversion costs PostgreSQL, measured around the distinct postbacks run:
 * - CPU: the postgres processes' CPU time during the run (/proc, every backend, the WAL writer,
 *   checkpointer and autovacuum included) over the conversions it committed; and, from
 *   pg_stat_statements, the statements' execution time (parse and plan not included, commit and
 *   WAL flush waits not included either) over the same conversions.
 * - Write amplification: rows added per table (exact counts), updated (HOT or not) and deleted
 *   (pg_stat_user_tables, partitions summed into their table), index entries added per index
 *   (heap references counted in every btree leaf page before and after, index-usage.ts: each
 *   inserted row's entries exactly; a non-HOT update's new entries can be removed again by btree's
 *   bottom-up deletion before the second count, so updates show in the rows' non-HOT figure; the
 *   write path alone, exactly: write-path-indexes.ts), and WAL bytes (pg_current_wal_lsn() before
 *   and after; the whole server's WAL, which only the bench writes).
 * The rows and entries come from the database the engine writes; the WAL and the CPU are the server's.
 */

export type StatementCost = { query: string; callsPerConversion: number; execUsPerConversion: number; rowsPerConversion: number; walBytesPerConversion: number };

export type PgCost = {
  conversions: number;
  /** postgres processes' CPU (µs) per conversion; undefined when the server is not on this machine. */
  processCpuUs: number | undefined;
  /** Σ pg_stat_statements.total_exec_time (µs) per conversion; undefined without pg_stat_statements. */
  statementExecUs: number | undefined;
  statementCalls: number | undefined;
  walBytes: number;
  /** Per table, per conversion: `inserted` is rows added (exact count), the rest from the statistics. */
  rows: Record<string, { inserted: number; updated: number; hotUpdated: number; deleted: number }>;
  /** Per index (`table.index`), entries written per conversion; only indexes that got any. */
  indexEntries: Record<string, number>;
  indexEntriesTotal: number;
  /** The statements that cost most execution time, per conversion. */
  topStatements: StatementCost[];
};

/** `rows` is exact (count(*)); the statistics' counters can lag a busy backend by seconds. */
type TableCounts = { rows: number; updated: number; hotUpdated: number; deleted: number };
type Statement = { query: string; calls: number; execMs: number; rows: number; walBytes: number };

type Snapshot = {
  conversions: number;
  walLsn: string;
  tables: Map<string, TableCounts>;
  entries: Map<string, number>;
  statements: Map<string, Statement> | undefined;
};

/** Cumulative table counters reach the shared statistics at most once a second per busy backend. */
const STATS_FLUSH_MS = 1_200;
const TOP_STATEMENTS = 8;

async function tableCounts(sql: Sql): Promise<Map<string, TableCounts>> {
  await sql`select pg_stat_clear_snapshot()`;
  const rows = await sql<{ table: string; upd: string; hot: string; del: string }[]>`
    select coalesce(p.relname, c.relname) as table,
           sum(s.n_tup_upd)::text as upd, sum(s.n_tup_hot_upd)::text as hot, sum(s.n_tup_del)::text as del
    from pg_stat_user_tables s
    join pg_class c on c.oid = s.relid
    left join pg_class p on p.oid = pg_partition_root(s.relid) and p.oid <> s.relid
    where s.schemaname = current_schema()
    group by 1`;
  const counts = new Map<string, TableCounts>();
  for (const r of rows) {
    const [n] = await sql<{ n: string }[]>`select count(*)::text as n from ${sql(r.table)}`;
    counts.set(r.table, { rows: Number(n?.n ?? 0), updated: Number(r.upd), hotUpdated: Number(r.hot), deleted: Number(r.del) });
  }
  return counts;
}

/** `table.index` → heap references, over every btree of the tables given. */
async function indexEntries(sql: Sql, tables: string[]): Promise<Map<string, number>> {
  if (tables.length === 0) return new Map();
  const owners = await sql<{ table: string; index: string }[]>`
    select t.relname as table, i.relname as index from pg_index x
    join pg_class i on i.oid = x.indexrelid join pg_class t on t.oid = x.indrelid
    where t.relname = any(${tables}::text[]) and t.relnamespace = current_schema()::regnamespace`;
  const tableOf = new Map(owners.map((o) => [o.index, o.table]));
  const counts = await countIndexEntries(sql, tables);
  return new Map([...counts].map(([index, n]) => [`${tableOf.get(index) ?? '?'}.${index}`, n]));
}

async function statements(sql: Sql): Promise<Map<string, Statement>> {
  const rows = await sql<{ id: string; query: string; calls: string; exec_ms: number; rows: string; wal_bytes: string }[]>`
    select queryid::text as id, query, calls::text, total_exec_time as exec_ms, rows::text, wal_bytes::text
    from pg_stat_statements where dbid = (select oid from pg_database where datname = current_database())`;
  return new Map(rows.map((r) => [r.id, { query: r.query, calls: Number(r.calls), execMs: r.exec_ms, rows: Number(r.rows), walBytes: Number(r.wal_bytes) }]));
}

async function pgSnapshot(sql: Sql, withStatements: boolean, entryTables: string[]): Promise<Snapshot> {
  const tables = await tableCounts(sql);
  const [wal] = await sql<{ lsn: string }[]>`select pg_current_wal_lsn()::text as lsn`;
  return {
    conversions: tables.get('conversions')?.rows ?? 0,
    walLsn: wal?.lsn ?? '0/0',
    tables,
    entries: await indexEntries(sql, entryTables),
    statements: withStatements ? await statements(sql) : undefined,
  };
}

/**
 * Runs `run` between two snapshots (the second once the statistics settled) and returns its result
 * with what it cost PostgreSQL. Index entries are counted on every table but `clicks`, which the
 * postbacks only read and whose leaf pages (every minted click) would take longest to read.
 */
export async function withPgCost<T>(sql: Sql, withStatements: boolean, run: () => Promise<T>, cpuOf: (result: T) => CpuSplit | undefined): Promise<[T, PgCost]> {
  await sleep(STATS_FLUSH_MS); // what came before (seeding, warm-up) must be in the counters already
  const entryTables = [...(await tableCounts(sql)).keys()].filter((t) => t !== 'clicks');
  const before = await pgSnapshot(sql, withStatements, entryTables);
  const result = await run();
  await sleep(STATS_FLUSH_MS);
  const after = await pgSnapshot(sql, withStatements, entryTables);
  return [result, await costBetween(sql, before, after, cpuOf(result))];
}

/** The bench's own statements on the measured database (snapshots, row counts, checks), left out of the engine's cost. */
const BENCH_STATEMENT = /\bpg_(stat_|class\b|index\b|inherits|database|current_wal_lsn|wal_lsn_diff|relation_size)|bt_page_|count\(\*\)::text as n from|create extension/;

async function costBetween(sql: Sql, a: Snapshot, b: Snapshot, cpu: CpuSplit | undefined): Promise<PgCost> {
  const n = b.conversions - a.conversions;
  const per = (v: number, digits = 2) => (n > 0 ? Math.round((v / n) * 10 ** digits) / 10 ** digits : 0);
  const [wal] = await sql<{ bytes: string }[]>`select pg_wal_lsn_diff(${b.walLsn}::pg_lsn, ${a.walLsn}::pg_lsn)::text as bytes`;
  const rows: PgCost['rows'] = {};
  for (const [table, after] of b.tables) {
    const before = a.tables.get(table) ?? { rows: 0, updated: 0, hotUpdated: 0, deleted: 0 };
    const deleted = after.deleted - before.deleted;
    const d = { inserted: after.rows - before.rows + deleted, updated: after.updated - before.updated, hotUpdated: after.hotUpdated - before.hotUpdated, deleted };
    if (d.inserted === 0 && d.updated === 0 && d.deleted === 0) continue;
    rows[table] = { inserted: per(d.inserted, 3), updated: per(d.updated, 3), hotUpdated: per(d.hotUpdated, 3), deleted: per(d.deleted, 3) };
  }
  const indexEntries: Record<string, number> = {};
  let entriesTotal = 0;
  for (const [index, after] of b.entries) {
    const added = after - (a.entries.get(index) ?? 0);
    if (added <= 0) continue;
    indexEntries[index] = per(added, 3);
    entriesTotal += added;
  }
  let statementExecUs: number | undefined;
  let statementCalls: number | undefined;
  let topStatements: StatementCost[] = [];
  if (a.statements && b.statements) {
    const deltas = [...b.statements].map(([id, s]) => {
      const p = a.statements?.get(id);
      return { query: s.query, calls: s.calls - (p?.calls ?? 0), execMs: s.execMs - (p?.execMs ?? 0), rows: s.rows - (p?.rows ?? 0), walBytes: s.walBytes - (p?.walBytes ?? 0) };
    });
    const engine = deltas.filter((d) => d.calls > 0 && !BENCH_STATEMENT.test(d.query));
    statementExecUs = per(engine.reduce((sum, d) => sum + d.execMs * 1000, 0), 1);
    statementCalls = per(engine.reduce((sum, d) => sum + d.calls, 0));
    topStatements = engine
      .sort((x, y) => y.execMs - x.execMs)
      .slice(0, TOP_STATEMENTS)
      .map((d) => ({
        query: d.query.replace(/\s+/g, ' ').slice(0, 160),
        callsPerConversion: per(d.calls, 3),
        execUsPerConversion: per(d.execMs * 1000, 1),
        rowsPerConversion: per(d.rows, 3),
        walBytesPerConversion: per(d.walBytes, 0),
      }));
  }
  return {
    conversions: n,
    processCpuUs: cpu && cpu.postgresCores > 0 ? per(cpu.postgresCores * cpu.wallS * 1e6, 1) : undefined,
    statementExecUs,
    statementCalls,
    walBytes: per(Number(wal?.bytes ?? 0), 0),
    rows,
    indexEntries,
    indexEntriesTotal: per(entriesTotal, 2),
    topStatements,
  };
}
