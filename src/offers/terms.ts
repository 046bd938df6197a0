import { z } from 'zod';
import type { FieldIssue } from '../errors.js';
import { parseMoney } from '../money.js';

/**
 * An offer's commercial terms beyond its own payout (CONTRACT §10): goals that price events other
 * than `conversion`, and caps on what is accepted per UTC day or month. The admin API validates them
 * with these schemas and stores them as sent; the catalog turns them into the typed form below once
 * per load, so the intake never parses a decimal string twice.
 */

export const EVENT_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const PERCENT = /^\d{1,3}(?:\.\d{1,6})?$/;

const decimal = z.string().max(40).regex(/^\d{1,16}(?:\.\d{1,18})?$/, 'must be a non-negative decimal string such as "2.50"');
const percentPrice = z
  .object({ percent: z.string().regex(PERCENT, 'must be a decimal string such as "30" or "12.5"').refine((p) => Number(p) <= 100, 'must be at most 100') })
  .strict();
const price = z.union([decimal, percentPrice], { error: 'must be a decimal string such as "20.00" or {"percent": "30"}' });

export const goalsSchema = z
  .record(
    z.string().regex(EVENT_NAME, 'event names are 1-64 characters of A-Z a-z 0-9 _ . -').refine((e) => e !== 'conversion', '"conversion" always uses the offer\'s own payout and revenue'),
    z.object({ payout: price.optional(), revenue: price.optional(), multiple: z.boolean().optional() }).strict(),
  )
  .refine((g) => Object.keys(g).length <= 50, 'at most 50 goals');

export const capsSchema = z
  .array(
    z
      .object({
        period: z.enum(['day', 'month']),
        per: z.enum(['offer', 'publisher']).optional(),
        event: z.string().regex(EVENT_NAME, 'must be an event name').optional(),
        conversions: z.number().int().min(1).max(1_000_000_000).optional(),
        payout: decimal.optional(),
        action: z.enum(['reject', 'flag']).optional(),
      })
      .strict()
      .refine((c) => c.conversions !== undefined || c.payout !== undefined, 'each cap needs conversions, payout or both'),
  )
  .max(20);

export type GoalsInput = z.infer<typeof goalsSchema>;
export type CapsInput = z.infer<typeof capsSchema>;

export type Price = { kind: 'flat'; minor: bigint } | { kind: 'percent'; percent: string };
export type Goal = { payout: Price | undefined; revenue: Price | undefined; multiple: boolean };
export type Cap = {
  /** Names the counter: limits may change without resetting what a period has used. */
  key: string;
  period: 'day' | 'month';
  per: 'offer' | 'publisher';
  event: string | undefined;
  conversions: number | undefined;
  /** In `currency`, the offer's. */
  payoutMinor: bigint | undefined;
  currency: string;
  action: 'reject' | 'flag';
};

/** Flat prices must fit the offer's currency; returns the problems, path-prefixed. */
export function checkTerms(goals: GoalsInput | undefined, caps: CapsInput | undefined, currency: string): FieldIssue[] {
  const issues: FieldIssue[] = [];
  for (const [event, goal] of Object.entries(goals ?? {})) {
    for (const side of ['payout', 'revenue'] as const) {
      const p = goal[side];
      if (typeof p !== 'string') continue;
      const parsed = parseMoney(p, currency);
      if (!parsed.ok) issues.push({ path: `goals.${event}.${side}`, message: parsed.message });
    }
  }
  (caps ?? []).forEach((cap, i) => {
    if (cap.payout === undefined) return;
    const parsed = parseMoney(cap.payout, currency);
    if (!parsed.ok) issues.push({ path: `caps.${i}.payout`, message: parsed.message });
  });
  const keys = (caps ?? []).map(capKey);
  keys.forEach((k, i) => {
    if (keys.indexOf(k) !== i) issues.push({ path: `caps.${i}`, message: 'repeats the period, per and event of an earlier cap' });
  });
  return issues;
}

function capKey(cap: CapsInput[number]): string {
  return `${cap.period}:${cap.per ?? 'offer'}:${cap.event ?? '*'}`;
}

function toPrice(p: string | { percent: string } | undefined, currency: string): Price | undefined {
  if (p === undefined) return undefined;
  if (typeof p !== 'string') return { kind: 'percent', percent: p.percent };
  const parsed = parseMoney(p, currency);
  // Validated on write; a stored value that no longer parses fails closed at the intake, not here.
  return parsed.ok ? { kind: 'flat', minor: parsed.minor } : undefined;
}

/** Stored JSON to the typed form, with a null prototype so an event named like a builtin is just a name. */
export function loadGoals(stored: unknown, currency: string): Record<string, Goal> {
  const goals: Record<string, Goal> = Object.create(null);
  if (!stored || typeof stored !== 'object') return goals;
  for (const [event, raw] of Object.entries(stored as GoalsInput)) {
    goals[event] = { payout: toPrice(raw.payout, currency), revenue: toPrice(raw.revenue, currency), multiple: raw.multiple === true };
  }
  return goals;
}

export function loadCaps(stored: unknown, currency: string): Cap[] {
  if (!Array.isArray(stored)) return [];
  return (stored as CapsInput).map((c) => {
    const payout = c.payout === undefined ? undefined : parseMoney(c.payout, currency);
    return {
      key: capKey(c),
      period: c.period,
      per: c.per ?? 'offer',
      event: c.event,
      conversions: c.conversions,
      payoutMinor: payout?.ok ? payout.minor : undefined,
      currency,
      action: c.action ?? 'reject',
    };
  });
}

/** `percent` % of `amountMinor`, rounded half up to a whole minor unit (integer arithmetic only). */
export function percentOf(amountMinor: bigint, percent: string): bigint {
  const [whole = '0', fraction = ''] = percent.split('.');
  const scaled = BigInt(whole + fraction);
  const denominator = 100n * 10n ** BigInt(fraction.length);
  return (2n * amountMinor * scaled + denominator) / (2n * denominator);
}
