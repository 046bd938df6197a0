import { describe, expect, it } from 'vitest';
import { RULES, RULES_BY_CODE } from '../src/fraud/registry.js';
import { expandEvidence } from '../src/fraud/evidence.js';
import { measured, type Mode } from '../src/fraud/rule.js';
import { combine, Scorer, type RuleResult, type ScoredEvidence } from '../src/fraud/scorer.js';
import { MemoryFraudState } from '../src/fraud/state-memory.js';
import { parseAddress } from '../src/net/cidr.js';
import type { FraudState } from '../src/fraud/state.js';
import { scoreInput, T0, testDatacenter, testOffer } from './helpers/fraud.js';

/** Every rule's result, all passing except the codes given, which fire (optionally in another mode or worth other points). */
function results(fire: Record<string, { mode?: Mode; points?: number } | true>): RuleResult[] {
  return RULES.map((rule) => {
    const spec = fire[rule.code];
    const extra = spec === true || spec === undefined ? {} : spec;
    const settings = { ...rule.defaults, ...extra };
    return { rule, settings, outcome: measured(spec !== undefined) };
  });
}

const points = (evidence: ScoredEvidence[], code: string) => evidence.find((e) => e.code === code)?.points;

describe('combining rule outcomes into a score', () => {
  it('adds the points of fired score-mode rules, and the evidence adds up to the score', () => {
    const r = combine(results({ ctit_too_short: true, ip_burst: true }), 40, 80);
    expect(r.score).toBe(80);
    expect(r.reasons).toEqual(['ip_burst', 'ctit_too_short']);
    expect(r.evidence.reduce((s, e) => s + e.points, 0)).toBe(r.score);
    expect(r.evidence.map((e) => e.code)).toEqual(RULES.map((x) => x.code));
  });

  it('caps correlated signals per category (client: 60)', () => {
    const r = combine(results({ datacenter_ip: true, click_ip_mismatch: true, bot_user_agent: true, ua_mismatch: true }), 40, 80);
    expect(r.score).toBe(60);
    // Largest first: bot 50, then datacenter gets the 10 left, the rest nothing.
    expect(points(r.evidence, 'bot_user_agent')).toBe(50);
    expect(points(r.evidence, 'datacenter_ip')).toBe(10);
    expect(points(r.evidence, 'ua_mismatch')).toBe(0);
    expect(r.evidence.find((e) => e.code === 'datacenter_ip')?.note).toBe('40 points cut to 10: the client category is capped at 60');
    expect(r.reasons).toEqual(['datacenter_ip', 'click_ip_mismatch', 'ua_mismatch', 'bot_user_agent']);
    expect(r.decision).toBe('flagged');
  });

  it('caps the total at 100 and says which rule was cut', () => {
    const r = combine(
      results({ ctit_too_short: true, bot_user_agent: true, datacenter_ip: true, ip_burst: true, multiple_conversions_per_click: true, over_daily_cap: true }),
      40,
      80,
    );
    expect(r.score).toBe(100);
    expect(r.evidence.reduce((s, e) => s + e.points, 0)).toBe(100);
    expect(r.evidence.some((e) => e.note?.includes('the total is capped at 100'))).toBe(true);
    expect(r.decision).toBe('rejected');
  });

  it('decides at the flagAt and rejectAt boundaries (inclusive)', () => {
    const at = (score: number, flagAt: number, rejectAt: number) =>
      combine(results({ ctit_too_short: { points: score } }), flagAt, rejectAt).decision;
    expect(at(39, 40, 80)).toBe('accepted');
    expect(at(40, 40, 80)).toBe('flagged');
    expect(at(40, 41, 80)).toBe('accepted');
    expect(at(40, 10, 40)).toBe('rejected');
    expect(at(0, 0, 100)).toBe('flagged');
  });

  it('records monitor-mode hits in evidence only: no points, no reason', () => {
    const r = combine(results({ bot_user_agent: { mode: 'monitor' }, ctit_too_long: true }), 40, 80);
    expect(r.score).toBe(20);
    expect(r.reasons).toEqual(['ctit_too_long']);
    const bot = r.evidence.find((e) => e.code === 'bot_user_agent');
    expect(bot).toMatchObject({ mode: 'monitor', fired: true, points: 0, note: 'monitor mode: would add 50 points' });
  });

  it('keeps a rule whose points a cap absorbed entirely among the reasons', () => {
    const r = combine(results({ ctit_too_short: true, ctit_too_long: true }), 40, 80);
    expect(points(r.evidence, 'ctit_too_long')).toBe(0);
    expect(r.reasons).toContain('ctit_too_long');
  });
});

function scorer(state: FraudState = new MemoryFraudState({ prefix: 't:' })) {
  return new Scorer({ state, datacenter: testDatacenter });
}

/** The scorer hands evidence over in its stored form; the review API shows it expanded. */
const evidenceOf = (r: { evidence: readonly object[] }) => expandEvidence(r.evidence) as ScoredEvidence[];

describe('the scorer', () => {
  it('accepts an honest conversion with every rule accounted for', async () => {
    const r = await scorer().score(scoreInput());
    expect(r).toMatchObject({ score: 0, decision: 'accepted', reasons: [] });
    const evidence = evidenceOf(r);
    expect(evidence).toHaveLength(RULES.length);
    const notEvaluatedCodes = evidence.filter((e) => !e.evaluated).map((e) => e.code).sort();
    // No ip/ua/payout were sent, the offer has no cap and no history yet.
    expect(notEvaluatedCodes).toEqual(['click_flood', 'click_ip_mismatch', 'conversion_rate_spike', 'over_daily_cap', 'payout_mismatch', 'ua_mismatch']);
    expect(evidence.filter((e) => !e.evaluated).every((e) => typeof e.note === 'string' && e.note.length > 0)).toBe(true);
  });

  it('rejects a bot converting two seconds after its click from a cloud server', async () => {
    const input = scoreInput({
      click: { ip: '203.0.113.50', userAgent: 'Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/124.0.0.0 Safari/537.36', subs: [null, null, null, null, null] },
      clickCreatedAt: new Date(T0.getTime() - 2000),
    });
    const r = await scorer().score(input);
    expect(r).toMatchObject({ score: 100, decision: 'rejected', reasons: ['ctit_too_short', 'datacenter_ip', 'bot_user_agent'] });
  });

  it("reads a hosting address's publisher spread from the state: a VPN exit many publishers' users click through is a shared exit, a server clicking for one publisher is not", async () => {
    const state = new MemoryFraudState({ prefix: 'spread:' });
    const s = new Scorer({ state, datacenter: testDatacenter });
    const clickFrom = (ip: string, publisherId: string, minutesAgo: number) =>
      state.recordClick({ offerId: 'off_test', publisherId, sub1: 's1', address: parseAddress(ip) ?? null, at: new Date(T0.getTime() - minutesAgo * 60_000) });
    // A cloud VPN exit: clicks through four publishers. A flood server: thirty clicks for one.
    for (const [i, p] of ['pub_a', 'pub_b', 'pub_c', 'pub_d', 'pub_a'].entries()) clickFrom('203.0.113.9', p, 5 + i);
    for (let i = 0; i < 30; i++) clickFrom('203.0.113.50', 'pub_flood', 1 + i);
    const input = (ip: string, publisherId: string) =>
      scoreInput({ publisherId, click: { ip, userAgent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0.0.0 Safari/537.36', subs: ['s1', null, null, null, null] } });
    const exit = evidenceOf(await s.score(input('203.0.113.9', 'pub_a'))).find((e) => e.code === 'datacenter_ip');
    expect(exit).toMatchObject({ fired: true, points: 10, note: expect.stringMatching(/^a shared exit: 5 clicks from this address in the window through 4 publishers \(2 through the largest\)/) });
    const server = await s.score(input('203.0.113.50', 'pub_flood'));
    expect(server).toMatchObject({ score: 40, decision: 'flagged', reasons: ['datacenter_ip'] });
    expect(evidenceOf(server).find((e) => e.code === 'datacenter_ip')?.note).toMatch(/^not a shared exit: 30 clicks from this address in the window through 1 publisher \(30 through the largest\)/);
    // Only hosting and VPN addresses have their spread read: a residential one (a carrier gateway's, say) costs nothing more.
    const asked: (readonly string[] | undefined)[] = [];
    const observe = state.observe.bind(state);
    state.observe = (obs) => {
      asked.push(obs.spreadOf);
      return observe(obs);
    };
    await s.score({ ...input('198.51.100.7', 'pub_a'), userIp: '2001:db8:7c::77' });
    expect(asked).toEqual([['2001:db8:7c:0::/64']]);
  });

  it('flags a click from a bare HTTP library alone (strong evidence of automation is worth a review), and a crawler', async () => {
    const from = (userAgent: string) => scoreInput({ click: { ip: '198.51.100.7', userAgent, subs: [null, null, null, null, null] } });
    expect(await scorer().score(from('node'))).toMatchObject({ score: 40, decision: 'flagged', reasons: ['bot_user_agent'] });
    expect(await scorer().score(from('Mozilla/5.0 (compatible; Googlebot/2.1)'))).toMatchObject({ score: 50, decision: 'flagged', reasons: ['bot_user_agent'] });
  });

  it('pays an outcome its own points when it reports a weaker form of the signal', () => {
    const withPoints = results({}).map((r) => (r.rule.code === 'bot_user_agent' ? { ...r, outcome: measured(true, { points: 30 }) } : r));
    const r = combine(withPoints, 40, 80);
    expect(r).toMatchObject({ score: 30, decision: 'accepted', reasons: ['bot_user_agent'] });
    const monitored = withPoints.map((x) => (x.rule.code === 'bot_user_agent' ? { ...x, settings: { ...x.settings, mode: 'monitor' as const } } : x));
    expect(combine(monitored, 40, 80).evidence.find((e) => e.code === 'bot_user_agent')?.note).toBe('monitor mode: would add 30 points');
  });

  it("applies the offer's overrides, modes and thresholds", async () => {
    const offer = testOffer({
      fraud: { flagAt: 10, rejectAt: 90, rules: { ctit_too_short: { minS: 700 }, bot_user_agent: { mode: 'off' } } },
    });
    const input = scoreInput({ offer, click: { ip: '198.51.100.7', userAgent: 'curl/8.4.0', subs: [null, null, null, null, null] } });
    const r = await scorer().score(input);
    expect(r).toMatchObject({ score: 40, decision: 'flagged', reasons: ['ctit_too_short'] });
    expect(evidenceOf(r).find((e) => e.code === 'bot_user_agent')).toMatchObject({ mode: 'off', evaluated: false, note: 'the rule is off for this offer' });
  });

  it('falls back to defaults, and says so, for a stored override that no longer validates', async () => {
    const offer = testOffer({ fraud: { rules: { ctit_too_short: { minS: 'ten' } } } });
    const r = await scorer().score(scoreInput({ offer, clickCreatedAt: new Date(T0.getTime() - 5000) }));
    expect(evidenceOf(r).find((e) => e.code === 'ctit_too_short')).toMatchObject({ fired: true, threshold: 10, note: expect.stringMatching(/defaults used/) });
  });

  it('still scores when the shared state is down, with the counting rules not evaluated', async () => {
    const down: FraudState = {
      kind: 'redis',
      observe: async () => {
        throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
      },
      recordClick: () => undefined,
      flush: async () => undefined,
      close: async () => undefined,
    };
    const r = await scorer(down).score(scoreInput({ clickCreatedAt: new Date(T0.getTime() - 1000) }));
    expect(r.reasons).toEqual(['ctit_too_short']);
    for (const code of ['ip_burst', 'multiple_conversions_per_click']) {
      expect(evidenceOf(r).find((e) => e.code === code)).toMatchObject({ evaluated: false, note: 'shared counters unavailable: connect ECONNREFUSED 127.0.0.1:6379' });
    }
  });

  it('records a rule that throws as not evaluated instead of failing the postback', async () => {
    const rule = RULES_BY_CODE.get('ua_mismatch');
    if (!rule) throw new Error('missing rule');
    const original = rule.evaluate;
    rule.evaluate = () => {
      throw new Error('boom');
    };
    try {
      const r = await scorer().score(scoreInput());
      expect(evidenceOf(r).find((e) => e.code === 'ua_mismatch')).toMatchObject({ evaluated: false, note: 'the rule failed: boom' });
    } finally {
      rule.evaluate = original;
    }
  });

  it('flags the second txid on one click (multiple_conversions_per_click) but not a retry of the first', async () => {
    const s = scorer();
    const first = scoreInput({ clickId: 'clk_1', txid: 'A' });
    expect((await s.score(first)).reasons).toEqual([]);
    expect((await s.score({ ...first })).reasons).toEqual([]);
    const second = await s.score({ ...first, txid: 'B' });
    expect(second).toMatchObject({ decision: 'flagged', reasons: ['multiple_conversions_per_click'] });
    // A different event on the same click (install, then purchase) is not a duplicate.
    expect((await s.score({ ...first, txid: 'C', event: 'purchase' })).reasons).toEqual([]);
  });

  it('flags conversions past the daily cap exactly, retries not counted', async () => {
    const s = scorer();
    const offer = testOffer({ dailyCap: 3 });
    const decisions: string[] = [];
    for (const txid of ['t1', 't2', 't3', 't3', 't4']) {
      decisions.push((await s.score(scoreInput({ offer, txid, clickId: `c_${txid}` }))).decision);
    }
    expect(decisions).toEqual(['accepted', 'accepted', 'accepted', 'accepted', 'flagged']);
    const next = await s.score(scoreInput({ offer, txid: 't5', clickId: 'c5', now: new Date('2026-11-22T00:00:01Z') }));
    expect(next.decision).toBe('accepted');
  });
});
