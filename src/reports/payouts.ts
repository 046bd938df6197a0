import type { Catalog } from '../catalog/catalog.js';
import type { Sql } from '../db/database.js';
import { formatMoney } from '../money.js';

/**
 * The payout report (CONTRACT §8): conversions created in [from, to), per publisher and currency.
 * Each conversion falls in exactly one of four states, so they add up to `conversions`:
 * - rejected: the advertiser rejected it (status, e.g. a chargeback), an analyst rejected it, or
 *   the fraud score rejected it and no analyst overturned that;
 * - flagged: waiting for an analyst (recovered pixel conversions start here);
 * - pending: the advertiser has not approved the sale yet;
 * - approved: payable; `payout` is their sum, in that currency's minor units formatted as a decimal.
 * `s2s`/`pixel` count by source; `refired` counts deliveries the reconciler re-fired, `expired`
 * deliveries that ran out of REFIRE_WINDOW_S. Amounts in different currencies are never added.
 */

export type PayoutFilter = { from?: Date; to?: Date; publisherId?: string };

export const PAYOUT_COLUMNS = [
  'publisherId', 'publisherName', 'currency', 'conversions', 'approved', 'payout', 'pending', 'flagged', 'rejected',
  's2s', 'pixel', 'refired', 'expired',
] as const;

type Counted = { conversions: number; approved: number; pending: number; flagged: number; rejected: number; s2s: number; pixel: number; refired: number; expired: number };
export type PayoutRow = { publisherId: string; publisherName: string | null; currency: string; payout: string } & Counted;
export type PayoutTotal = { currency: string; payout: string } & Counted;

const COUNTED: (keyof Counted)[] = ['conversions', 'approved', 'pending', 'flagged', 'rejected', 's2s', 'pixel', 'refired', 'expired'];

export async function payoutReport(sql: Sql, catalog: Catalog, f: PayoutFilter): Promise<{ rows: PayoutRow[]; totals: PayoutTotal[] }> {
  type Db = Counted & { publisher_id: string; currency: string; payout_minor: string };
  const rows = await sql<Db[]>`
    with c as (
      select c.id, c.publisher_id, c.currency, c.payout_minor, c.source,
             case
               when c.status = 'rejected' or c.review_state = 'rejected' or (c.decision = 'rejected' and c.review_state <> 'approved') then 'rejected'
               when c.decision = 'flagged' and c.review_state = 'none' then 'flagged'
               when c.status = 'pending' then 'pending'
               else 'approved'
             end as bucket
      from conversions c
      where true
        ${f.from ? sql`and c.created_at >= ${f.from.toISOString()}::timestamptz` : sql``}
        ${f.to ? sql`and c.created_at < ${f.to.toISOString()}::timestamptz` : sql``}
        ${f.publisherId ? sql`and c.publisher_id = ${f.publisherId}` : sql``}
    ), d as (
      select d.conversion_id, count(*) filter (where d.refired_at is not null) as refired, count(*) filter (where d.state = 'expired') as expired
      from deliveries d join c on c.id = d.conversion_id
      group by d.conversion_id
    )
    select c.publisher_id, c.currency,
           count(*)::int as conversions,
           count(*) filter (where c.bucket = 'approved')::int as approved,
           coalesce(sum(c.payout_minor) filter (where c.bucket = 'approved'), 0)::text as payout_minor,
           count(*) filter (where c.bucket = 'pending')::int as pending,
           count(*) filter (where c.bucket = 'flagged')::int as flagged,
           count(*) filter (where c.bucket = 'rejected')::int as rejected,
           count(*) filter (where c.source = 's2s')::int as s2s,
           count(*) filter (where c.source = 'pixel')::int as pixel,
           coalesce(sum(d.refired), 0)::int as refired,
           coalesce(sum(d.expired), 0)::int as expired
    from c left join d on d.conversion_id = c.id
    group by c.publisher_id, c.currency`;

  // Code-point order, the same whatever collation the database was created with.
  const sorted = [...rows].sort((a, b) =>
    a.publisher_id < b.publisher_id ? -1 : a.publisher_id > b.publisher_id ? 1 : a.currency < b.currency ? -1 : a.currency > b.currency ? 1 : 0,
  );
  const report: PayoutRow[] = sorted.map((r) => {
    const currency = r.currency.trim();
    const counted = Object.fromEntries(COUNTED.map((k) => [k, r[k]])) as Counted;
    return {
      publisherId: r.publisher_id,
      publisherName: catalog.publishers.get(r.publisher_id)?.name ?? null,
      currency,
      ...counted,
      payout: formatMoney(BigInt(r.payout_minor), currency),
    };
  });

  const byCurrency = new Map<string, { minor: bigint; counted: Counted }>();
  for (const [i, r] of report.entries()) {
    const entry = byCurrency.get(r.currency) ?? { minor: 0n, counted: Object.fromEntries(COUNTED.map((k) => [k, 0])) as Counted };
    entry.minor += BigInt((sorted[i] as Db).payout_minor);
    for (const k of COUNTED) entry.counted[k] += r[k];
    byCurrency.set(r.currency, entry);
  }
  const totals = [...byCurrency.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([currency, e]) => ({ currency, ...e.counted, payout: formatMoney(e.minor, currency) }));
  return { rows: report, totals };
}
