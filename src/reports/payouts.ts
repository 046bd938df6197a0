import type { Catalog } from '../catalog/catalog.js';
import type { Sql } from '../db/database.js';
import { loadFxHistory } from '../fx/fx-store.js';
import { bucketOf, windowClause, type Fragment, type ReadSql } from './buckets.js';
import { approvedMoneyLines, convertLines, money, rowKey, type ConvertedJson } from './converted.js';
import { sortByIdThenCurrency, throughDayOf } from './report-order.js';

/**
 * The payout report (CONTRACT §8, §10): conversions created in [from, to), per publisher and currency.
 * Each conversion falls in exactly one state (see buckets.ts), so they add up to `conversions`.
 * `payout`, `revenue` and `margin` (revenue − payout) are sums over approved conversions, in that
 * currency's minor units formatted as a decimal. `s2s`/`pixel` count by source; `refired` counts
 * deliveries the reconciler re-fired, `expired` deliveries that ran out of REFIRE_WINDOW_S. Amounts in
 * different currencies are never added, except into `converted` when a reporting currency is asked.
 */

export type PayoutFilter = { from?: Date; to?: Date; publisherId?: string; currency?: string };

export const PAYOUT_COLUMNS = [
  'publisherId', 'publisherName', 'currency', 'conversions', 'approved', 'payout', 'revenue', 'margin', 'pending', 'flagged', 'rejected',
  's2s', 'pixel', 'refired', 'expired',
] as const;

type Counted = { conversions: number; approved: number; pending: number; flagged: number; rejected: number; s2s: number; pixel: number; refired: number; expired: number };
type Money = { payout: string; revenue: string; margin: string };
export type PayoutRow = { publisherId: string; publisherName: string | null; currency: string } & Counted & Money & { converted?: ConvertedJson };
export type PayoutTotal = { currency: string } & Counted & Money;
export type PayoutReport = { rows: PayoutRow[]; totals: PayoutTotal[]; converted?: ConvertedJson };

const COUNTED: (keyof Counted)[] = ['conversions', 'approved', 'pending', 'flagged', 'rejected', 's2s', 'pixel', 'refired', 'expired'];
const zeroCounts = () => Object.fromEntries(COUNTED.map((k) => [k, 0])) as Counted;

type Db = Counted & { publisher_id: string; currency: string; payout_minor: string; revenue_minor: string };

function filterOf(sql: ReadSql, f: PayoutFilter): Fragment {
  return sql`${windowClause(sql, f)} ${f.publisherId ? sql`and c.publisher_id = ${f.publisherId}` : sql``}`;
}

async function readRows(sql: ReadSql, filter: Fragment, from: Date | undefined): Promise<Db[]> {
  return sql<Db[]>`
    with c as (
      select c.id, c.created_at, c.publisher_id, c.currency, c.payout_minor, c.revenue_minor, c.source, ${bucketOf(sql)} as bucket
      from conversions c
      where true ${filter}
    ), d as (
      select d.conversion_id, count(*) filter (where d.refired_at is not null) as refired, count(*) filter (where d.state = 'expired') as expired
      from deliveries d join c on c.id = d.conversion_id and c.created_at = d.conversion_created_at
      -- A delivery is never dated before its conversion: older day partitions are not read.
      ${from ? sql`where d.created_at >= ${from.toISOString()}::timestamptz` : sql``}
      group by d.conversion_id
    )
    select c.publisher_id, c.currency,
           count(*)::int as conversions,
           count(*) filter (where c.bucket = 'approved')::int as approved,
           coalesce(sum(c.payout_minor) filter (where c.bucket = 'approved'), 0)::text as payout_minor,
           coalesce(sum(c.revenue_minor) filter (where c.bucket = 'approved'), 0)::text as revenue_minor,
           count(*) filter (where c.bucket = 'pending')::int as pending,
           count(*) filter (where c.bucket = 'flagged')::int as flagged,
           count(*) filter (where c.bucket = 'rejected')::int as rejected,
           count(*) filter (where c.source = 's2s')::int as s2s,
           count(*) filter (where c.source = 'pixel')::int as pixel,
           coalesce(sum(d.refired), 0)::int as refired,
           coalesce(sum(d.expired), 0)::int as expired
    from c left join d on d.conversion_id = c.id
    group by c.publisher_id, c.currency`;
}

export async function payoutReport(sql: Sql, catalog: Catalog, f: PayoutFilter): Promise<PayoutReport> {
  // One snapshot for the figures and the converted totals, so they describe the same conversions.
  const [rows, lines] = await sql.begin('isolation level repeatable read read only', async (tx) => {
    const rows = await readRows(tx, filterOf(tx, f), f.from);
    const lines = f.currency ? await approvedMoneyLines(tx, 'publisher_id', filterOf(tx, f)) : [];
    return [rows, lines] as const;
  });
  const converted = f.currency ? convertLines(lines, f.currency, await loadFxHistory(sql, throughDayOf(f.to))) : undefined;

  const report: PayoutRow[] = sortByIdThenCurrency(rows, (r) => r.publisher_id).map((r) => {
    const currency = r.currency.trim();
    const { revenue, payout, margin } = money(currency, { revenue: BigInt(r.revenue_minor), payout: BigInt(r.payout_minor) });
    return {
      publisherId: r.publisher_id,
      publisherName: catalog.publishers.get(r.publisher_id)?.name ?? null,
      currency,
      ...(Object.fromEntries(COUNTED.map((k) => [k, r[k]])) as Counted),
      payout,
      revenue,
      margin,
      ...(converted ? { converted: converted.row(rowKey(r.publisher_id, currency)) } : {}),
    };
  });

  const byCurrency = new Map<string, { payout: bigint; revenue: bigint; counted: Counted }>();
  for (const r of rows) {
    const currency = r.currency.trim();
    const entry = byCurrency.get(currency) ?? { payout: 0n, revenue: 0n, counted: zeroCounts() };
    entry.payout += BigInt(r.payout_minor);
    entry.revenue += BigInt(r.revenue_minor);
    for (const k of COUNTED) entry.counted[k] += r[k];
    byCurrency.set(currency, entry);
  }
  const totals = [...byCurrency.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([currency, e]) => {
      const { payout, revenue, margin } = money(currency, e);
      return { currency, ...e.counted, payout, revenue, margin };
    });
  return converted ? { rows: report, totals, converted: converted.total } : { rows: report, totals };
}
