import { z } from 'zod';
import type { Sql } from '../db/database.js';
import { ApiError } from '../errors.js';
import { strictIsoTime } from '../http/utc-day.js';
import { wilsonInterval, type Interval } from '../stats/wilson.js';
import { RULES_BY_CODE, RULES } from './registry.js';

/**
 * `GET /v1/fraud/rules/quality`: analysts' decisions as labels. For each reason code, over the
 * conversions created in the window: how often it fired, how many of those an analyst decided, how
 * many were rejected (the rule confirmed) or approved (the rule overturned), and the precision
 * confirmed / reviewed with a 95 % Wilson interval. It is how defaults get better after launch: a rule
 * analysts keep overturning costs review time and delays honest publishers' payouts.
 *
 * Precision is measured on what analysts saw, which is the flagged conversions (the queue): a rule's
 * hits on conversions that were rejected outright or stayed below the flag line are counted (`fired`,
 * `autoRejected`, `belowFlag`) but carry no label. A conversion that fired several rules labels each.
 */

/** Fewer decisions than this say too little about a rule to call it out either way. */
export const MIN_REVIEWS = 10;
/** Called out when even the interval's upper bound is below this: analysts overturn most of its hits. */
export const LOW_PRECISION = 0.5;
export const DEFAULT_WINDOW_DAYS = 30;
export const MAX_WINDOW_DAYS = 366;
const DAY_MS = 86_400_000;

export const qualityQuery = z
  .object({
    from: strictIsoTime.optional().describe('start of the window (conversions created at or after it); default `to` minus 30 days'),
    to: strictIsoTime.optional().describe('end of the window (exclusive); default now'),
  })
  .strict();

export type QualityQuery = z.infer<typeof qualityQuery>;

export type Assessment = 'too_few_reviews' | 'low_precision' | 'ok';

export type RuleQuality = {
  code: string;
  /** null for reason codes outside the scoring rules (over_cap, a reconciler's code). */
  category: string | null;
  fired: number;
  reviewed: number;
  confirmed: number;
  overturned: number;
  awaitingReview: number;
  autoRejected: number;
  belowFlag: number;
  precision: number | null;
  interval: Interval | null;
  assessment: Assessment;
};

type Row = { code: string; fired: number; confirmed: number; overturned: number; awaiting: number; auto_rejected: number; below_flag: number };

export function qualityWindow(q: QualityQuery, now: Date): { from: Date; to: Date } {
  const to = q.to ?? now;
  const from = q.from ?? new Date(to.getTime() - DEFAULT_WINDOW_DAYS * DAY_MS);
  if (from.getTime() >= to.getTime()) {
    throw new ApiError('invalid_request', '`from` must be before `to`.', { details: [{ path: 'from', message: 'must be before to' }] });
  }
  if (to.getTime() - from.getTime() > MAX_WINDOW_DAYS * DAY_MS) {
    throw new ApiError('invalid_request', `The window is at most ${MAX_WINDOW_DAYS} days.`, {
      details: [{ path: 'from', message: `must be at most ${MAX_WINDOW_DAYS} days before to` }],
    });
  }
  return { from, to };
}

export async function ruleQuality(sql: Sql, window: { from: Date; to: Date }) {
  // A review sets decision (accepted on approve, rejected on reject) and review_state; review_state
  // is the label, decision tells the unreviewed hits apart.
  const rows = await sql<Row[]>`
    select r.code,
           count(*)::int as fired,
           count(*) filter (where c.review_state = 'rejected')::int as confirmed,
           count(*) filter (where c.review_state = 'approved')::int as overturned,
           count(*) filter (where c.review_state = 'none' and c.decision = 'flagged')::int as awaiting,
           count(*) filter (where c.review_state = 'none' and c.decision = 'rejected')::int as auto_rejected,
           count(*) filter (where c.review_state = 'none' and c.decision = 'accepted')::int as below_flag
      from conversions c cross join lateral unnest(c.reasons) as r(code)
     where c.created_at >= ${window.from} and c.created_at < ${window.to}
     group by r.code`;
  const byCode = new Map(rows.map((r) => [r.code, r]));
  // Every scoring rule is listed, fired or not (a rule that never fires is worth knowing about too),
  // then any other code that appeared, alphabetically.
  const codes = [...RULES.map((r) => r.code), ...[...byCode.keys()].filter((c) => !RULES_BY_CODE.has(c)).sort()];
  const [totals] = await sql<{ conversions: number; reviewed: number }[]>`
    select count(*)::int as conversions, count(*) filter (where review_state <> 'none')::int as reviewed
      from conversions where created_at >= ${window.from} and created_at < ${window.to}`;
  return {
    from: window.from.toISOString(),
    to: window.to.toISOString(),
    minReviews: MIN_REVIEWS,
    lowPrecision: LOW_PRECISION,
    totals: totals ?? { conversions: 0, reviewed: 0 },
    rules: codes.map((code) => qualityOf(code, byCode.get(code))),
  };
}

function qualityOf(code: string, row: Row | undefined): RuleQuality {
  const confirmed = row?.confirmed ?? 0;
  const reviewed = confirmed + (row?.overturned ?? 0);
  const interval = wilsonInterval(confirmed, reviewed);
  return {
    code,
    category: RULES_BY_CODE.get(code)?.category ?? null,
    fired: row?.fired ?? 0,
    reviewed,
    confirmed,
    overturned: row?.overturned ?? 0,
    awaitingReview: row?.awaiting ?? 0,
    autoRejected: row?.auto_rejected ?? 0,
    belowFlag: row?.below_flag ?? 0,
    precision: reviewed === 0 ? null : round4(confirmed / reviewed),
    interval: interval && { low: round4(interval.low), high: round4(interval.high) },
    assessment: assess(reviewed, interval),
  };
}

export function assess(reviewed: number, interval: Interval | null): Assessment {
  if (reviewed < MIN_REVIEWS || !interval) return 'too_few_reviews';
  return interval.high < LOW_PRECISION ? 'low_precision' : 'ok';
}

const round4 = (x: number) => Math.round(x * 10_000) / 10_000;
