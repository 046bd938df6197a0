import { describe, expect, it } from 'vitest';
import { ctitTooLong, ctitTooShort } from '../src/fraud/rules/ctit.js';
import { evaluate, scoreInput, T0, testOffer } from './helpers/fraud.js';

const after = (seconds: number) => scoreInput({ clickCreatedAt: new Date(T0.getTime() - seconds * 1000), now: T0 });

describe('ctit_too_short', () => {
  it('fires below minS and not at it (default 10 s)', () => {
    expect(evaluate(ctitTooShort, after(9.999))).toMatchObject({ evaluated: true, fired: true, value: 9.999, threshold: 10, window: '10s' });
    expect(evaluate(ctitTooShort, after(10)).fired).toBe(false);
    expect(evaluate(ctitTooShort, after(2)).fired).toBe(true);
  });

  it('lets a lead form filled in 20 s through', () => {
    expect(evaluate(ctitTooShort, after(20)).fired).toBe(false);
  });

  it('fires for a click stamped in the future (negative CTIT)', () => {
    expect(evaluate(ctitTooShort, after(-30))).toMatchObject({ fired: true, value: -30 });
  });

  it('is evaluated from the click ID alone when the click row is missing', () => {
    expect(evaluate(ctitTooShort, { ...after(3), click: undefined })).toMatchObject({ evaluated: true, fired: true });
  });

  it('honours an offer override of minS', () => {
    expect(evaluate(ctitTooShort, after(25), { settings: { minS: 30 } }).fired).toBe(true);
    expect(evaluate(ctitTooShort, after(25), { settings: { minS: 20 } }).fired).toBe(false);
  });
});

describe('ctit_too_long', () => {
  it('fires beyond maxS (default 7 days) and not at it', () => {
    expect(evaluate(ctitTooLong, after(604_800)).fired).toBe(false);
    expect(evaluate(ctitTooLong, after(604_801))).toMatchObject({ evaluated: true, fired: true, threshold: 604_800, window: '604800s' });
  });

  it('leaves the honest long tail of a few days alone', () => {
    expect(evaluate(ctitTooLong, after(3 * 86_400)).fired).toBe(false);
  });

  it("notes when the offer's click TTL makes the threshold unreachable", () => {
    const input = { ...after(60), offer: testOffer({ clickTtlS: 86_400 }) };
    expect(evaluate(ctitTooLong, input).note).toMatch(/click TTL \(86400s\)/);
    expect(evaluate(ctitTooLong, after(60)).note).toBeUndefined();
  });

  it('honours an offer override of maxS', () => {
    expect(evaluate(ctitTooLong, after(7200), { settings: { maxS: 3600 } }).fired).toBe(true);
  });
});
