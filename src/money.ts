/**
 * Money crosses the API as a decimal string ("2.50") and lives as integer minor units beside an
 * ISO 4217 code. No binary float ever touches an amount: parsing is done on the digits.
 */

const currencies = new Set(Intl.supportedValuesOf('currency'));
const exponentCache = new Map<string, number>();

/** Largest accepted amount in minor units: far above any payout, far below bigint/JSON trouble. */
export const MAX_MINOR = 10n ** 15n;

export function isCurrency(code: string): boolean {
  return /^[A-Z]{3}$/.test(code) && currencies.has(code);
}

/** Digits after the decimal point for a currency (JPY 0, USD 2, KWD 3), from the runtime's ICU data. */
export function currencyExponent(code: string): number {
  let exp = exponentCache.get(code);
  if (exp === undefined) {
    exp = new Intl.NumberFormat('en', { style: 'currency', currency: code }).resolvedOptions().maximumFractionDigits ?? 2;
    exponentCache.set(code, exp);
  }
  return exp;
}

export type MoneyParse = { ok: true; minor: bigint } | { ok: false; message: string };

export function parseMoney(text: string, currency: string): MoneyParse {
  const match = /^(\d{1,16})(?:\.(\d{1,18}))?$/.exec(text);
  if (!match) return { ok: false, message: 'must be a non-negative decimal string such as "2.50"' };
  const [, whole = '', fraction = ''] = match;
  const exponent = currencyExponent(currency);
  if (fraction.length > exponent) {
    return { ok: false, message: `${currency} has ${exponent} decimal place${exponent === 1 ? '' : 's'}; got ${fraction.length}` };
  }
  const minor = BigInt(whole) * 10n ** BigInt(exponent) + BigInt(fraction.padEnd(exponent, '0') || '0');
  if (minor > MAX_MINOR) return { ok: false, message: 'amount is too large' };
  return { ok: true, minor };
}

export function formatMoney(minor: bigint | number, currency: string): string {
  const value = BigInt(minor);
  const exponent = currencyExponent(currency);
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(exponent + 1, '0');
  const whole = digits.slice(0, digits.length - exponent);
  const fraction = digits.slice(digits.length - exponent);
  return `${negative ? '-' : ''}${whole}${exponent > 0 ? `.${fraction}` : ''}`;
}
