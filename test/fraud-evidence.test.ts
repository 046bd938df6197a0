import { describe, expect, it } from 'vitest';
import { expandEvidence, storedEvidence } from '../src/fraud/evidence.js';
import { Scorer } from '../src/fraud/scorer.js';
import { MemoryFraudState } from '../src/fraud/state-memory.js';
import { scoreInput, T0, testDatacenter } from './helpers/fraud.js';

/** Evidence is stored without what is the same for most entries, and shown in full again. */

describe('stored evidence', () => {
  it('expands back to every documented field of every rule', async () => {
    const scorer = new Scorer({ state: new MemoryFraudState({ prefix: 'ev:' }), datacenter: testDatacenter });
    // A bot on a hosting address converting at once: fired, capped, not evaluated and quiet entries alike.
    const input = scoreInput({
      click: { ip: '203.0.113.50', userAgent: 'Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/124.0.0.0 Safari/537.36', subs: ['s', null, null, null, null] },
      clickCreatedAt: new Date(T0.getTime() - 2000),
      payoutMinor: 300n,
      payoutSent: true,
    });
    const result = await scorer.score(input);
    expect(result.evidence).toHaveLength(12);
    const expanded = expandEvidence(result.evidence) as Record<string, unknown>[];
    // Every documented field is back, with its value, whatever the entry.
    for (const e of expanded) {
      expect(Object.keys(e).slice(0, 6)).toEqual(['code', 'category', 'mode', 'evaluated', 'fired', 'points']);
    }
    expect(expanded.find((e) => e.code === 'datacenter_ip')).toMatchObject({ category: 'client', mode: 'score', evaluated: true, fired: true, points: 10 });
    expect(expanded.find((e) => e.code === 'ua_mismatch')).toMatchObject({ category: 'client', mode: 'score', evaluated: false, fired: false, points: 0 });
    expect(expanded.find((e) => e.code === 'ip_burst')).toMatchObject({ category: 'velocity', mode: 'score', evaluated: true, fired: false, points: 0, value: 1 });
  });

  it('round-trips: storing then expanding gives the full entries back', () => {
    const full = [
      { code: 'ctit_too_short', category: 'timing' as const, mode: 'score' as const, evaluated: true, fired: true, points: 40, value: 1.2, threshold: 10, window: '10s', scope: 'click' },
      { code: 'ua_mismatch', category: 'client' as const, mode: 'score' as const, evaluated: false, fired: false, points: 0, note: 'the postback has no ua field' },
      { code: 'bot_user_agent', category: 'client' as const, mode: 'monitor' as const, evaluated: true, fired: true, points: 0, note: 'monitor mode: would add 50 points' },
      { code: 'datacenter_ip', category: 'client' as const, mode: 'off' as const, evaluated: false, fired: false, points: 0, note: 'the rule is off for this offer' },
    ];
    const stored = storedEvidence(full);
    expect(stored).toEqual([
      { code: 'ctit_too_short', fired: true, points: 40, value: 1.2, threshold: 10, window: '10s', scope: 'click' },
      { code: 'ua_mismatch', evaluated: false, note: 'the postback has no ua field' },
      { code: 'bot_user_agent', mode: 'monitor', fired: true, note: 'monitor mode: would add 50 points' },
      { code: 'datacenter_ip', mode: 'off', evaluated: false, note: 'the rule is off for this offer' },
    ]);
    expect(expandEvidence(JSON.parse(JSON.stringify(stored)))).toEqual(full);
    expect(JSON.stringify(stored).length).toBeLessThan(JSON.stringify(full).length * 0.75);
  });

  it('passes entries written in full (the reconciler\'s s2s_missing) through unchanged', () => {
    const recovered = { code: 's2s_missing', mode: 'score', evaluated: true, points: 40, value: { pixelAt: '2026-11-21T10:00:00.000Z' }, note: 'recovered by the reconciler' };
    expect(expandEvidence([recovered])).toEqual([recovered]);
    expect(expandEvidence(null)).toEqual([]);
    expect(expandEvidence('nonsense')).toEqual([]);
  });
});
