import { describe, expect, it } from 'vitest';
import { convertMinor, convertTotals, FxHistory, rateFromText, roundHalfUp, utcDayOf, type FxDaySet } from '../src/fx/convert.js';

/** Every expected value below was worked out by hand; the arithmetic is in the comment beside it. */

const set = (day: string, base: string, rates: Record<string, string>): FxDaySet => ({
  day,
  base,
  rates: new Map(Object.entries(rates).map(([c, r]) => [c, rateFromText(r)])),
});

const converted = (minor: bigint, rateDay: string | null) => ({ ok: true, minor, rateDay });

describe('roundHalfUp', () => {
  it('rounds halves up on the magnitude and everything else to nearest', () => {
    expect(roundHalfUp(5n, 2n)).toBe(3n); // 2.5
    expect(roundHalfUp(3n, 2n)).toBe(2n); // 1.5
    expect(roundHalfUp(5n, 4n)).toBe(1n); // 1.25
    expect(roundHalfUp(7n, 4n)).toBe(2n); // 1.75
    expect(roundHalfUp(-5n, 2n)).toBe(-3n); // -2.5
    expect(roundHalfUp(0n, 7n)).toBe(0n);
  });
});

describe('convertMinor', () => {
  const history = new FxHistory([
    set('2026-03-01', 'USD', { EUR: '0.90', JPY: '150', KWD: '0.3075' }),
    set('2026-03-03', 'USD', { EUR: '0.95' }),
    set('2026-03-10', 'USD', { EUR: '0.92', JPY: '151.3' }),
  ]);

  it('uses the rate of the day itself', () => {
    // 10.00 USD × 0.95 = 9.50 EUR
    expect(convertMinor(1000n, 'USD', 'EUR', '2026-03-03', history)).toEqual(converted(950n, '2026-03-03'));
    // 10.00 USD × 0.92 = 9.20 EUR; 10.00 EUR / 0.92 = 10.869565… USD → 10.87
    expect(convertMinor(1000n, 'USD', 'EUR', '2026-03-10', history)).toEqual(converted(920n, '2026-03-10'));
    expect(convertMinor(1000n, 'EUR', 'USD', '2026-03-10', history)).toEqual(converted(1087n, '2026-03-10'));
  });

  it('falls back to the latest earlier day that has a rate', () => {
    // 2 March has no set: 1 March's 0.90 → 9.00 EUR
    expect(convertMinor(1000n, 'USD', 'EUR', '2026-03-02', history)).toEqual(converted(900n, '2026-03-01'));
    // 5 March: 3 March's 0.95, not 10 March's later 0.92
    expect(convertMinor(1000n, 'USD', 'EUR', '2026-03-05', history)).toEqual(converted(950n, '2026-03-03'));
    // 3 March prices EUR but not JPY: JPY falls back to 1 March (150): 0.10 USD → 15 JPY
    expect(convertMinor(10n, 'USD', 'JPY', '2026-03-03', history)).toEqual(converted(15n, '2026-03-01'));
  });

  it('does not convert when no day at or before has a rate, never guessing from a later one', () => {
    expect(convertMinor(1000n, 'USD', 'EUR', '2026-02-28', history)).toEqual({ ok: false });
    expect(convertMinor(1000n, 'GBP', 'USD', '2026-03-10', history)).toEqual({ ok: false });
    expect(convertMinor(1000n, 'USD', 'EUR', '2026-02-28', new FxHistory([]))).toEqual({ ok: false });
  });

  it('needs no rate from a currency to itself', () => {
    expect(convertMinor(1234n, 'JPY', 'JPY', '1999-01-01', new FxHistory([]))).toEqual(converted(1234n, null));
  });

  it('rounds half up to JPY, which has no minor unit', () => {
    // rate 150 on 1 March: 0.01 USD = 1.5 JPY → 2; 0.03 USD = 4.5 → 5; 10.01 USD = 1501.5 → 1502
    expect(convertMinor(1n, 'USD', 'JPY', '2026-03-01', history)).toEqual(converted(2n, '2026-03-01'));
    expect(convertMinor(3n, 'USD', 'JPY', '2026-03-01', history)).toEqual(converted(5n, '2026-03-01'));
    expect(convertMinor(1001n, 'USD', 'JPY', '2026-03-01', history)).toEqual(converted(1502n, '2026-03-01'));
    // 75 JPY / 150 = 0.50 USD exactly; 1000 JPY / 151.3 = 6.609385… USD → 6.61
    expect(convertMinor(75n, 'JPY', 'USD', '2026-03-01', history)).toEqual(converted(50n, '2026-03-01'));
    expect(convertMinor(1000n, 'JPY', 'USD', '2026-03-10', history)).toEqual(converted(661n, '2026-03-10'));
  });

  it('rounds half up to KWD fils (3 decimals)', () => {
    // 0.20 USD × 0.3075 = 0.0615 KWD = 61.5 fils → 62; 0.01 USD = 3.075 fils → 3
    expect(convertMinor(20n, 'USD', 'KWD', '2026-03-01', history)).toEqual(converted(62n, '2026-03-01'));
    expect(convertMinor(1n, 'USD', 'KWD', '2026-03-01', history)).toEqual(converted(3n, '2026-03-01'));
    // 1.000 KWD / 0.3075 = 3.252032… USD → 3.25
    expect(convertMinor(1000n, 'KWD', 'USD', '2026-03-01', history)).toEqual(converted(325n, '2026-03-01'));
  });

  it('rounds half up to USD cents', () => {
    const eighty = new FxHistory([set('2026-01-01', 'USD', { EUR: '0.8' })]);
    // 0.02 EUR / 0.8 = 0.025 USD = 2.5 cents → 3; 0.01 EUR = 1.25 cents → 1; -0.02 EUR → -3
    expect(convertMinor(2n, 'EUR', 'USD', '2026-01-01', eighty)).toEqual(converted(3n, '2026-01-01'));
    expect(convertMinor(1n, 'EUR', 'USD', '2026-01-01', eighty)).toEqual(converted(1n, '2026-01-01'));
    expect(convertMinor(-2n, 'EUR', 'USD', '2026-01-01', eighty)).toEqual(converted(-3n, '2026-01-01'));
  });

  it('converts between two non-base currencies through the base with one rounding', () => {
    // 10.00 EUR / 0.92 × 151.3 = 1644.565… JPY → 1645
    expect(convertMinor(1000n, 'EUR', 'JPY', '2026-03-10', history)).toEqual(converted(1645n, '2026-03-10'));
    // 0.01 EUR / 0.8 × 300 = 3.75 JPY → 4. Rounding to USD cents first would give 1.25 → 1 cent → 3 JPY.
    const cross = new FxHistory([set('2026-01-01', 'USD', { EUR: '0.8', JPY: '300' })]);
    expect(convertMinor(1n, 'EUR', 'JPY', '2026-01-01', cross)).toEqual(converted(4n, '2026-01-01'));
    // 1000 JPY / 151.3 × 0.92 = 6.0806… EUR → 6.08
    expect(convertMinor(1000n, 'JPY', 'EUR', '2026-03-10', history)).toEqual(converted(608n, '2026-03-10'));
  });

  it('takes both currencies from one day, whatever base that day uses', () => {
    const mixed = new FxHistory([set('2026-04-01', 'USD', { EUR: '0.90' }), set('2026-04-02', 'EUR', { USD: '1.10' })]);
    // 2 April prices USD against EUR: 10.00 USD / 1.10 = 9.0909… EUR → 9.09
    expect(convertMinor(1000n, 'USD', 'EUR', '2026-04-02', mixed)).toEqual(converted(909n, '2026-04-02'));
    expect(convertMinor(1000n, 'USD', 'EUR', '2026-04-01', mixed)).toEqual(converted(900n, '2026-04-01'));
  });
});

describe('convertTotals', () => {
  const history = new FxHistory([set('2026-03-01', 'USD', { EUR: '0.8', JPY: '150' })]);

  it('rounds each conversion before summing and lists what it could not convert per currency', () => {
    const totals = convertTotals(
      [
        { day: '2026-03-01', currency: 'EUR', amountMinor: 2n }, // 2.5 cents → 3
        { day: '2026-03-02', currency: 'EUR', amountMinor: 2n }, // 1 March's rate → 3
        { day: '2026-03-05', currency: 'USD', amountMinor: 1000n }, // already USD
        { day: '2026-03-01', currency: 'JPY', amountMinor: 75n }, // 75 / 150 = 0.50
        { day: '2026-02-27', currency: 'EUR', amountMinor: 500n }, // before any rate
        { day: '2026-03-01', currency: 'GBP', amountMinor: 700n }, // never priced
        { day: '2026-03-02', currency: 'GBP', amountMinor: 1n },
      ],
      'USD',
      history,
    );
    // 3 + 3 + 1000 + 50; the two EUR cents summed first would have given 4 / 0.8 = 5, not 6
    expect(totals).toEqual({ currency: 'USD', convertedTotalMinor: 1056n, unconverted: { EUR: 500n, GBP: 701n } });
  });

  it('is zero with nothing unconverted for no rows', () => {
    expect(convertTotals([], 'EUR', history)).toEqual({ currency: 'EUR', convertedTotalMinor: 0n, unconverted: {} });
  });
});

describe('utcDayOf', () => {
  it('takes the UTC day, not the local one', () => {
    expect(utcDayOf(new Date('2026-03-01T23:59:59.999-05:00'))).toBe('2026-03-02');
    expect(utcDayOf(new Date('2026-03-01T00:00:00Z'))).toBe('2026-03-01');
  });
});
