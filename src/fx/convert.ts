import { currencyExponent, isCurrency } from '../money.js';

/**
 * Converting amounts to a reporting currency (CONTRACT §10), in exact rational arithmetic on bigints.
 *
 * A day's set says "1 base = r(X) units of X", r(X) = mantissa / 10^scale, r(base) = 1. An amount of
 * `a` minor units of A is a / 10^eA units of A, a / 10^eA / r(A) of the base, and in minor units of T:
 *
 *   a · 10^eT · r(T) / (10^eA · r(A))  =  (a · mT · 10^(sA + eT)) / (mA · 10^(sT + eA))
 *
 * computed as one fraction and rounded once, half up (half away from zero for a negative amount), to
 * T's minor unit. A and T are taken from the same day's set, so two bases are never mixed: the rate
 * used for a conversion on day D is that of the latest day at or before D whose set prices both A
 * and T. When there is none, the amount is not converted and is reported per currency as such.
 */

export type Rate = { mantissa: bigint; scale: number };
export type FxDaySet = { day: string; base: string; rates: ReadonlyMap<string, Rate> };

export type Conversion = { ok: true; minor: bigint; rateDay: string | null } | { ok: false };

const pow10 = (n: number): bigint => 10n ** BigInt(n);

/** Half up on the magnitude: 0.5 → 1, -0.5 → -1; den must be positive. */
export function roundHalfUp(num: bigint, den: bigint): bigint {
  if (num < 0n) return -roundHalfUp(-num, den);
  return (2n * num + den) / (2n * den);
}

/** "151.30" → 15130 / 10^2, digits exactly as written. The caller has validated the text. */
export function rateFromText(text: string): Rate {
  const [whole = '', fraction = ''] = text.split('.');
  return { mantissa: BigInt(whole + fraction), scale: fraction.length };
}

export class FxHistory {
  /** Ascending by day; `YYYY-MM-DD` strings sort chronologically. */
  private readonly days: FxDaySet[];
  private readonly memo = new Map<string, FxDaySet | null>();

  constructor(days: Iterable<FxDaySet>) {
    this.days = [...days].sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
  }

  /** The latest set at or before `day` that prices both currencies. */
  setFor(from: string, to: string, day: string): FxDaySet | undefined {
    const key = `${from}|${to}|${day}`;
    let found = this.memo.get(key);
    if (found === undefined) {
      found = null;
      for (let i = this.lastIndexAtOrBefore(day); i >= 0; i--) {
        const set = this.days[i] as FxDaySet;
        if (prices(set, from) && prices(set, to)) {
          found = set;
          break;
        }
      }
      this.memo.set(key, found);
    }
    return found ?? undefined;
  }

  private lastIndexAtOrBefore(day: string): number {
    let lo = 0;
    let hi = this.days.length - 1;
    let best = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if ((this.days[mid] as FxDaySet).day <= day) {
        best = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    return best;
  }
}

function prices(set: FxDaySet, currency: string): boolean {
  return currency === set.base || set.rates.has(currency);
}

function rateIn(set: FxDaySet, currency: string): Rate {
  return currency === set.base ? { mantissa: 1n, scale: 0 } : (set.rates.get(currency) as Rate);
}

/** One amount, minor units of `from`, to minor units of `to` on UTC day `day` (YYYY-MM-DD). */
export function convertMinor(amountMinor: bigint, from: string, to: string, day: string, history: FxHistory): Conversion {
  if (!isCurrency(from) || !isCurrency(to)) return { ok: false };
  if (from === to) return { ok: true, minor: amountMinor, rateDay: null };
  const set = history.setFor(from, to, day);
  if (!set) return { ok: false };
  const a = rateIn(set, from);
  const t = rateIn(set, to);
  const num = amountMinor * t.mantissa * pow10(a.scale + currencyExponent(to));
  const den = a.mantissa * pow10(t.scale + currencyExponent(from));
  return { ok: true, minor: roundHalfUp(num, den), rateDay: set.day };
}

export type AmountOnDay = { day: string; currency: string; amountMinor: bigint };

export type ConvertedTotals = {
  currency: string;
  /** Sum of every convertible amount, each rounded on its own before summing. */
  convertedTotalMinor: bigint;
  /** Per source currency, the minor units that had no usable rate at or before their day. */
  unconverted: Record<string, bigint>;
};

/**
 * Totals in `target` for one row per conversion. Rows must not be pre-summed per day and currency:
 * rounding is per conversion, and a sum rounds once where its conversions would each have rounded.
 */
export function convertTotals(rows: Iterable<AmountOnDay>, target: string, history: FxHistory): ConvertedTotals {
  let convertedTotalMinor = 0n;
  const unconverted: Record<string, bigint> = {};
  for (const row of rows) {
    const converted = convertMinor(row.amountMinor, row.currency, target, row.day, history);
    if (converted.ok) convertedTotalMinor += converted.minor;
    else unconverted[row.currency] = (unconverted[row.currency] ?? 0n) + row.amountMinor;
  }
  return { currency: target, convertedTotalMinor, unconverted };
}

/** The UTC day a conversion belongs to, as the rates are keyed. */
export function utcDayOf(at: Date): string {
  return at.toISOString().slice(0, 10);
}
