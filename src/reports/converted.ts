import { convertMinor, type FxHistory } from '../fx/convert.js';
import { formatMoney } from '../money.js';
import { bucketOf, utcDayColumn, type Fragment, type ReadSql } from './buckets.js';

/**
 * Converted totals for the finance reports (CONTRACT §10 "Reporting currency"). Each approved
 * conversion is converted at the rate of its own UTC day (or the latest earlier day with one) and
 * rounded half up to the target's minor unit before summing. Conversions are read grouped by day,
 * currency and exact amounts with a count: equal amounts of one currency on one day convert to the
 * same rounded figure, so `count × round(amount)` is exactly the per-conversion sum, without one row
 * per conversion. A sum per day would round once where its conversions each round: never used here.
 * Margin is converted revenue − converted payout, so the three converted figures always add up.
 */

export type MoneyLine = { groupId: string; currency: string; day: string; payoutMinor: bigint; revenueMinor: bigint; count: bigint };

type Sums = { revenue: bigint; payout: bigint };

export type MoneyJson = { currency: string; revenue: string; payout: string; margin: string };
export type ConvertedJson = MoneyJson & { unconverted: MoneyJson[] };

/** Approved conversions of the report's filter, by group (publisher or advertiser), currency, day and amounts. */
export async function approvedMoneyLines(
  sql: ReadSql,
  groupColumn: 'publisher_id' | 'advertiser_id',
  filter: Fragment,
): Promise<MoneyLine[]> {
  const rows = await sql<{ group_id: string; currency: string; day: string; payout_minor: string; revenue_minor: string; n: string }[]>`
    select c.${sql(groupColumn)} as group_id, c.currency, ${utcDayColumn(sql)} as day,
           c.payout_minor::text as payout_minor, c.revenue_minor::text as revenue_minor, count(*)::text as n
    from conversions c
    where ${bucketOf(sql)} = 'approved' ${filter}
    group by 1, 2, 3, 4, 5`;
  return rows.map((r) => ({
    groupId: r.group_id,
    currency: r.currency.trim(),
    day: r.day,
    payoutMinor: BigInt(r.payout_minor),
    revenueMinor: BigInt(r.revenue_minor),
    count: BigInt(r.n),
  }));
}

class ConvertedSum {
  private readonly converted: Sums = { revenue: 0n, payout: 0n };
  private readonly unconverted = new Map<string, Sums>();

  constructor(private readonly target: string) {}

  add(line: MoneyLine, history: FxHistory): void {
    const revenue = convertMinor(line.revenueMinor, line.currency, this.target, line.day, history);
    const payout = convertMinor(line.payoutMinor, line.currency, this.target, line.day, history);
    // Both amounts share currency and day, hence the rate set: they convert together or not at all.
    if (revenue.ok && payout.ok) {
      this.converted.revenue += revenue.minor * line.count;
      this.converted.payout += payout.minor * line.count;
      return;
    }
    const left = this.unconverted.get(line.currency) ?? { revenue: 0n, payout: 0n };
    left.revenue += line.revenueMinor * line.count;
    left.payout += line.payoutMinor * line.count;
    this.unconverted.set(line.currency, left);
  }

  toJson(): ConvertedJson {
    const unconverted = [...this.unconverted.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([currency, sums]) => money(currency, sums));
    return { ...money(this.target, this.converted), unconverted };
  }
}

export function money(currency: string, sums: Sums): MoneyJson {
  return {
    currency,
    revenue: formatMoney(sums.revenue, currency),
    payout: formatMoney(sums.payout, currency),
    margin: formatMoney(sums.revenue - sums.payout, currency),
  };
}

export const rowKey = (groupId: string, currency: string): string => `${groupId}\u0000${currency}`;

/** Per report row (`rowKey(group, currency)`) and over the whole report. */
export function convertLines(lines: Iterable<MoneyLine>, target: string, history: FxHistory): { row: (key: string) => ConvertedJson; total: ConvertedJson } {
  const byRow = new Map<string, ConvertedSum>();
  const total = new ConvertedSum(target);
  for (const line of lines) {
    const key = rowKey(line.groupId, line.currency);
    let sum = byRow.get(key);
    if (!sum) byRow.set(key, (sum = new ConvertedSum(target)));
    sum.add(line, history);
    total.add(line, history);
  }
  const empty = new ConvertedSum(target).toJson();
  return { row: (key) => byRow.get(key)?.toJson() ?? empty, total: total.toJson() };
}

export const CONVERTED_COLUMNS = ['convertedCurrency', 'convertedRevenue', 'convertedPayout', 'convertedMargin', 'unconvertedRevenue', 'unconvertedPayout'] as const;

/**
 * A spreadsheet row has one currency, so its unconverted part is at most that currency's: two
 * columns in the row's own currency (zero when everything converted) instead of a nested list.
 */
export function flattenConverted<T extends { currency: string; converted?: ConvertedJson }>(row: T): Omit<T, 'converted'> & Record<string, string> {
  const { converted, ...rest } = row;
  if (!converted) return rest as Omit<T, 'converted'> & Record<string, string>;
  const own = converted.unconverted.find((u) => u.currency === row.currency) ?? money(row.currency, { revenue: 0n, payout: 0n });
  return {
    ...rest,
    convertedCurrency: converted.currency,
    convertedRevenue: converted.revenue,
    convertedPayout: converted.payout,
    convertedMargin: converted.margin,
    unconvertedRevenue: own.revenue,
    unconvertedPayout: own.payout,
  } as Omit<T, 'converted'> & Record<string, string>;
}
