import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, expectApiError, get, patch, post } from './helpers/admin.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';

let t: TestEngine;
beforeAll(async () => {
  t = await startTestEngine();
});
afterAll(async () => {
  await t.close();
});

describe('GET /v1/fraud/rules', () => {
  it('lists every rule with its code, category, mode, points, defaults and settings to any role', async () => {
    for (const role of ['analyst', 'finance', 'admin'] as const) {
      const { token } = await createToken(t.app, role);
      const res = await get(t.app, '/v1/fraud/rules', token);
      expect(res.statusCode, role).toBe(200);
    }
    const body = (await get(t.app, '/v1/fraud/rules')).json();
    expect(body).toMatchObject({ flagAt: 40, rejectAt: 80, maxScore: 100 });
    expect(body.rules).toHaveLength(12);
    const ctit = body.rules.find((r: { code: string }) => r.code === 'ctit_too_short');
    expect(ctit).toMatchObject({
      category: 'timing',
      mode: 'score',
      points: 40,
      defaults: { mode: 'score', points: 40, minS: 10 },
      settings: { properties: { minS: { default: 10 } } },
      inputs: expect.arrayContaining(['click time (from the click ID)']),
    });
    expect(body.categories).toContainEqual({ name: 'client', cap: 60, rules: ['datacenter_ip', 'click_ip_mismatch', 'ua_mismatch', 'bot_user_agent'] });
    const codes = body.rules.map((r: { code: string }) => r.code);
    expect(codes.indexOf('click_flood')).toBe(codes.indexOf('conversion_rate_spike') + 1);
    expect(body.rules.find((r: { code: string }) => r.code === 'click_flood')).toMatchObject({
      category: 'attribution',
      mode: 'score',
      points: 25,
      defaults: { alpha: 1e-4, tailFromS: 86400, minTailShare: 0.3, minTailLift: 3, minConversions: 20, minBaselineConversions: 100, strongTailShare: 0.6, strongPoints: 40 },
      settings: { properties: { tailFromS: { default: 86400, enum: expect.arrayContaining([3600, 86400, 604800]) }, strongPoints: { default: 40 } } },
    });
    expect(body.categories).toContainEqual({ name: 'attribution', cap: 40, rules: ['click_flood'] });
    expect(body.offer).toBeUndefined();
  });

  it('needs a token', async () => {
    expectApiError(await t.app.inject({ method: 'GET', url: '/v1/fraud/rules' }), 401, 'unauthorized');
  });

  it("shows an offer's effective settings and thresholds with ?offerId=", async () => {
    const { offer } = await seedCatalog(t.app, {
      offer: { fraud: { flagAt: 30, rejectAt: 70, rules: { ip_burst: { max: 20, windowS: 600 }, datacenter_ip: { mode: 'off' } } } },
    });
    const body = (await get(t.app, `/v1/fraud/rules?offerId=${offer.id}`)).json();
    expect(body.offer).toEqual({ id: offer.id, flagAt: 30, rejectAt: 70 });
    const byCode = Object.fromEntries(body.rules.map((r: { code: string; effective: unknown }) => [r.code, r.effective]));
    expect(byCode.ip_burst).toEqual({ mode: 'score', points: 40, max: 20, windowS: 600, sharedRate: 0.2, offerRateMultiple: 3 });
    expect(byCode.datacenter_ip).toEqual({ mode: 'off', points: 40, vpnPoints: 15, sharedExitPoints: 10, sharedExitClicks: 3, sharedExitPublishers: 2, sharedExitTopShare: 0.67 });
    expect(byCode.ctit_too_short).toEqual({ mode: 'score', points: 40, minS: 10 });
    expectApiError(await get(t.app, '/v1/fraud/rules?offerId=off_missing'), 404, 'not_found');
    expectApiError(await get(t.app, '/v1/fraud/rules?offer=x'), 400, 'invalid_request', ['offer']);
  });
});

describe('offer fraud overrides', () => {
  it('are refused with the contract 400 when a code is unknown or a setting bad', async () => {
    const { advertiser } = await seedCatalog(t.app);
    const body = {
      advertiserId: advertiser.id,
      name: 'Tuned',
      url: 'https://adv.example/?c={clickid}',
      payout: '1.00',
      currency: 'USD',
      fraud: { rules: { no_such_rule: { max: 1 }, ctit_too_short: { minS: -1 }, ip_burst: { maxx: 3 }, datacenter_ip: { mode: 'loud' } } },
    };
    const res = await post(t.app, '/v1/offers', body);
    expectApiError(res, 400, 'invalid_request', [
      'fraud.rules.no_such_rule',
      'fraud.rules.ctit_too_short.minS',
      'fraud.rules.ip_burst.maxx',
      'fraud.rules.datacenter_ip.mode',
    ]);
  });

  it('are accepted when valid, stored, and checked again on PATCH', async () => {
    const { offer } = await seedCatalog(t.app, { offer: { fraud: { rules: { ctit_too_short: { minS: 5 }, ip_burst: { max: 5, windowS: 60 } } } } });
    expect(offer.fraud.rules).toEqual({ ctit_too_short: { minS: 5 }, ip_burst: { max: 5, windowS: 60 } });
    const bad = await patch(t.app, `/v1/offers/${offer.id}`, { fraud: { rules: { payout_mismatch: { tolerancePct: 'lots' } } } });
    expectApiError(bad, 400, 'invalid_request', ['fraud.rules.payout_mismatch.tolerancePct']);
    const good = await patch(t.app, `/v1/offers/${offer.id}`, { fraud: { rules: { payout_mismatch: { tolerancePct: 5 } } } });
    expect(good.statusCode, good.body).toBe(200);
  });
});

describe('click counting for the baselines', () => {
  it('counts each redirected click in the scoring state by offer, publisher, sub1 and address', async () => {
    const { offer, publisher } = await seedCatalog(t.app);
    for (let i = 0; i < 3; i++) {
      const res = await t.app.inject({ method: 'GET', url: `/c/${offer.id}?pub=${publisher.id}&sub1=s-1`, remoteAddress: '198.51.100.23', headers: auth() });
      expect(res.statusCode).toBe(302);
    }
    await t.engine.fraudState.flush();
    const counts = await t.engine.fraudState.observe({
      advertiserId: offer.advertiserId,
      txid: 'probe',
      at: Date.now(),
      addresses: ['198.51.100.23'],
      addressWindowMs: 3_600_000,
      clickId: 'probe',
      clickAt: Date.now(),
      event: 'conversion',
      clickExpiresAt: Date.now() + 60_000,
      offerId: offer.id,
      segment: { publisherId: publisher.id, sub1: 's-1', windowMs: 3_600_000 },
    });
    expect(counts.segment).toEqual({ conversions: 1, clicks: 3 });
    expect(counts.addresses).toEqual([{ key: '198.51.100.23', conversions: 1, clicks: 3 }]);
    expect(counts.offerBaseline.clicks).toBe(3);
  });
});
