import { recordAudit, type Actor } from '../audit/audit-log.js';
import type { Sql, TxSql } from '../db/database.js';
import type { FieldIssue } from '../errors.js';
import { isCurrency } from '../money.js';
import { FxHistory, rateFromText, type FxDaySet } from './convert.js';

/**
 * The daily rate sets (tables fx_rate_days, fx_rates; this module is their only writer). A PUT
 * replaces the day's whole set, base included: a currency left out of the new set no longer has a
 * rate that day, and conversions on that day fall back to an earlier day for it.
 */

/** Up to 12 digits before and 12 after the point: beyond any real rate, far inside exact bigint arithmetic. */
const RATE_TEXT = /^\d{1,12}(?:\.\d{1,12})?$/;
export const MAX_RATES_PER_DAY = 300;

export type FxRateSet = { date: string; base: string; rates: Record<string, string>; updatedAt: string };

export type FxRatesInput = { base: string; rates: Record<string, string> };

/** Every problem with a body, each at its own path, so one round trip fixes them all. */
export function checkRates(input: FxRatesInput): FieldIssue[] {
  const issues: FieldIssue[] = [];
  if (!isCurrency(input.base)) issues.push({ path: 'base', message: 'must be an ISO 4217 currency code such as USD' });
  const entries = Object.entries(input.rates);
  if (entries.length === 0) issues.push({ path: 'rates', message: 'must name at least one currency' });
  if (entries.length > MAX_RATES_PER_DAY) issues.push({ path: 'rates', message: `must name at most ${MAX_RATES_PER_DAY} currencies` });
  for (const [currency, rate] of entries) {
    const path = `rates.${currency}`;
    if (!isCurrency(currency)) issues.push({ path, message: 'is not an ISO 4217 currency code' });
    else if (currency === input.base) issues.push({ path, message: 'is the base currency, whose rate is 1 by definition' });
    if (typeof rate !== 'string' || !RATE_TEXT.test(rate)) {
      issues.push({ path, message: 'must be a decimal string such as "0.92" (at most 12 digits before and after the point)' });
    } else if (rateFromText(rate).mantissa === 0n) {
      issues.push({ path, message: 'must be greater than zero' });
    }
  }
  return issues;
}

type DayRow = { day: string; base: string; updated_at: Date };
type RateRow = { day: string; currency: string; rate: string };

async function readSets(sql: Sql | TxSql, days: DayRow[]): Promise<FxRateSet[]> {
  if (days.length === 0) return [];
  const rates = await sql<RateRow[]>`
    select day::text as day, currency, rate::text as rate from fx_rates
    where day = any(${days.map((d) => d.day)}::date[]) order by day, currency`;
  const byDay = new Map<string, Record<string, string>>();
  for (const r of rates) byDay.set(r.day, { ...byDay.get(r.day), [r.currency]: r.rate });
  return days.map((d) => ({ date: d.day, base: d.base, rates: byDay.get(d.day) ?? {}, updatedAt: d.updated_at.toISOString() }));
}

export async function getRates(sql: Sql | TxSql, day: string): Promise<FxRateSet | undefined> {
  const days = await sql<DayRow[]>`select day::text as day, base, updated_at from fx_rate_days where day = ${day}::date`;
  return (await readSets(sql, days))[0];
}

/** Stores the day's set in place of any earlier one, with its audit row, in one transaction. */
export async function putRates(txSql: Sql, actor: Actor, day: string, input: FxRatesInput): Promise<{ set: FxRateSet; created: boolean }> {
  return txSql.begin(async (tx: TxSql) => {
    const inserted = await tx`insert into fx_rate_days (day, base) values (${day}::date, ${input.base})
      on conflict (day) do nothing returning day`;
    const created = inserted.length > 0;
    // Serialises PUTs of one day, so `before` is exactly the set this one replaces.
    await tx`select 1 from fx_rate_days where day = ${day}::date for update`;
    const before = created ? null : await getRates(tx, day);
    await tx`update fx_rate_days set base = ${input.base}, updated_at = now() where day = ${day}::date`;
    await tx`delete from fx_rates where day = ${day}::date`;
    const currencies = Object.keys(input.rates);
    await tx`insert into fx_rates (day, currency, rate)
      select ${day}::date, c, r::numeric from unnest(${currencies}::text[], ${currencies.map((c) => input.rates[c] as string)}::text[]) as t (c, r)`;
    const set = (await getRates(tx, day)) as FxRateSet;
    await recordAudit(tx, { actor, action: created ? 'create' : 'update', entity: 'fx_rates', entityId: day, before, after: set });
    return { set, created };
  });
}

export type RangeQuery = { from?: string; to?: string; limit: number; before?: string };

/** Day sets newest first, `from` and `to` inclusive days; `before` is the paging position (exclusive). */
export async function listRates(sql: Sql, q: RangeQuery): Promise<{ items: FxRateSet[]; nextCursor: string | null }> {
  const where = [
    q.from && sql`day >= ${q.from}::date`,
    q.to && sql`day <= ${q.to}::date`,
    q.before && sql`day < ${q.before}::date`,
  ].filter((c) => !!c);
  const clause = where.reduce((acc, c, i) => (i === 0 ? sql`where ${c}` : sql`${acc} and ${c}`), sql``);
  const days = await sql<DayRow[]>`
    select day::text as day, base, updated_at from fx_rate_days ${clause} order by day desc limit ${q.limit + 1}`;
  const page = days.slice(0, q.limit);
  const items = await readSets(sql, page);
  return { items, nextCursor: days.length > q.limit ? (page[page.length - 1]?.day ?? null) : null };
}

/**
 * Every set up to `throughDay` (all when absent), for the reports: a conversion on the first day of a
 * report may need a rate from long before it. Years of daily sets are a few thousand rows.
 */
export async function loadFxHistory(sql: Sql, throughDay?: string): Promise<FxHistory> {
  const rows = await sql<(RateRow & { base: string })[]>`
    select d.day::text as day, d.base, r.currency, r.rate::text as rate
    from fx_rate_days d join fx_rates r on r.day = d.day
    ${throughDay ? sql`where d.day <= ${throughDay}::date` : sql``}
    order by d.day`;
  const sets = new Map<string, FxDaySet & { rates: Map<string, ReturnType<typeof rateFromText>> }>();
  for (const r of rows) {
    let set = sets.get(r.day);
    if (!set) sets.set(r.day, (set = { day: r.day, base: r.base.trim(), rates: new Map() }));
    set.rates.set(r.currency.trim(), rateFromText(r.rate));
  }
  return new FxHistory(sets.values());
}
