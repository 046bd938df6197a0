import type { Catalog } from '../catalog/catalog.js';
import type { Sql } from '../db/database.js';
import { loadFxHistory } from '../fx/fx-store.js';
import { bucketOf, windowClause, type Fragment, type ReadSql } from './buckets.js';
import { approvedMoneyLines, convertLines, money, rowKey, type ConvertedJson } from './converted.js';
import { sortByIdThenCurrency, throughDayOf } from './report-order.js';

/**
 * The advertiser report (CONTRACT §10): conversions created in [from, to), per advertiser and
 * currency: what the network bills (`revenue`), what it owes publishers (`payout`) and keeps
 * (`margin` = revenue − payout). The states are those of the payout report (buckets.ts) and money is
 * summed over approved conversions only, as there: a pending sale is not billable yet, and the two
 * reports agree on every payout. `overCap` counts conversions with reason `over_cap`, whatever their
 * state (they are also counted as rejected or flagged, or approved once an analyst overturned them).
 */

export type AdvertiserFilter = { from?: Date; to?: Date; advertiserId?: string; currency?: string };

export const ADVERTISER_COLUMNS = [
  'advertiserId', 'advertiserName', 'currency', 'conversions', 'approved', 'pending', 'flagged', 'rejected', 'overCap',
  'revenue', 'payout', 'margin',
] as const;

type Counted = { conversions: number; approved: number; pending: number; flagged: number; rejected: number; overCap: number };
type Money = { revenue: string; payout: string; margin: string };
export type AdvertiserRow = { advertiserId: string; advertiserName: string | null; currency: string } & Counted & Money & { converted?: ConvertedJson };
export type AdvertiserTotal = { currency: string } & Counted & Money;
export type AdvertiserReport = { rows: AdvertiserRow[]; totals: AdvertiserTotal[]; converted?: ConvertedJson };

const COUNTED: (keyof Counted)[] = ['conversions', 'approved', 'pending', 'flagged', 'rejected', 'overCap'];

type Db = { advertiser_id: string; currency: string; over_cap: number; payout_minor: string; revenue_minor: string } & Omit<Counted, 'overCap'>;

function filterOf(sql: ReadSql, f: AdvertiserFilter): Fragment {
  return sql`${windowClause(sql, f)} ${f.advertiserId ? sql`and c.advertiser_id = ${f.advertiserId}` : sql``}`;
}

async function readRows(sql: ReadSql, filter: Fragment): Promise<Db[]> {
  return sql<Db[]>`
    with c as (
      select c.advertiser_id, c.currency, c.payout_minor, c.revenue_minor, 'over_cap' = any(c.reasons) as over_cap, ${bucketOf(sql)} as bucket
      from conversions c
      where true ${filter}
    )
    select c.advertiser_id, c.currency,
           count(*)::int as conversions,
           count(*) filter (where c.bucket = 'approved')::int as approved,
           count(*) filter (where c.bucket = 'pending')::int as pending,
           count(*) filter (where c.bucket = 'flagged')::int as flagged,
           count(*) filter (where c.bucket = 'rejected')::int as rejected,
           count(*) filter (where c.over_cap)::int as over_cap,
           coalesce(sum(c.revenue_minor) filter (where c.bucket = 'approved'), 0)::text as revenue_minor,
           coalesce(sum(c.payout_minor) filter (where c.bucket = 'approved'), 0)::text as payout_minor
    from c
    group by c.advertiser_id, c.currency`;
}

export async function advertiserReport(sql: Sql, catalog: Catalog, f: AdvertiserFilter): Promise<AdvertiserReport> {
  // One snapshot for the figures and the converted totals, so they describe the same conversions.
  const [rows, lines] = await sql.begin('isolation level repeatable read read only', async (tx) => {
    const rows = await readRows(tx, filterOf(tx, f));
    const lines = f.currency ? await approvedMoneyLines(tx, 'advertiser_id', filterOf(tx, f)) : [];
    return [rows, lines] as const;
  });
  const converted = f.currency ? convertLines(lines, f.currency, await loadFxHistory(sql, throughDayOf(f.to))) : undefined;

  const counted = (r: Db): Counted => ({ conversions: r.conversions, approved: r.approved, pending: r.pending, flagged: r.flagged, rejected: r.rejected, overCap: r.over_cap });
  const report: AdvertiserRow[] = sortByIdThenCurrency(rows, (r) => r.advertiser_id).map((r) => {
    const currency = r.currency.trim();
    const { revenue, payout, margin } = money(currency, { revenue: BigInt(r.revenue_minor), payout: BigInt(r.payout_minor) });
    return {
      advertiserId: r.advertiser_id,
      advertiserName: catalog.advertisers.get(r.advertiser_id)?.name ?? null,
      currency,
      ...counted(r),
      revenue,
      payout,
      margin,
      ...(converted ? { converted: converted.row(rowKey(r.advertiser_id, currency)) } : {}),
    };
  });

  const byCurrency = new Map<string, { revenue: bigint; payout: bigint; counted: Counted }>();
  for (const r of rows) {
    const currency = r.currency.trim();
    const entry = byCurrency.get(currency) ?? { revenue: 0n, payout: 0n, counted: { conversions: 0, approved: 0, pending: 0, flagged: 0, rejected: 0, overCap: 0 } };
    entry.revenue += BigInt(r.revenue_minor);
    entry.payout += BigInt(r.payout_minor);
    const c = counted(r);
    for (const k of COUNTED) entry.counted[k] += c[k];
    byCurrency.set(currency, entry);
  }
  const totals = [...byCurrency.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([currency, e]) => {
      const { revenue, payout, margin } = money(currency, e);
      return { currency, ...e.counted, revenue, payout, margin };
    });
  return converted ? { rows: report, totals, converted: converted.total } : { rows: report, totals };
}
