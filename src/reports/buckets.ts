import type postgres from 'postgres';

/** The pool or a report's read-only transaction: each report reads one snapshot. */
export type ReadSql = postgres.ISql<{ bigint: bigint }>;
export type Fragment = postgres.Fragment;

/**
 * The one state every conversion is counted in by the finance reports (CONTRACT §8, §10), so the
 * states add up to `conversions` and both reports agree on what is payable:
 * - rejected: the advertiser rejected it (status, e.g. a chargeback), an analyst rejected it, or
 *   the fraud score (or an over-cap reject) rejected it and no analyst overturned that;
 * - flagged: waiting for an analyst (recovered pixel and over-cap `flag` conversions start here);
 * - pending: the advertiser has not approved the sale yet;
 * - approved: payable and billable; only these carry money into the reports' sums.
 * Expects the conversions table aliased `c`.
 */
export function bucketOf(sql: ReadSql) {
  return sql`case
      when c.status = 'rejected' or c.review_state = 'rejected' or (c.decision = 'rejected' and c.review_state <> 'approved') then 'rejected'
      when c.decision = 'flagged' and c.review_state = 'none' then 'flagged'
      when c.status = 'pending' then 'pending'
      else 'approved'
    end`;
}

/** A conversion's UTC calendar day, as FX rate sets are keyed. */
export function utcDayColumn(sql: ReadSql) {
  return sql`to_char(c.created_at at time zone 'UTC', 'YYYY-MM-DD')`;
}

export type ReportWindow = { from?: Date; to?: Date };

export function windowClause(sql: ReadSql, w: ReportWindow) {
  return sql`${w.from ? sql`and c.created_at >= ${w.from.toISOString()}::timestamptz` : sql``}
    ${w.to ? sql`and c.created_at < ${w.to.toISOString()}::timestamptz` : sql``}`;
}
