import { describe, expect, it } from 'vitest';
import type { Attempt } from '../src/simulate/driver.js';
import { evaluate } from '../src/simulate/evaluate.js';
import { HONEST, type Label } from '../src/simulate/plan.js';

/** The simulator's arithmetic: what counts as caught, judged, precise and recalled. */

let n = 0;
function attempt(label: Label, answer: Partial<Attempt> & { status?: number }): Attempt {
  return { label, status: 200, reasons: [], duplicate: false, conversionId: `cv_${++n}`, decision: 'accepted', ...answer };
}

const injection: Label = { pattern: 'click_injection', kind: 'per-conversion', variant: 'malware', expected: ['ctit_too_short'] };
const farm: Label = { pattern: 'ip_burst_bots', kind: 'aggregate', variant: 'device-farm', expected: ['ip_burst'], volume: { key: 'addr:x', min: 5 } };
const forged: Label = { pattern: 'forged_postback', kind: 'per-conversion', variant: 'unsigned', expected: [] };

describe('evaluate', () => {
  const attempts: Attempt[] = [
    // 10 honest: one flagged by a weak pair of signals, none rejected
    ...Array.from({ length: 9 }, () => attempt(HONEST, { ctitS: 300 })),
    attempt(HONEST, { decision: 'flagged', reasons: ['ip_burst'], ctitS: 700_000 }),
    // injection: 3 flagged, 1 rejected, 1 accepted without its reason
    ...Array.from({ length: 3 }, () => attempt(injection, { decision: 'flagged', reasons: ['ctit_too_short'] })),
    attempt(injection, { decision: 'rejected', reasons: ['ctit_too_short', 'bot_user_agent'] }),
    attempt(injection, {}),
    // a farm: five below the minimum volume (accepted), two past it (flagged)
    ...Array.from({ length: 5 }, () => attempt(farm, { pastMinimum: false })),
    ...Array.from({ length: 2 }, () => attempt(farm, { pastMinimum: true, decision: 'flagged', reasons: ['ip_burst'] })),
    // forged: refused at intake, and one replay answered as a duplicate
    attempt(forged, { status: 401, code: 'bad_signature', conversionId: undefined, decision: undefined }),
    attempt(forged, { duplicate: true }),
  ];
  const scores = new Map(attempts.filter((a) => a.conversionId).map((a) => [a.conversionId as string, a.decision === 'rejected' ? 85 : a.decision === 'flagged' ? 45 : 5]));
  const e = evaluate(attempts, scores);
  const pattern = (p: string) => e.patterns.find((x) => x.pattern === p);

  it('counts refused, duplicate, flagged and rejected attempts as caught, accepted ones as missed', () => {
    expect(pattern('click_injection')).toMatchObject({ attempts: 5, caught: { n: 4, of: 5, rate: 0.8 }, judged: { n: 4, of: 5 } });
    expect(pattern('forged_postback')).toMatchObject({ outcomes: { refused: 1, duplicate: 1 }, caught: { n: 2, of: 2 }, refusedBy: { '401 bad_signature': 1 } });
  });

  it('judges an aggregate pattern only past its minimum volume', () => {
    expect(pattern('ip_burst_bots')).toMatchObject({ attempts: 7, caught: { n: 2, of: 7 }, judged: { n: 2, of: 2, rate: 1 } });
  });

  it('computes precision over conversions carrying a code, recall over the attempts expected to carry it', () => {
    const reason = (code: string) => e.reasons.find((r) => r.code === code);
    // ip_burst: on 2 fraud and 1 honest conversion; expected on the 2 farm attempts past minimum, both carry it.
    expect(reason('ip_burst')).toMatchObject({ firedHonest: 1, firedFraud: 2, precision: 2 / 3, recall: { n: 2, of: 2 } });
    // ctit_too_short: expected on the 5 injections, carried by 4.
    expect(reason('ctit_too_short')).toMatchObject({ firedHonest: 0, firedFraud: 4, precision: 1, recall: { n: 4, of: 5, rate: 0.8 } });
    expect(reason('over_daily_cap')).toMatchObject({ precision: null, recall: { of: 0, rate: null } });
  });

  it('reports the overall figures and the targets', () => {
    expect(e.overall).toMatchObject({
      honestConversions: 10,
      fraudConversions: 12,
      honestFlagged: { n: 1, of: 10, rate: 0.1 },
      honestFlaggedBy: { ip_burst: 1 },
      honestRejected: 0,
      rejectedFraudulent: { n: 1, of: 1, rate: 1 },
      recall: { n: 6, of: 12 },
      attemptsCaught: { n: 8, of: 14 },
    });
    expect(e.overall.precision).toBeCloseTo(6 / 7);
    const verdicts = Object.fromEntries(e.thresholds.map((t) => [t.id, t.pass]));
    expect(verdicts).toEqual({ rejected_fraudulent: true, per_conversion_caught: false, aggregate_caught: true, honest_flagged: false, honest_rejected: true });
    expect(e.thresholds.find((t) => t.id === 'per_conversion_caught')?.value).toBe(0.8);
  });

  it('bins scores and honest click-to-conversion times', () => {
    expect(e.scores.honest[0]).toBe(9);
    expect(e.scores.honest[4]).toBe(1);
    expect(e.scores.fraud[8]).toBe(1);
    expect(e.honestCtit.find((b) => b.bucket === '1-10 min')?.n).toBe(9);
    expect(e.honestCtit.find((b) => b.bucket === '> 7 days')?.n).toBe(1);
  });
});
