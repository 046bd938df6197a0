import { describe, expect, it } from 'vitest';
import { CATEGORY_CAPS, MAX_SCORE, offerFraud, RULES, validateOverrides } from '../src/fraud/registry.js';
import { testOffer } from './helpers/fraud.js';

const CONTRACT_CODES = [
  'ip_burst',
  'ctit_too_short',
  'ctit_too_long',
  'datacenter_ip',
  'click_ip_mismatch',
  'ua_mismatch',
  'bot_user_agent',
  'conversion_rate_spike',
  'click_flood',
  'payout_mismatch',
  'multiple_conversions_per_click',
  'over_daily_cap',
];

describe('the rule registry', () => {
  it("has every code the contract names, in the contract's order, each unique and snake_case", () => {
    expect(RULES.map((r) => r.code)).toEqual(CONTRACT_CODES);
    for (const rule of RULES) expect(rule.code).toMatch(/^[a-z][a-z0-9_]*$/);
  });

  it('gives every rule a category with a cap, points within it, a description and its inputs', () => {
    for (const rule of RULES) {
      expect(CATEGORY_CAPS[rule.category], rule.code).toBeGreaterThan(0);
      expect(rule.defaults.points, rule.code).toBeLessThanOrEqual(CATEGORY_CAPS[rule.category]);
      expect(rule.description.length, rule.code).toBeGreaterThan(20);
      expect(rule.inputs.length, rule.code).toBeGreaterThan(0);
      expect(rule.defaults.mode, rule.code).toBe('score');
    }
  });

  it('accepts every rule\'s own defaults as an override', () => {
    for (const rule of RULES) expect(rule.overrides.safeParse({ ...rule.defaults }).success, rule.code).toBe(true);
  });

  it('keeps honest single signals below the default flag threshold and any one category below rejection', () => {
    const flagging = RULES.filter((r) => r.defaults.points >= 40).map((r) => r.code);
    // Only signals no honest user produces flag on their own: automation on the click (a hosting
    // network, a bot or an HTTP library), an impossible CTIT, a burst beyond a shared address's allowance, money rules.
    expect(flagging.sort()).toEqual(['bot_user_agent', 'ctit_too_short', 'datacenter_ip', 'ip_burst', 'multiple_conversions_per_click', 'over_daily_cap']);
    for (const cap of Object.values(CATEGORY_CAPS)) expect(cap).toBeLessThan(80);
    expect(Object.values(CATEGORY_CAPS).reduce((a, b) => a + b, 0)).toBeGreaterThan(MAX_SCORE);
  });

  it('documents each setting with its default in a JSON Schema', () => {
    const ctit = RULES.find((r) => r.code === 'ctit_too_short');
    expect(ctit?.settingsSchema).toMatchObject({
      type: 'object',
      additionalProperties: false,
      properties: {
        mode: { enum: ['off', 'monitor', 'score'], default: 'score' },
        points: { type: 'integer', default: 40, minimum: 0, maximum: 100 },
        minS: { type: 'integer', default: 10, description: expect.any(String) },
      },
    });
  });
});

describe('validating per-offer overrides', () => {
  it('accepts known codes with valid settings', () => {
    expect(validateOverrides({ ctit_too_short: { minS: 5 }, ip_burst: { max: 5, windowS: 60 }, datacenter_ip: { mode: 'off' } })).toEqual([]);
    expect(validateOverrides({ conversion_rate_spike: { baselineRate: null, alpha: 0.001 }, bot_user_agent: { points: 0, mode: 'monitor' } })).toEqual([]);
  });

  it('names each unknown code and each bad or unknown setting at its path', () => {
    const issues = validateOverrides({
      nope: {},
      ctit_too_short: { minS: 'ten' },
      ip_burst: { maxx: 1, windowS: 10 },
      datacenter_ip: { mode: 'loud' },
      bot_user_agent: { points: 101 },
    });
    expect(issues.map((i) => i.path).sort()).toEqual([
      'fraud.rules.bot_user_agent.points',
      'fraud.rules.ctit_too_short.minS',
      'fraud.rules.datacenter_ip.mode',
      'fraud.rules.ip_burst.maxx',
      'fraud.rules.ip_burst.windowS',
      'fraud.rules.nope',
    ]);
    for (const issue of issues) expect(issue.message.length).toBeGreaterThan(0);
    expect(issues.find((i) => i.path === 'fraud.rules.nope')?.message).toMatch(/not a known fraud rule/);
    expect(issues.find((i) => i.path === 'fraud.rules.ip_burst.maxx')?.message).toBe('is not a known field');
  });

  it('refuses a window longer than the shared state keeps history for', () => {
    expect(validateOverrides({ ip_burst: { windowS: 86_401 } }).map((i) => i.path)).toEqual(['fraud.rules.ip_burst.windowS']);
  });
});

describe('resolving an offer', () => {
  it('merges overrides over defaults and reads its thresholds', () => {
    const offer = testOffer({ fraud: { flagAt: 30, rejectAt: 70, rules: { ip_burst: { max: 9 } } } });
    const resolved = offerFraud(offer);
    expect(resolved.flagAt).toBe(30);
    expect(resolved.rejectAt).toBe(70);
    expect(resolved.settings.get('ip_burst')).toEqual({ mode: 'score', points: 40, max: 9, windowS: 3600, sharedRate: 0.2, offerRateMultiple: 3 });
    expect(offerFraud(offer)).toBe(resolved);
    expect(offerFraud(testOffer())).toMatchObject({ flagAt: 40, rejectAt: 80 });
  });
});
