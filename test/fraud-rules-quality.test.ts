import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wilsonInterval } from '../src/stats/wilson.js';
import { RULES } from '../src/fraud/registry.js';
import { createToken, expectApiError, get } from './helpers/admin.js';
import { seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { postConversion, review, type Seeded } from './helpers/review.js';

/**
 * GET /v1/fraud/rules/quality: analysts' decisions as labels per reason code. The database is seeded
 * through the real intake and the real review API: 15 conversions flagged by ctit_too_short alone (one
 * rejected by an analyst, fourteen approved), three flagged by ctit_too_short + datacenter_ip (all
 * rejected), one left in the queue, one rejected outright by the scorer, and one that fired
 * ctit_too_short below its offer's flag line.
 */

const HOSTING = '159.203.17.40'; // DigitalOcean: with a fresh click and a headless browser, rejected outright
const VPN_EXIT = '2.56.16.1'; // M247 Europe, a VPN provider's network: with a fresh click, flagged

let t: TestEngine;
let analyst: string;
let window: { from: string; to: string };
type Quality = {
  from: string;
  to: string;
  totals: { conversions: number; reviewed: number };
  rules: { code: string; category: string | null; fired: number; reviewed: number; confirmed: number; overturned: number; awaitingReview: number; autoRejected: number; belowFlag: number; precision: number | null; interval: { low: number; high: number } | null; assessment: string }[];
};
const rule = (q: Quality, code: string) => {
  const found = q.rules.find((r) => r.code === code);
  if (!found) throw new Error(`${code} missing from ${q.rules.map((r) => r.code).join(', ')}`);
  return found;
};

beforeAll(async () => {
  t = await startTestEngine();
  analyst = (await createToken(t.app, 'analyst')).token;
  const base: Seeded = await seedCatalog(t.app, { offer: { payout: '2.50', fraud: {} } });
  const lenient: Seeded = await seedCatalog(t.app, { offer: { payout: '2.50', fraud: { flagAt: 90, rejectAt: 95 } } });

  const decide = async (s: Seeded, decision: 'approve' | 'reject', click?: { ip?: string; ua?: string }) => {
    const c = await postConversion(t.app, s, { click });
    expect(c.decision).toBe('flagged');
    expect((await review(t.app, c.conversionId, { decision }, analyst)).statusCode).toBe(201);
  };
  await decide(base, 'reject');
  for (let i = 0; i < 14; i++) await decide(base, 'approve');
  for (let i = 0; i < 3; i++) await decide(base, 'reject', { ip: VPN_EXIT });
  expect((await postConversion(t.app, base)).decision).toBe('flagged');
  expect((await postConversion(t.app, base, { click: { ip: HOSTING, ua: 'Mozilla/5.0 HeadlessChrome/124.0' } })).decision).toBe('rejected');
  expect((await postConversion(t.app, lenient)).decision).toBe('accepted');

  const [span] = await t.sql<{ from: Date; to: Date }[]>`select min(created_at) - interval '1 second' as from, max(created_at) + interval '1 second' as to from conversions`;
  window = { from: (span as { from: Date }).from.toISOString(), to: (span as { to: Date }).to.toISOString() };
});

afterAll(async () => t?.close());

describe('GET /v1/fraud/rules/quality', () => {
  it('counts per rule what fired, what analysts confirmed and overturned, and the precision with its interval', async () => {
    const res = await get(t.app, `/v1/fraud/rules/quality?from=${window.from}&to=${window.to}`, analyst);
    expect(res.statusCode, res.body).toBe(200);
    const q = res.json() as Quality;
    expect(q.totals).toEqual({ conversions: 21, reviewed: 18 });

    const ctit = rule(q, 'ctit_too_short');
    expect(ctit).toMatchObject({ category: 'timing', fired: 21, reviewed: 18, confirmed: 4, overturned: 14, awaitingReview: 1, autoRejected: 1, belowFlag: 1 });
    const expected = wilsonInterval(4, 18) as { low: number; high: number };
    expect(ctit.precision).toBeCloseTo(4 / 18, 4);
    expect(ctit.interval?.low).toBeCloseTo(expected.low, 4);
    expect(ctit.interval?.high).toBeCloseTo(expected.high, 4);
    // 4 of 18 confirmed: even the upper bound (about 0.45) says analysts overturn most of its flags.
    expect(ctit.assessment).toBe('low_precision');

    const hosting = rule(q, 'datacenter_ip');
    expect(hosting).toMatchObject({ fired: 4, reviewed: 3, confirmed: 3, overturned: 0, autoRejected: 1, precision: 1, assessment: 'too_few_reviews' });
    expect(hosting.interval?.high).toBe(1);

    // A rule that never fired is listed with zeros and no precision, so its silence is visible too.
    const never = rule(q, 'over_daily_cap');
    expect(never).toMatchObject({ fired: 0, reviewed: 0, precision: null, interval: null, assessment: 'too_few_reviews' });
    expect(q.rules.slice(0, RULES.length).map((r) => r.code)).toEqual(RULES.map((r) => r.code));
  });

  it('reviews agree with the database: confirmed + overturned = reviewed conversions that fired the rule', async () => {
    const [row] = await t.sql<{ confirmed: number; overturned: number }[]>`
      select count(*) filter (where review_state = 'rejected')::int as confirmed, count(*) filter (where review_state = 'approved')::int as overturned
        from conversions where 'ctit_too_short' = any(reasons)`;
    const q = (await get(t.app, `/v1/fraud/rules/quality?from=${window.from}&to=${window.to}`, analyst)).json() as Quality;
    expect({ confirmed: rule(q, 'ctit_too_short').confirmed, overturned: rule(q, 'ctit_too_short').overturned }).toEqual(row);
  });

  it('counts only conversions created inside the window, and defaults to the 30 days before now', async () => {
    const after = new Date(new Date(window.to).getTime() + 86_400_000).toISOString();
    const empty = (await get(t.app, `/v1/fraud/rules/quality?from=${window.to}&to=${after}`, analyst)).json() as Quality;
    expect(empty.totals).toEqual({ conversions: 0, reviewed: 0 });
    expect(empty.rules.every((r) => r.fired === 0)).toBe(true);

    const byDefault = (await get(t.app, '/v1/fraud/rules/quality', analyst)).json() as Quality;
    expect(byDefault.totals.conversions).toBe(21);
    expect(new Date(byDefault.to).getTime() - new Date(byDefault.from).getTime()).toBe(30 * 86_400_000);
  });

  it('is for analysts and admins, and refuses a bad window with the contract error', async () => {
    const finance = (await createToken(t.app, 'finance')).token;
    expect((await get(t.app, '/v1/fraud/rules/quality', finance)).statusCode).toBe(403);
    expect((await get(t.app, '/v1/fraud/rules/quality')).statusCode).toBe(200);
    expectApiError(await get(t.app, '/v1/fraud/rules/quality?from=yesterday', analyst), 400, 'invalid_request');
    expectApiError(await get(t.app, `/v1/fraud/rules/quality?from=${window.to}&to=${window.from}`, analyst), 400, 'invalid_request');
    expectApiError(await get(t.app, '/v1/fraud/rules/quality?from=2020-01-01T00:00:00Z&to=2022-01-01T00:00:00Z', analyst), 400, 'invalid_request');
    expectApiError(await get(t.app, '/v1/fraud/rules/quality?limit=5', analyst), 400, 'invalid_request');
  });
});

describe('wilsonInterval', () => {
  it('matches published values and stays inside [0, 1] at the edges', () => {
    // Newcombe (1998), table I: 81 of 263 -> 0.2553 to 0.3662; 0 of 10 -> 0 to 0.2775; 10 of 10 -> 0.7225 to 1.
    const a = wilsonInterval(81, 263) as { low: number; high: number };
    expect(a.low).toBeCloseTo(0.2553, 4);
    expect(a.high).toBeCloseTo(0.3662, 4);
    expect(wilsonInterval(0, 10)).toEqual({ low: 0, high: expect.closeTo(0.2775, 4) });
    expect(wilsonInterval(10, 10)).toEqual({ low: expect.closeTo(0.7225, 4), high: 1 });
    expect(wilsonInterval(0, 0)).toBeNull();
    expect(() => wilsonInterval(3, 2)).toThrow(RangeError);
  });
});
