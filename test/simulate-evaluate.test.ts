import { describe, expect, it } from 'vitest';
import type { SimCatalog } from '../src/simulate/catalog.js';
import { Driver, type Attempt } from '../src/simulate/driver.js';
import { evaluate } from '../src/simulate/evaluate.js';
import { HARD_FRAUD_PUBLISHERS, RESIDENTIAL_PROXY_OUTSIDE_TARGET } from '../src/simulate/fraud-hard.js';
import { FRAUD_PUBLISHERS } from '../src/simulate/fraud-patterns.js';
import { HONEST_PATTERNS } from '../src/simulate/honest-hard.js';
import { HONEST_PUBLISHERS } from '../src/simulate/honest.js';
import type { SentRequest } from '../src/simulate/http.js';
import type { SimReport } from '../src/simulate/report.js';
import { seedsHtml } from '../src/simulate/report-seeds-html.js';
import { seedsText } from '../src/simulate/report-seeds-text.js';
import { planSessions } from '../src/simulate/run.js';
import { rate } from '../src/simulate/targets.js';
import { HONEST, type Label } from '../src/simulate/plan.js';
import { parseSeeds, poolSeeds, wilson } from '../src/simulate/seeds.js';

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
    expect(verdicts).toEqual({ rejected_fraudulent: true, per_conversion_caught: false, aggregate_caught: true, honest_patterns_flagged: false, honest_flagged: false, honest_rejected: true });
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

describe('per-pattern targets', () => {
  const office: Label = { pattern: 'honest_office_nat', kind: 'honest', variant: 'office-broadband', expected: [] };
  const proxy: Label = { pattern: 'residential_proxy', kind: 'aggregate', variant: 'sticky-exit', expected: [], outsideTarget: 'looks honest' };
  const attempts: Attempt[] = [
    ...Array.from({ length: 99 }, () => attempt(HONEST, {})),
    attempt(HONEST, { decision: 'flagged', reasons: ['ip_burst'] }),
    // 2 of 40 office conversions flagged (5 %), and a refused postback that is not a conversion
    ...Array.from({ length: 38 }, () => attempt(office, {})),
    ...Array.from({ length: 2 }, () => attempt(office, { decision: 'flagged', reasons: ['ip_burst'] })),
    attempt(office, { status: 409, code: 'conflict', conversionId: undefined, decision: undefined }),
    ...Array.from({ length: 20 }, () => attempt(injection, { decision: 'flagged', reasons: ['ctit_too_short'] })),
    ...Array.from({ length: 10 }, () => attempt(proxy, { pastMinimum: true })),
  ];
  const e = evaluate(attempts, new Map());
  const pattern = (p: string) => e.patterns.find((x) => x.pattern === p);

  it('judges an honest pattern on its committed conversions flagged or rejected, with their reasons', () => {
    expect(pattern('honest_office_nat')).toMatchObject({ flagged: { n: 2, of: 40, rate: 0.05 }, variantRates: { 'office-broadband': { n: 2, of: 40 } }, flaggedBy: { ip_burst: 2 } });
    expect(pattern('honest')?.flagged).toEqual({ n: 1, of: 100, rate: 0.01 });
  });

  it('fails the honest target on the worst honest pattern although the overall rate is within it', () => {
    const t = Object.fromEntries(e.thresholds.map((x) => [x.id, x]));
    expect(e.overall.honestFlagged).toEqual({ n: 3, of: 140, rate: 3 / 140 });
    expect(t.honest_patterns_flagged).toMatchObject({ pass: false, value: 0.05 });
    expect(t.honest_patterns_flagged?.detail).toMatch(/^honest_office_nat 5\.0 %, honest 1\.0 %$/);
  });

  it('reports a pattern outside the targets without judging it', () => {
    expect(pattern('residential_proxy')).toMatchObject({ judged: { n: 0, of: 10 }, outsideTarget: 'looks honest' });
    const aggregate = e.thresholds.find((x) => x.id === 'aggregate_caught');
    expect(aggregate).toMatchObject({ pass: true, value: null });
    expect(aggregate?.detail).toContain('not judged: residential_proxy 0.0 %');
  });
});

describe('Wilson score interval', () => {
  // Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3.
  it.each([
    [81, 263, 0.2553, 0.3662],
    [15, 148, 0.0624, 0.1605],
    [0, 20, 0, 0.1611],
    [1, 29, 0.0061, 0.1718],
  ])('%i of %i is %f to %f', (n, of, lo, hi) => {
    const [l, h] = wilson(n, of) as [number, number];
    expect(l).toBeCloseTo(lo, 4);
    expect(h).toBeCloseTo(hi, 4);
  });

  it('is symmetric, and at 0 successes its upper end is z²/(n + z²)', () => {
    const z2 = 1.959963984540054 ** 2;
    expect(wilson(0, 29)?.[1]).toBeCloseTo(z2 / (29 + z2), 12);
    const [lo, hi] = wilson(29, 29) as [number, number];
    expect([lo, hi]).toEqual([expect.closeTo(1 - z2 / (29 + z2), 12), 1]);
    const [a, b] = wilson(7, 40) as [number, number];
    const [c, d] = wilson(33, 40) as [number, number];
    expect(a).toBeCloseTo(1 - d, 12);
    expect(b).toBeCloseTo(1 - c, 12);
  });

  it('has no interval without trials, and stays inside [0, 1] at the ends', () => {
    expect(wilson(0, 0)).toBeNull();
    expect(wilson(0, 1)?.[0]).toBe(0);
    expect(wilson(1, 1)?.[1]).toBe(1);
  });
});

describe('--seeds', () => {
  it('takes a count from the base seed or a list', () => {
    expect(parseSeeds(undefined, 7)).toEqual([7]);
    expect(parseSeeds('3', 7)).toEqual([7, 8, 9]);
    expect(parseSeeds('4,2,9', 7)).toEqual([4, 2, 9]);
  });
  it.each(['0', '1,x', '5,5', '2.5', ''])('refuses %j', (bad) => {
    expect(() => parseSeeds(bad, 7)).toThrow(/--seeds/);
  });
});

/**
 * A tiny multi-seed simulation: the real plans and the real driver for three seeds, against a stand-in
 * engine that flags exactly the postbacks forwarding the user's address (a rule the test can apply to
 * the plan itself). Checks the accounting from labelled steps to pooled intervals, not detection.
 */
describe('a multi-seed run', () => {
  const SEEDS = [11, 12, 13];
  const CLICKS = 3000;

  function standIn() {
    let seq = 0;
    const fieldsOf = (req: SentRequest) => (req.method === 'GET' ? new URLSearchParams(req.path.split('?')[1]) : new URLSearchParams(JSON.parse(req.body ?? '{}') as Record<string, string>));
    return {
      click: async () => `click_${++seq}`,
      send: async (req: SentRequest) => {
        const ip = fieldsOf(req).get('ip');
        return { status: 200, body: { conversionId: `cv_${++seq}`, decision: ip ? 'flagged' : 'accepted', reasons: ip ? ['click_ip_mismatch'] : [], duplicate: false } };
      },
    };
  }

  const entity = (id: string) => ({ id, seq: 1 });
  const names = [...Array.from({ length: HONEST_PUBLISHERS }, (_, i) => `pub${i}`), ...FRAUD_PUBLISHERS, ...HARD_FRAUD_PUBLISHERS];
  const catalog: SimCatalog = {
    signer: { advertiserId: 'adv_1', key: Buffer.alloc(32, 7) },
    advertiser: entity('adv_1'),
    offers: { app: { ...entity('off_app'), payout: '2.50' }, lead: { ...entity('off_lead'), payout: '12.00' }, shop: { ...entity('off_shop'), payout: '40.00' }, other: { ...entity('off_other'), payout: '1.00' } },
    publishers: Object.fromEntries(names.map((n) => [n, entity(`pub_${n}`)])),
    clickKey: { kid: 1, secret: Buffer.alloc(32) },
  };

  async function runOne(seed: number) {
    const { sessions } = planSessions(seed, CLICKS);
    let twins = 0;
    const driver = new Driver(standIn(), catalog, { mint: async () => `twin_${++twins}` }, () => {});
    const result = await driver.run(sessions, 4);
    const report: SimReport = {
      seed,
      requestedClicks: CLICKS,
      startedAt: '2026-01-01T00:00:00.000Z',
      durationS: 1,
      target: 'stand-in',
      fraudState: 'memory',
      method: [],
      traffic: { clicks: result.clicks, postbacks: result.attempts.length, sessions: sessions.length },
      evaluation: evaluate(result.attempts, new Map()),
      deliveries: undefined,
      reviewQueueTop: [],
      errors: result.errors,
    };
    // What the plan says each pattern's conversions should count: every convert step, flagged when it forwards an ip.
    const expected = new Map<string, { n: number; of: number }>();
    for (const step of sessions.flat()) {
      if (step.t !== 'convert') continue;
      const e = expected.get(step.label.pattern) ?? { n: 0, of: 0 };
      e.of++;
      if (step.postback.ip !== undefined) e.n++;
      expected.set(step.label.pattern, e);
    }
    return { report, expected };
  }

  it('labels every hard case, counts each pattern from its own steps, and pools the seeds', async () => {
    const runs = await Promise.all(SEEDS.map(runOne));
    for (const { report, expected } of runs) {
      expect(report.errors).toEqual([]);
      const stats = (p: string) => report.evaluation.patterns.find((x) => x.pattern === p);
      for (const p of [...HONEST_PATTERNS, 'hosting_networks', 'bot_clients', 'residential_proxy', 'subid_pumping', 'click_flooding']) expect(stats(p)?.attempts, p).toBeGreaterThan(0);
      for (const p of HONEST_PATTERNS) expect(stats(p)?.flagged, p).toEqual(rate(expected.get(p)?.n ?? 0, expected.get(p)?.of ?? 0));
      // Per-conversion patterns made only of conversions: caught = flagged by the stand-in.
      for (const p of ['hosting_networks', 'bot_clients', 'click_injection', 'datacenter_clicks']) expect(stats(p)?.judged, p).toEqual(rate(expected.get(p)?.n ?? 0, expected.get(p)?.of ?? 0));
      expect(stats('click_flooding')?.variants['device-addresses']?.of).toBeGreaterThan(0);
      expect(stats('residential_proxy')?.outsideTarget).toBe(RESIDENTIAL_PROXY_OUTSIDE_TARGET);
    }

    const pooled = poolSeeds(runs.map((r) => r.report));
    expect(pooled.seeds).toEqual(SEEDS);
    for (const p of pooled.patterns) {
      const perSeed = runs.map((r) => r.report.evaluation.patterns.find((x) => x.pattern === p.pattern)).filter((x) => x !== undefined);
      const rates = perSeed.map((s) => (s.kind === 'honest' ? s.flagged : s.judged));
      const n = rates.reduce((a, r) => a + r.n, 0);
      const of = rates.reduce((a, r) => a + r.of, 0);
      expect(p.rate, p.pattern).toEqual({ n, of, rate: of ? n / of : null, wilson95: wilson(n, of) });
      expect(p.attempts).toBe(perSeed.reduce((a, s) => a + s.attempts, 0));
      const values = rates.map((r) => r.rate).filter((r) => r !== null);
      expect(p.seedRange).toEqual(values.length ? [Math.min(...values), Math.max(...values)] : null);
    }
    const honestFlagged = runs.reduce((a, r) => a + r.report.evaluation.overall.honestFlagged.n, 0);
    expect(pooled.overall.honestFlagged.n).toBe(honestFlagged);
    expect(pooled.overall.honestRejected).toBe(0);
    // The stand-in rejects nothing, so the share of rejections that are fraud is undefined, and passes.
    expect(pooled.overall.rejectedFraudulent).toMatchObject({ of: 0, rate: null });
    expect(pooled.thresholds.find((t) => t.id === 'honest_patterns_flagged')?.pass).toBe(false);

    const html = seedsHtml(pooled);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    expect(html).toContain('goal ≥ 95 %');
    expect(html).toContain('goal ≤ 2 %');
    expect(seedsText(pooled)).toMatch(/^honest_office_nat +honest +\d+\/\d+/m);
  }, 60_000);
});

describe('the background traffic before a run', () => {
  const CLICKS = 5000;
  const plan = planSessions(7, CLICKS);
  const clicks = plan.background.flat();

  it('is a tenth of the clicks, clicks only, on the fourth offer, from honest publishers', () => {
    expect(plan.background).toHaveLength(CLICKS / 10);
    expect(clicks.every((s) => s.t === 'click' && s.click.offer === 'other')).toBe(true);
    const fraud = new Set<string>([...FRAUD_PUBLISHERS, ...HARD_FRAUD_PUBLISHERS]);
    expect(clicks.some((s) => s.t === 'click' && fraud.has(s.click.publisher))).toBe(false);
  });

  it("uses the run's own shared addresses, and is drawn after the measured sessions, which stay the seed's", () => {
    const measured = new Set(plan.sessions.flat().flatMap((s) => (s.t === 'click' ? [s.click.ip] : [])));
    const shared = clicks.filter((s) => s.t === 'click' && measured.has(s.click.ip)).length;
    // Carrier pools and VPN exits recur; a home address rarely does.
    expect(shared).toBeGreaterThan(clicks.length * 0.1);
    // txids come from a process-wide counter; everything else is the seed's.
    const withoutTxids = (sessions: unknown) => JSON.stringify(sessions).replace(/"txid":"[^"]*"/g, '');
    expect(withoutTxids(planSessions(7, CLICKS).sessions)).toBe(withoutTxids(plan.sessions));
    expect(plan.sessions.flat().some((s) => (s.t === 'click' || s.t === 'convert') && typeof s.click === 'object' && s.click.offer === 'other')).toBe(false);
  });
});
