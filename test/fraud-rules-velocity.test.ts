import { describe, expect, it } from 'vitest';
import { binomialUpperTail, logGamma } from '../src/fraud/binomial.js';
import { conversionRateSpike } from '../src/fraud/rules/conversion-rate.js';
import { ipBurst } from '../src/fraud/rules/ip-burst.js';
import { BROWSER_UA, counts, evaluate, scoreInput } from './helpers/fraud.js';

const click = (ip: string | null) => ({ ip, userAgent: BROWSER_UA, subs: ['sub-a', null, null, null, null] });
const at = (key: string, conversions: number, clicks = 0) => ({ key, conversions, clicks });

describe('ip_burst', () => {
  const input = scoreInput({ click: click('198.51.100.7') });

  it('fires above max conversions per address in the window, not at it (default 5 per 3600 s)', () => {
    expect(evaluate(ipBurst, input, { counts: counts({ addresses: [at('198.51.100.7', 5)] })}).fired).toBe(false);
    const out = evaluate(ipBurst, input, { counts: counts({ addresses: [at('198.51.100.7', 6)] }) });
    expect(out).toMatchObject({ evaluated: true, fired: true, value: 6, threshold: 5, window: '3600s', scope: 'click address 198.51.100.7 (all offers)' });
  });

  it("raises the threshold for a shared carrier address by the clicks it sent", () => {
    // 100 clicks at sharedRate 0.2 allow 20 conversions: a CGNAT gateway converting 8 % is normal.
    const shared = evaluate(ipBurst, input, { counts: counts({ addresses: [at('198.51.100.7', 8, 100)] }) });
    expect(shared).toMatchObject({ fired: false, threshold: 20, note: expect.stringMatching(/100 clicks/) });
    // A farm converting most of its clicks stays above it.
    expect(evaluate(ipBurst, input, { counts: counts({ addresses: [at('198.51.100.7', 30, 40)] }) })).toMatchObject({ fired: true, threshold: 8 });
    expect(evaluate(ipBurst, input, { counts: counts({ addresses: [at('198.51.100.7', 8, 100)] }), settings: { sharedRate: 0 } }).fired).toBe(true);
  });

  it("allows a shared address more on an offer that converts well (3x the offer's rate)", () => {
    // A 15 % offer: a gateway with 100 clicks may convert 45 times, not 20.
    const offerBaseline = { conversions: 1500, clicks: 10_000 };
    const busy = counts({ offerBaseline, addresses: [at('198.51.100.7', 30, 100)] });
    expect(evaluate(ipBurst, input, { counts: busy })).toMatchObject({ fired: false, threshold: 45 });
    expect(evaluate(ipBurst, input, { counts: busy, settings: { offerRateMultiple: 0 } })).toMatchObject({ fired: true, threshold: 20 });
    // Too little history to be a rate: the fixed share applies.
    const young = counts({ offerBaseline: { conversions: 150, clicks: 999 }, addresses: [at('198.51.100.7', 30, 100)] });
    expect(evaluate(ipBurst, input, { counts: young })).toMatchObject({ fired: true, threshold: 20 });
  });

  it("judges the postback's ip too, reporting the worse address", () => {
    const both = scoreInput({ click: click('198.51.100.7'), userIp: '192.0.2.44' });
    const out = evaluate(ipBurst, both, { counts: counts({ addresses: [at('198.51.100.7', 1), at('192.0.2.44', 9)] }) });
    expect(out).toMatchObject({ fired: true, value: 9, scope: 'postback ip 192.0.2.44 (all offers)' });
  });

  it('counts IPv6 users per /64', () => {
    const v6 = scoreInput({ click: click('2001:db8:5:6:aaaa::1') });
    expect(evaluate(ipBurst, v6, { counts: counts({ addresses: [at('2001:db8:5:6::/64', 7)] }) })).toMatchObject({ fired: true, scope: 'click address 2001:db8:5:6::/64 (all offers)' });
  });

  it('honours max and windowS overrides', () => {
    const out = evaluate(ipBurst, input, { counts: counts({ addresses: [at('198.51.100.7', 3)] }), settings: { max: 2, windowS: 60 } });
    expect(out).toMatchObject({ fired: true, threshold: 2, window: '60s' });
  });

  it('is not evaluated without a public user address or without counts', () => {
    expect(evaluate(ipBurst, scoreInput({ click: undefined })).evaluated).toBe(false);
    const proxied = evaluate(ipBurst, scoreInput({ click: click('127.0.0.1') }));
    expect(proxied).toMatchObject({ evaluated: false, note: expect.stringMatching(/no public user address.*TRUST_PROXY/) });
    const down = evaluate(ipBurst, input, { countsError: 'connect ECONNREFUSED' });
    expect(down).toMatchObject({ evaluated: false, note: 'shared counters unavailable: connect ECONNREFUSED' });
  });
});

describe('binomial upper tail', () => {
  const direct = (k: number, n: number, p: number) => {
    let sum = 0;
    for (let i = k; i <= n; i++) sum += Math.exp(logGamma(n + 1) - logGamma(i + 1) - logGamma(n - i + 1) + i * Math.log(p) + (n - i) * Math.log(1 - p));
    return sum;
  };

  it('matches exact values', () => {
    expect(binomialUpperTail(8, 10, 0.5)).toBeCloseTo(56 / 1024, 12);
    expect(binomialUpperTail(0, 10, 0.3)).toBe(1);
    expect(binomialUpperTail(11, 10, 0.3)).toBe(0);
    expect(binomialUpperTail(10, 10, 0.5)).toBeCloseTo(1 / 1024, 14);
  });

  it('agrees with direct summation on both sides of the mode', () => {
    for (const [k, n, p] of [[5, 100, 0.01], [1, 100, 0.01], [30, 100, 0.25], [20, 100, 0.25], [60, 2000, 0.02]] as const) {
      const want = direct(k, n, p);
      expect(Math.abs(binomialUpperTail(k, n, p) - want) / want, `${k}/${n} at ${p}`).toBeLessThan(1e-9);
    }
  });

  it('stays finite and tiny for large, far-out counts', () => {
    const p = binomialUpperTail(400, 1_000_000, 0.0001);
    expect(p).toBeGreaterThan(0);
    expect(p).toBeLessThan(1e-100);
  });
});

describe('conversion_rate_spike', () => {
  const input = scoreInput({ click: click('198.51.100.7') });
  /**
   * The offer's counts include the segment's own; its baseline is the rest of the offer, 200 / 10,000 = 2 %.
   * The publisher sends only this sub1, so both levels count the same cohort.
   */
  const segment = (conversions: number, clicks: number) =>
    counts({ offerBaseline: { conversions: 200 + conversions, clicks: 10_000 + clicks }, segment: { conversions, clicks }, publisher: { conversions, clicks } });
  /** One sub1 of a publisher whose sub1s together made `pub`; the rest of the offer (without the publisher) is 200 / 10,000 = 2 %. */
  const spread = (sub: { conversions: number; clicks: number }, pub: { conversions: number; clicks: number }) =>
    counts({ offerBaseline: { conversions: 200 + pub.conversions, clicks: 10_000 + pub.clicks }, segment: sub, publisher: pub });

  it('fires when a segment converts significantly and at least 3x above the rest of the offer', () => {
    const out = evaluate(conversionRateSpike, input, { counts: segment(15, 100) });
    expect(out).toMatchObject({
      evaluated: true,
      fired: true,
      window: '86400s',
      scope: 'offer off_test, publisher pub_test, sub1 "sub-a"',
      threshold: { alpha: 1e-4, minLift: 3, minConversions: 10 },
      value: { level: 'sub1', conversions: 15, clicks: 100, rate: 0.15, baselineRate: 0.02, lift: 7.5, levels: { sub1: { conversions: 15, clicks: 100 }, publisher: { conversions: 15, clicks: 100 } } },
      note: expect.stringMatching(/^baseline: the rest of the offer, 200 conversions \/ 10000 clicks over 7 UTC days/),
    });
    expect((out.value as { pValue: number }).pValue).toBeLessThan(1e-4);
  });

  it('fires at the publisher level for pumping spread over many sub-IDs, each below minConversions', () => {
    // 300 rotating sub-IDs, 3 of 10 clicks converting on each: 900 / 3,000 = 30 %, 15x the rest of the offer.
    const pumped = spread({ conversions: 3, clicks: 10 }, { conversions: 900, clicks: 3000 });
    const out = evaluate(conversionRateSpike, input, { counts: pumped });
    expect(out).toMatchObject({
      evaluated: true,
      fired: true,
      points: 40,
      scope: 'offer off_test, publisher pub_test (all its sub1s)',
      value: { level: 'publisher', conversions: 900, clicks: 3000, rate: 0.3, baselineRate: 0.02, lift: 15, levels: { sub1: { conversions: 3, clicks: 10 }, publisher: { conversions: 900, clicks: 3000 } } },
      note: expect.stringMatching(/^baseline: the rest of the offer without this publisher, 200 conversions \/ 10000 clicks over 7 UTC days; judged on the publisher's sub1s together, where the spike is stronger than on sub1 "sub-a" alone; a strong spike/),
    });
    expect((out.value as { pValue: number }).pValue).toBeLessThan(1e-4);
    // The same sub1 judged alone (as before the publisher level) is below the minimum volume.
    const alone = evaluate(conversionRateSpike, input, { counts: counts({ offerBaseline: pumped.offerBaseline, segment: { conversions: 3, clicks: 10 } }) });
    expect(alone).toMatchObject({ fired: false, value: { level: 'sub1', levels: { publisher: null } }, note: expect.stringMatching(/minimum volume/) });
  });

  it("does not fire for an honest publisher with many sub-IDs converting at the offer's rate", () => {
    // 300 sub-IDs at 2 %, some sub-IDs luckier than others: 60 / 3,000 overall.
    for (const sub of [{ conversions: 0, clicks: 10 }, { conversions: 2, clicks: 10 }]) {
      const out = evaluate(conversionRateSpike, input, { counts: spread(sub, { conversions: 60, clicks: 3000 }) });
      expect(out).toMatchObject({ evaluated: true, fired: false, value: { level: 'sub1', levels: { publisher: { conversions: 60, clicks: 3000 } } } });
    }
  });

  it('still fires at the sub1 level when one pumped sub-ID stands out from an otherwise honest publisher', () => {
    // The sub1 converts 60 / 200, 16x its rest (240 / 12,800); the publisher's clicks together 100 / 3,000 (1.7x).
    const out = evaluate(conversionRateSpike, input, { counts: spread({ conversions: 60, clicks: 200 }, { conversions: 100, clicks: 3000 }) });
    expect(out).toMatchObject({
      fired: true,
      points: 40,
      scope: 'offer off_test, publisher pub_test, sub1 "sub-a"',
      value: { level: 'sub1', conversions: 60, clicks: 200, lift: 16, levels: { sub1: { conversions: 60, clicks: 200 }, publisher: { conversions: 100, clicks: 3000 } } },
    });
    expect(out.note).toMatch(/^baseline: the rest of the offer, 240 conversions \/ 12800 clicks/);
  });

  it('reports the publisher level when the sub1 alone is no spike, and is not evaluated when its clicks were lost', () => {
    // The sub1 (70 / 1,000) is judged against a rest holding the publisher's other pumped sub1s (730 / 12,000):
    // no spike. The publisher (600 / 3,000) against the rest without it (2 %) is 10x.
    const out = evaluate(conversionRateSpike, input, { counts: spread({ conversions: 70, clicks: 1000 }, { conversions: 600, clicks: 3000 }) });
    expect(out).toMatchObject({ fired: true, points: 40, value: { level: 'publisher', lift: 10 } });
    const lost = evaluate(conversionRateSpike, input, { counts: spread({ conversions: 3, clicks: 10 }, { conversions: 40, clicks: 30 }) });
    expect(lost).toMatchObject({ evaluated: false, note: "more conversions (40) than recorded clicks (30) for the publisher's sub1s together: the click counts are incomplete" });
  });

  it('leaves the segment out of its own baseline, so a large segment cannot raise its own bar', () => {
    // The segment is a third of the offer's clicks: with it, the offer converts at 8.2 % (lift 4.3);
    // without it, at 2 % (lift 17.5).
    const out = evaluate(conversionRateSpike, input, { counts: segment(1750, 5000) });
    expect(out).toMatchObject({ fired: true, points: 40, value: { baselineRate: 0.02, lift: 17.5 } });
  });

  it('is worth 25 points from 3x the baseline and strongPoints (40) from 4x', () => {
    const at = (conversions: number, clicks: number, settings = {}) => evaluate(conversionRateSpike, input, { counts: segment(conversions, clicks), settings });
    // 2 % baseline: 40/1000 is 2x (no spike), 70/1000 is 3.5x (a spike), 80/1000 is 4x (a strong one).
    expect(at(40, 1000).fired).toBe(false);
    const spike = at(70, 1000);
    expect(spike).toMatchObject({ fired: true, threshold: { minLift: 3, strongLift: 4 } });
    expect(spike.points).toBeUndefined();
    expect(spike.note).not.toMatch(/strong/);
    expect(at(79, 1000).points).toBeUndefined();
    expect(at(80, 1000)).toMatchObject({ fired: true, points: 40, note: expect.stringMatching(/a strong spike \(4x the baseline or more\)$/) });
    expect(at(100, 1000, { strongLift: 8, strongPoints: 30 }).points).toBeUndefined();
    expect(at(200, 1000, { strongLift: 8, strongPoints: 30 }).points).toBe(30);
  });

  it('does not fire below the minimum volume, however high the rate', () => {
    const out = evaluate(conversionRateSpike, input, { counts: segment(9, 10) });
    expect(out).toMatchObject({ evaluated: true, fired: false, note: expect.stringMatching(/minimum volume/) });
  });

  it('does not fire for a significant but small difference (honest sources differ)', () => {
    // 2.5x the baseline over 20,000 clicks is overwhelmingly significant, yet below the minimum lift.
    const out = evaluate(conversionRateSpike, input, { counts: segment(1000, 20_000) });
    expect(out.fired).toBe(false);
  });

  it('does not fire for a rate within chance of the baseline', () => {
    const out = evaluate(conversionRateSpike, input, { counts: segment(12, 300) });
    expect(out.fired).toBe(false);
  });

  it('is not evaluated when click counts were lost (more conversions than clicks in the cohort)', () => {
    const out = evaluate(conversionRateSpike, input, { counts: segment(12, 3) });
    expect(out).toMatchObject({ evaluated: false, fired: false, note: 'more conversions (12) than recorded clicks (3): the click counts are incomplete' });
  });

  it('uses a configured baseline rate when the offer sets one', () => {
    const c = counts({ offerBaseline: { conversions: 0, clicks: 0 }, segment: { conversions: 15, clicks: 100 } });
    expect(evaluate(conversionRateSpike, input, { counts: c, settings: { baselineRate: 0.02 } })).toMatchObject({
      fired: true,
      note: expect.stringMatching(/^configured baseline rate; /),
    });
    expect(evaluate(conversionRateSpike, input, { counts: c, settings: { baselineRate: 0.1 } }).fired).toBe(false);
  });

  it('is not evaluated without enough offer history besides the segment, the click row, or counts', () => {
    // 1,099 clicks on the offer, 100 of them the segment's: the rest has 999.
    const young = evaluate(conversionRateSpike, input, { counts: counts({ offerBaseline: { conversions: 5, clicks: 1099 }, segment: { conversions: 1, clicks: 100 } }) });
    expect(young).toMatchObject({ evaluated: false, note: 'the rest of the offer has 999 clicks over 7 days; its baseline needs 1000' });
    expect(evaluate(conversionRateSpike, input, { counts: counts({ offerBaseline: { conversions: 5, clicks: 1100 }, segment: { conversions: 1, clicks: 100 } }) }).evaluated).toBe(true);
    expect(evaluate(conversionRateSpike, scoreInput({ click: undefined })).note).toMatch(/sub1 is unknown/);
    expect(evaluate(conversionRateSpike, input, { countsError: 'timeout' }).note).toBe('shared counters unavailable: timeout');
  });
});
