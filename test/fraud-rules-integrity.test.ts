import { describe, expect, it } from 'vitest';
import { multipleConversionsPerClick, overDailyCap, payoutMismatch } from '../src/fraud/rules/integrity.js';
import { counts, evaluate, scoreInput, testOffer } from './helpers/fraud.js';

describe('payout_mismatch', () => {
  const sent = (payoutMinor: bigint, currency = 'USD') => scoreInput({ payoutMinor, currency, payoutSent: true });

  it("fires on any difference from the offer's payout by default", () => {
    expect(evaluate(payoutMismatch, sent(250n))).toMatchObject({ evaluated: true, fired: false, value: '2.50 USD', threshold: '2.50 USD' });
    expect(evaluate(payoutMismatch, sent(251n))).toMatchObject({ fired: true, value: '2.51 USD', note: "above the offer's payout" });
    expect(evaluate(payoutMismatch, sent(200n))).toMatchObject({ fired: true, note: "below the offer's payout" });
  });

  it('is worth its own points for a small difference and largePoints (40) from 50 % away, either way', () => {
    // 50 % of 2.50 is 1.25: 3.74 and 1.26 are small, 3.75 and 1.25 are large.
    for (const minor of [374n, 126n, 251n]) expect(evaluate(payoutMismatch, sent(minor)).points, String(minor)).toBeUndefined();
    expect(evaluate(payoutMismatch, sent(375n))).toMatchObject({ fired: true, points: 40, note: "above the offer's payout by 50% or more: a large mismatch" });
    expect(evaluate(payoutMismatch, sent(125n))).toMatchObject({ fired: true, points: 40, note: "below the offer's payout by 50% or more: a large mismatch" });
    expect(evaluate(payoutMismatch, sent(2500n))).toMatchObject({ points: 40, value: '25.00 USD' });
    expect(evaluate(payoutMismatch, sent(375n), { settings: { largePct: 100, largePoints: 60 } }).points).toBeUndefined();
    expect(evaluate(payoutMismatch, sent(500n), { settings: { largePct: 100, largePoints: 60 } }).points).toBe(60);
  });

  it('a large difference inside the tolerance is no mismatch at all', () => {
    expect(evaluate(payoutMismatch, sent(500n), { settings: { tolerancePct: 200 } })).toMatchObject({ fired: false });
    expect(evaluate(payoutMismatch, sent(500n), { settings: { tolerancePct: 200 } }).points).toBeUndefined();
  });

  it('any payout on a free offer is a large mismatch', () => {
    const offer = testOffer({ payoutMinor: 0n });
    expect(evaluate(payoutMismatch, scoreInput({ offer, payoutMinor: 1n, payoutSent: true }))).toMatchObject({ fired: true, points: 40 });
    expect(evaluate(payoutMismatch, scoreInput({ offer, payoutMinor: 0n, payoutSent: true })).fired).toBe(false);
  });

  it('fires on another currency', () => {
    expect(evaluate(payoutMismatch, sent(250n, 'EUR'))).toMatchObject({ fired: true, value: '2.50 EUR', note: 'currency differs' });
  });

  it('allows a tolerance, boundary included', () => {
    // 10 % of 2.50 is 0.25: 2.75 is within, 2.76 is not.
    expect(evaluate(payoutMismatch, sent(275n), { settings: { tolerancePct: 10 } }).fired).toBe(false);
    expect(evaluate(payoutMismatch, sent(276n), { settings: { tolerancePct: 10 } })).toMatchObject({ fired: true, threshold: '2.50 USD ± 10%' });
    expect(evaluate(payoutMismatch, sent(225n), { settings: { tolerancePct: 10 } }).fired).toBe(false);
  });

  it("is not evaluated when the postback sent no payout", () => {
    expect(evaluate(payoutMismatch, scoreInput({ payoutSent: false }))).toMatchObject({ evaluated: false, note: expect.stringMatching(/no payout/) });
  });

  it('compares JPY (no minor unit) in integers', () => {
    const offer = testOffer({ payoutMinor: 300n, currency: 'JPY' });
    expect(evaluate(payoutMismatch, scoreInput({ offer, payoutMinor: 300n, currency: 'JPY', payoutSent: true })).fired).toBe(false);
    expect(evaluate(payoutMismatch, scoreInput({ offer, payoutMinor: 301n, currency: 'JPY', payoutSent: true }))).toMatchObject({ fired: true, value: '301 JPY' });
  });
});

describe('multiple_conversions_per_click', () => {
  const input = scoreInput({ clickId: 'clk_A', event: 'purchase' });

  it('fires when a click and event converted under more txids than max (default 1)', () => {
    expect(evaluate(multipleConversionsPerClick, input, { counts: counts({ clickConversions: 1 }) }).fired).toBe(false);
    const out = evaluate(multipleConversionsPerClick, input, { counts: counts({ clickConversions: 2 }) });
    expect(out).toMatchObject({ evaluated: true, fired: true, value: 2, threshold: 1, scope: 'click clk_A, event purchase' });
  });

  it('allows repeat purchases when the offer raises max', () => {
    expect(evaluate(multipleConversionsPerClick, input, { counts: counts({ clickConversions: 3 }), settings: { max: 3 } }).fired).toBe(false);
  });

  it('is not evaluated without counts', () => {
    expect(evaluate(multipleConversionsPerClick, input, { countsError: 'down' }).evaluated).toBe(false);
  });
});

describe('over_daily_cap', () => {
  const capped = scoreInput({ offer: testOffer({ dailyCap: 100 }), now: new Date('2026-11-21T23:59:59Z') });

  it('fires past the cap, not at it', () => {
    expect(evaluate(overDailyCap, capped, { counts: counts({ offerToday: 100 }) }).fired).toBe(false);
    const out = evaluate(overDailyCap, capped, { counts: counts({ offerToday: 101 }) });
    expect(out).toMatchObject({ evaluated: true, fired: true, value: 101, threshold: 100, window: 'UTC day 2026-11-21', scope: 'offer off_test' });
  });

  it('is not evaluated for an offer without a cap or without counts', () => {
    expect(evaluate(overDailyCap, scoreInput(), { counts: counts({ offerToday: 1e6 }) })).toMatchObject({ evaluated: false, note: 'the offer has no daily cap' });
    expect(evaluate(overDailyCap, capped, { countsError: 'down' }).evaluated).toBe(false);
  });
});
