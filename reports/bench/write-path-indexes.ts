import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connect, type Sql } from '../../src/db/database.js';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { loadMigrations, migrate } from '../../src/db/migrate.js';
import { writeOutcomes } from '../../src/delivery/outcome-writer.js';
import { claimDue } from '../../src/delivery/store.js';
import { newId } from '../../src/ids.js';
import { commitFresh, type FreshItem } from '../../src/postback/commit-fresh.js';

/**
 * `npx tsx reports/bench/write-path-indexes.ts [--conversions 2000] [--without 80]`
 *
 * Index entries and WAL bytes per durable conversion on the engine's own write path, without HTTP:
 * the group commit's one statement (commitFresh: conversion, first history row, delivery), the
 * worker's claim and its outcome batch (a 2xx at the first try, with its attempt row). Run twice on
 * one embedded PostgreSQL: the schema with every migration, and the schema without the migrations
 * named by --without (default 80, the index pruning), so the two columns differ by what those
 * migrations did. Entries are counted from the tables' write counters (pg_stat_user_tables): every
 * inserted row and every new version of a non-HOT update gets one in each index whose predicate it
 * satisfies. Also prints the share of claims updated in place (HOT), WAL bytes per conversion and
 * the deliveries heap per row. Autovacuum is off on the tables measured.
 */

const { values } = parseArgs({ options: { conversions: { type: 'string', default: '2000' }, without: { type: 'string', default: '80' } } });
const N = Number(values.conversions);
const without = new Set(values.without.split(',').map(Number));
const TABLES = ['conversions', 'conversion_status_history', 'deliveries', 'delivery_attempts'];
const BATCH = 50;
const REFIRE_WINDOW_S = 259_200;

async function seed(sql: Sql): Promise<void> {
  await sql`insert into advertisers (id, name, auth, rate_limit_per_s) values ('adv_b', 'a', '{hmac}', 100)`;
  await sql`insert into publishers (id, name, postback_url, method, secret) values ('pub_b', 'p', 'https://example.com/{clickid}', 'GET', '\\x00')`;
  await sql`insert into offers (id, advertiser_id, name, url, payout_minor, revenue_minor, currency, click_ttl_s)
            values ('off_b', 'adv_b', 'o', 'https://example.com/', 100, 150, 'USD', 86400)`;
  for (const t of TABLES) await sql.unsafe(`alter table ${t} set (autovacuum_enabled = false)`);
}

function items(n: number, offset: number): FreshItem[] {
  const now = new Date();
  return Array.from({ length: n }, (_, i) => ({
    conversionId: newId('cv'),
    advertiserId: 'adv_b',
    offerId: 'off_b',
    publisherId: 'pub_b',
    clickId: `clk-${offset + i}`,
    clickCreatedAt: now,
    txid: `tx-${offset + i}`,
    event: 'sale',
    status: 'approved',
    payoutMinor: 100n,
    revenueMinor: 150n,
    amountMinor: null,
    currency: 'USD',
    caps: [],
    receivedAt: now,
    subs: [null, null, null, null, null],
    userIp: '203.0.113.7',
    userAgent: 'Mozilla/5.0',
    sourceIp: '198.51.100.1',
    score: { score: 0, decision: 'accepted', reasons: [], evidence: [] },
    message: undefined,
  }));
}

/** Conversions through intake, then their deliveries claimed and delivered; from `offset` on. */
async function drive(sql: Sql, n: number, offset: number): Promise<void> {
  for (let i = 0; i < n; i += BATCH) await commitFresh(sql, items(Math.min(BATCH, n - i), offset + i), REFIRE_WINDOW_S);
  for (;;) {
    const claimed = await claimDue(sql, { workerId: 'bench', leaseMs: 60_000, want: 500, perPublisher: 500, limitIds: [], limitRooms: [] });
    if (claimed.length === 0) break;
    const at = new Date();
    await writeOutcomes(
      sql,
      'bench',
      claimed.map((d) => ({
        attempt: { deliveryId: d.id, attemptedAt: at, statusCode: 200, latencyMs: 5, error: null, snippet: 'ok', replay: false },
        delivered: true,
        retryInMs: 0,
      })),
    );
  }
}

type TableCounts = { ins: number; upd: number; hot: number };
type IndexDef = { table: string; index: string; predicate: string | null };

/** Row writes per table since the server started, as this session's own statistics flushed (PG 15+). */
async function tableCounts(sql: Sql): Promise<Map<string, TableCounts>> {
  await sql`select pg_stat_force_next_flush()`;
  await sql`select 1`; // the flush happens when the backend goes idle after the call above
  await sql`select pg_stat_clear_snapshot()`;
  const rows = await sql<{ relname: string; ins: string; upd: string; hot: string }[]>`
    select relname, n_tup_ins::text as ins, n_tup_upd::text as upd, n_tup_hot_upd::text as hot
    from pg_stat_user_tables where relname = any(${TABLES}::text[])`;
  return new Map(rows.map((r) => [r.relname, { ins: Number(r.ins), upd: Number(r.upd), hot: Number(r.hot) }]));
}

async function indexDefs(sql: Sql): Promise<IndexDef[]> {
  return sql<IndexDef[]>`
    select tc.relname as table, ic.relname as index, pg_get_expr(i.indpred, i.indrelid) as predicate
    from pg_index i join pg_class ic on ic.oid = i.indexrelid join pg_class tc on tc.oid = i.indrelid
    where tc.relname = any(${TABLES}::text[]) order by 1, 2`;
}

/** The rows of each table that the measured conversions wrote. */
const TOUCHED: Record<string, string> = {
  conversions: 'id = any($1)',
  conversion_status_history: 'conversion_id = any($1)',
  deliveries: 'conversion_id = any($1)',
  delivery_attempts: 'delivery_id in (select id from deliveries where conversion_id = any($1))',
};

/**
 * Entries written to each index in one phase: every inserted row and every new version of a non-HOT
 * update gets an entry in each index whose predicate it satisfies. All rows a phase touches end in
 * the same state here, so the share of them matching the predicate now is the share of the phase's
 * new versions that did. (Counting entries in the index pages instead would miss those that btree's
 * bottom-up deletion already removed.)
 */
async function phaseEntries(sql: Sql, defs: IndexDef[], ids: string[], from: Map<string, TableCounts>, to: Map<string, TableCounts>) {
  const out = new Map<string, number>();
  for (const d of defs) {
    const a = from.get(d.table);
    const b = to.get(d.table);
    if (!a || !b) continue;
    const versions = b.ins - a.ins + (b.upd - b.hot) - (a.upd - a.hot);
    if (versions === 0) {
      out.set(d.index, 0);
      continue;
    }
    const [share] = await sql.unsafe<{ all: string; matching: string }[]>(
      `select count(*)::text as all, count(*) filter (where ${d.predicate ?? 'true'})::text as matching from ${d.table} where ${TOUCHED[d.table]}`,
      [ids],
    );
    const all = Number(share?.all ?? 0);
    out.set(d.index, all === 0 ? 0 : (versions * Number(share?.matching ?? 0)) / all);
  }
  return out;
}

type Figures = { entries: Map<string, number>[]; walBytes: number; claimsHot: number; deliveryHeapBytes: number };
const PHASES = ['intake (commitFresh)', 'claim', 'outcome (2xx + attempt)'];

async function measure(sql: Sql): Promise<Figures> {
  await seed(sql);
  await drive(sql, 200, 0); // warm-up: pages and plans exist before counting
  const defs = await indexDefs(sql);
  const [lsn0] = await sql<{ lsn: string }[]>`select pg_current_wal_lsn()::text as lsn`;
  const entries: Map<string, number>[] = [];
  const ids: string[] = [];
  let counts = await tableCounts(sql);
  // Each phase's entries are read right after it, while every row it touched is in the state it left.
  const phaseDone = async () => {
    const next = await tableCounts(sql);
    entries.push(await phaseEntries(sql, defs, ids, counts, next));
    const before = counts.get('deliveries');
    const after = next.get('deliveries');
    counts = next;
    return before && after && after.upd > before.upd ? (after.hot - before.hot) / (after.upd - before.upd) : 0;
  };
  for (let i = 0; i < N; i += BATCH) ids.push(...(await commitFresh(sql, items(Math.min(BATCH, N - i), 1_000_000 + i), REFIRE_WINDOW_S)));
  await phaseDone();
  const claimed = [];
  for (;;) {
    const got = await claimDue(sql, { workerId: 'bench', leaseMs: 60_000, want: 500, perPublisher: 500, limitIds: [], limitRooms: [] });
    if (got.length === 0) break;
    claimed.push(...got);
  }
  const claimsHot = await phaseDone();
  const at = new Date();
  for (let i = 0; i < claimed.length; i += 500) {
    const outcomes = claimed.slice(i, i + 500).map((d) => ({
      attempt: { deliveryId: d.id, attemptedAt: at, statusCode: 200, latencyMs: 5, error: null, snippet: 'ok', replay: false },
      delivered: true,
      retryInMs: 0,
    }));
    await writeOutcomes(sql, 'bench', outcomes);
  }
  await phaseDone();
  const [wal] = await sql<{ bytes: string }[]>`select pg_wal_lsn_diff(pg_current_wal_lsn(), ${lsn0?.lsn ?? '0/0'}::pg_lsn)::text as bytes`;
  const [heap] = await sql<{ bytes: number }[]>`
    select (pg_relation_size('deliveries') / greatest(count(*), 1))::float8 as bytes from deliveries`;
  return { entries, walBytes: Number(wal?.bytes ?? 0), claimsHot, deliveryHeapBytes: heap?.bytes ?? 0 };
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

const dir = await mkdtemp(path.join(os.tmpdir(), 'pbe-index-bench-'));
// When run as root the server runs as a `postgres` user, which must be able to reach its data dir.
await chmod(dir, 0o755);
const db = await startEmbeddedPostgres(dir, () => undefined, { persistent: false });
try {
  const admin = connect(db.url, { max: 1 });
  await admin.unsafe('create database with_all');
  await admin.unsafe('create database without_some');
  await admin.end();
  const all = connect(db.url.replace(/\/postgres$/, '/with_all'), { max: 2 });
  await migrate(all);
  const some = connect(db.url.replace(/\/postgres$/, '/without_some'), { max: 2 });
  for (const m of (await loadMigrations()).filter((m) => !without.has(m.id))) await some.unsafe(m.text);
  const [a, b] = [await measure(some), await measure(all)];
  await all.end();
  await some.end();

  const names = [...new Set(a.entries.flatMap((m) => [...m.keys()]).concat(b.entries.flatMap((m) => [...m.keys()])))].sort();
  const perIndex = (f: Figures, k: string) => {
    const has = f.entries.some((m) => m.has(k));
    return has ? (f.entries.reduce((acc, m) => acc + (m.get(k) ?? 0), 0) / N).toFixed(2) : '—';
  };
  process.stdout.write(`\nIndex entries written per conversion, ${N} conversions, each delivered at the first try\n`);
  process.stdout.write(`${'index'.padEnd(42)} ${'without'.padStart(8)} ${'with all'.padStart(9)}\n`);
  for (const k of names) process.stdout.write(`${k.padEnd(42)} ${perIndex(a, k).padStart(8)} ${perIndex(b, k).padStart(9)}\n`);
  const line = (label: string, x: number, y: number, digits = 2) =>
    process.stdout.write(`${label.padEnd(42)} ${x.toFixed(digits).padStart(8)} ${y.toFixed(digits).padStart(9)}\n`);
  line('total', a.entries.reduce((t, m) => t + sum(m), 0) / N, b.entries.reduce((t, m) => t + sum(m), 0) / N);
  for (const [i, p] of PHASES.entries()) line(`  ${p}`, sum(a.entries[i] ?? new Map()) / N, sum(b.entries[i] ?? new Map()) / N);
  line('claims updated in place (HOT), share', a.claimsHot, b.claimsHot);
  line('WAL bytes per conversion', a.walBytes / N, b.walBytes / N, 0);
  line('deliveries heap bytes per delivery', a.deliveryHeapBytes, b.deliveryHeapBytes, 0);
  process.stdout.write(`(without = every migration but ${[...without].join(', ')})\n`);
} finally {
  await db.stop();
  await rm(dir, { recursive: true, force: true });
}
