import type { Sql } from '../../src/db/database.js';

/**
 * What one served request cost the engine's storage, measured around a run: rows added to each
 * table (exact counts, not PostgreSQL's lagging statistics) and, from the engine's own Prometheus
 * metrics, how many batched writes it made and how full they were. Explains a throughput figure:
 * a conversion that writes five rows in one shared transaction is a different engine from one that
 * writes two rows in a transaction of its own.
 */

export type Costs = Record<string, number>;

type Snapshot = { rows: Map<string, number>; metrics: Map<string, number> };

/** Each regular or partitioned table of the public schema (partitions are counted through their parent). */
async function tableRows(sql: Sql): Promise<Map<string, number>> {
  const tables = await sql<{ name: string }[]>`
    select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relispartition
    order by 1`;
  const rows = new Map<string, number>();
  for (const { name } of tables) {
    const [r] = await sql<{ n: string }[]>`select count(*)::text as n from ${sql(name)}`;
    rows.set(name, Number(r?.n ?? 0));
  }
  return rows;
}

/** Series of the engine's /metrics text, keyed by name and labels as written; empty if unreachable. */
async function engineMetrics(baseUrl: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  try {
    const res = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(5_000) });
    if (res.status !== 200) return out;
    for (const line of (await res.text()).split('\n')) {
      if (line.startsWith('#') || line.trim() === '') continue;
      const space = line.lastIndexOf(' ');
      const value = Number(line.slice(space + 1));
      if (Number.isFinite(value)) out.set(line.slice(0, space), value);
    }
  } catch {
    // metrics are an explanation, not a requirement
  }
  return out;
}

async function snapshot(sql: Sql, baseUrl: string): Promise<Snapshot> {
  return { rows: await tableRows(sql), metrics: await engineMetrics(baseUrl) };
}

/** Batched writers the engine reports: histogram name prefix → label in the report. */
const BATCHES: [string, string][] = [
  ['postback_engine_commit_batch_postbacks', 'postback commit transactions'],
  ['postback_engine_db_batch_rows{writer="clicks"}', 'click insert batches'],
];

function costsBetween(a: Snapshot, b: Snapshot, served: number): Costs {
  const per = (d: number) => Math.round((d / served) * 1000) / 1000;
  const costs: Costs = {};
  if (served <= 0) return costs;
  for (const [table, after] of b.rows) {
    const added = after - (a.rows.get(table) ?? 0);
    if (added !== 0) costs[`rows added to ${table} per answer`] = per(added);
  }
  for (const [series, label] of BATCHES) {
    const [name, labels = ''] = series.includes('{') ? [series.slice(0, series.indexOf('{')), series.slice(series.indexOf('{'))] : [series];
    const count = (b.metrics.get(`${name}_count${labels}`) ?? 0) - (a.metrics.get(`${name}_count${labels}`) ?? 0);
    const sum = (b.metrics.get(`${name}_sum${labels}`) ?? 0) - (a.metrics.get(`${name}_sum${labels}`) ?? 0);
    if (count <= 0) continue;
    costs[`${label} per answer`] = per(count);
    costs[`mean ${label.replace(/ (transactions|batches)$/, '')} batch size`] = Math.round((sum / count) * 10) / 10;
  }
  return costs;
}

/** Lets batched writers (clicks wait at most ~20 ms) finish before the rows are counted. */
const SETTLE_MS = 300;

/** Runs `run` between two snapshots; returns its result and its costs per served answer. */
export async function withCosts<T extends { served: number }>(sql: Sql, baseUrl: string, run: () => Promise<T>): Promise<[T, Costs]> {
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const before = await snapshot(sql, baseUrl);
  const result = await run();
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const after = await snapshot(sql, baseUrl);
  return [result, costsBetween(before, after, result.served)];
}
