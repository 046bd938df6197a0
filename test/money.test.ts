import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { currencyExponent, formatMoney, isCurrency, parseMoney } from '../src/money.js';

describe('money as integer minor units', () => {
  it('round-trips every amount a currency can express', () => {
    fc.assert(
      fc.property(fc.constantFrom('USD', 'EUR', 'JPY', 'KWD', 'GBP', 'CLP'), fc.bigInt({ min: 0n, max: 10n ** 15n }), (currency, minor) => {
        const text = formatMoney(minor, currency);
        const parsed = parseMoney(text, currency);
        expect(parsed).toEqual({ ok: true, minor });
      }),
    );
  });

  it('accepts fewer decimals than the currency has, and never more', () => {
    fc.assert(
      fc.property(fc.nat({ max: 1_000_000 }), fc.integer({ min: 0, max: 6 }), fc.constantFrom('USD', 'JPY', 'KWD'), (whole, decimals, currency) => {
        const fraction = '7'.repeat(decimals);
        const text = decimals > 0 ? `${whole}.${fraction}` : String(whole);
        const parsed = parseMoney(text, currency);
        expect(parsed.ok).toBe(decimals <= currencyExponent(currency));
        if (parsed.ok) {
          const exp = currencyExponent(currency);
          expect(parsed.minor).toBe(BigInt(whole) * 10n ** BigInt(exp) + BigInt(fraction.padEnd(exp, '0') || '0'));
        }
      }),
    );
  });

  it('refuses anything that is not a plain non-negative decimal', () => {
    for (const bad of ['-1.00', '1e3', '1E2', 'NaN', 'Infinity', '0x10', ' 1.00', '1.00 ', '1,00', '', '.5', '5.', '+1', '1..0', '١٢']) {
      expect(parseMoney(bad, 'USD').ok, bad).toBe(false);
    }
    fc.assert(
      fc.property(fc.string(), (s) => {
        const parsed = parseMoney(s, 'USD');
        if (parsed.ok) expect(s).toMatch(/^\d+(\.\d{1,2})?$/);
      }),
    );
  });

  it('knows ISO 4217 codes and their exponents', () => {
    expect(isCurrency('USD')).toBe(true);
    expect(isCurrency('usd')).toBe(false);
    expect(isCurrency('XXY')).toBe(false);
    expect(currencyExponent('JPY')).toBe(0);
    expect(currencyExponent('KWD')).toBe(3);
    expect(formatMoney(250n, 'USD')).toBe('2.50');
    expect(formatMoney(5n, 'USD')).toBe('0.05');
    expect(formatMoney(1500n, 'JPY')).toBe('1500');
  });
});
