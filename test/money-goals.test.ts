import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { countRows, expectApiError, get, patch, post } from './helpers/admin.js';
import { seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { mintClick, signedGetUrl, uniqueTx } from './helpers/postback.js';

/**
 * CONTRACT §10 revenue, payout and goals, through the API and into the database: what a CPA+CPS offer
 * (registration $1, first deposit $20, 30 % of each sale) pays and earns, in currencies with 0, 2 and
 * 3 decimals, worked out by hand.
 */

let t: TestEngine;
let adv: { id: string; secrets: { secret: string }[] };
let pubId: string;

/** Timing rules off (test postbacks follow their clicks at once); the per-click rule scores. */
const FRAUD = { rules: { ctit_too_short: { mode: 'off' }, ip_burst: { mode: 'off' }, multiple_conversions_per_click: { mode: 'score' } } };

beforeAll(async () => {
  t = await startTestEngine({ addressRateLimitPerS: 1_000_000 });
  const seeded = await seedCatalog(t.app, { advertiser: { rateLimit: { perS: 1_000_000 } } });
  adv = seeded.advertiser;
  pubId = seeded.publisher.id;
});

afterAll(async () => {
  await t?.close();
});

async function createOffer(extra: object) {
  const res = await post(t.app, '/v1/offers', {
    advertiserId: adv.id,
    name: 'Goals',
    url: 'https://adv.example/?cid={clickid}',
    payout: '2.50',
    currency: 'USD',
    fraud: FRAUD,
    ...extra,
  });
  expect(res.statusCode, res.body).toBe(201);
  return res.json() as { id: string; payout: string; revenue: string; goals: object; caps: object[] };
}

async function postback(offerId: string, query: string, clickId?: string) {
  const clk = clickId ?? (await mintClick(t.app, offerId, pubId));
  const res = await t.app.inject({ method: 'GET', url: signedGetUrl(adv.id, `clickid=${clk}&${query}`, adv.secrets[0]!.secret), remoteAddress: '203.0.113.50' });
  return { res, clickId: clk };
}

async function stored(conversionId: string) {
  const [row] = await t.sql<{ event: string; payout_minor: bigint; revenue_minor: bigint; amount_minor: bigint | null; currency: string; reasons: string[] }[]>`
    select event, payout_minor, revenue_minor, amount_minor, currency, reasons from conversions where id = ${conversionId}`;
  return row;
}

describe('offers carry revenue, goals and caps', () => {
  it('stores what was sent, defaults revenue to the payout, and returns both', async () => {
    const plain = await createOffer({});
    expect([plain.payout, plain.revenue, plain.goals, plain.caps]).toEqual(['2.50', '2.50', {}, []]);
    const goals = { registration: { payout: '1.00', revenue: '1.50' }, sale: { payout: { percent: '30' }, revenue: { percent: '40' } }, deposit: { payout: '20.00', multiple: true } };
    const caps = [{ period: 'day', conversions: 100, action: 'flag' }, { period: 'month', per: 'publisher', event: 'deposit', payout: '5000.00' }];
    const rich = await createOffer({ revenue: '3.10', goals, caps });
    expect(rich).toMatchObject({ payout: '2.50', revenue: '3.10', goals, caps });
    const [row] = await t.sql`select payout_minor, revenue_minor, goals, caps from offers where id = ${rich.id}`;
    expect(row).toEqual({ payout_minor: 250n, revenue_minor: 310n, goals, caps });
    expect((await get(t.app, `/v1/offers/${rich.id}`)).json()).toMatchObject({ revenue: '3.10', goals, caps });
  });

  it('lets revenue follow the payout until it is set apart, on PATCH', async () => {
    const offer = await createOffer({});
    expect((await patch(t.app, `/v1/offers/${offer.id}`, { payout: '4.00' })).json()).toMatchObject({ payout: '4.00', revenue: '4.00' });
    expect((await patch(t.app, `/v1/offers/${offer.id}`, { revenue: '5.00' })).json()).toMatchObject({ payout: '4.00', revenue: '5.00' });
    expect((await patch(t.app, `/v1/offers/${offer.id}`, { payout: '4.50', goals: { lead: { payout: '0.50' } } })).json()).toMatchObject({
      payout: '4.50',
      revenue: '5.00',
      goals: { lead: { payout: '0.50' } },
    });
  });

  it('refuses bad goals and caps with every bad field named, and writes nothing', async () => {
    const before = await countRows(t.sql, 'offers');
    const res = await post(t.app, '/v1/offers', {
      advertiserId: adv.id,
      name: 'Bad',
      url: 'https://adv.example/?cid={clickid}',
      payout: '2.50',
      revenue: '1.234',
      currency: 'USD',
      goals: { conversion: { payout: '1.00' }, 'bad event': { payout: '1.00' }, sale: { payout: { percent: '101' } }, lead: { payout: '0.005' } },
      caps: [{ period: 'week', conversions: 1 }, { period: 'day' }, { period: 'day', payout: '1.001' }],
    });
    expectApiError(res, 400, 'invalid_request');
    const paths = (res.json().error.details as { path: string }[]).map((d) => d.path);
    expect(paths).toEqual(expect.arrayContaining(['goals.conversion', 'goals.sale.payout.percent', 'caps.0.period', 'caps.1']));
    expect(await countRows(t.sql, 'offers')).toBe(before);
    // Decimals are checked against the currency once the shapes are right.
    const decimals = await post(t.app, '/v1/offers', {
      advertiserId: adv.id, name: 'Bad', url: 'https://adv.example/?cid={clickid}', payout: '2.50', revenue: '1.234', currency: 'USD',
      goals: { lead: { payout: '0.005' } }, caps: [{ period: 'day', payout: '1.001' }, { period: 'day', conversions: 5 }],
    });
    expectApiError(decimals, 400, 'invalid_request', ['revenue', 'goals.lead.payout', 'caps.0.payout', 'caps.1']);
    expect(await countRows(t.sql, 'offers')).toBe(before);
  });
});

describe('a postback is priced by its event', () => {
  it('pays and earns a flat goal, the offer for conversion, and keeps the margin', async () => {
    const offer = await createOffer({ revenue: '3.00', goals: { registration: { payout: '1.00', revenue: '1.50' }, deposit: { payout: '20.00' } } });
    const reg = await postback(offer.id, `txid=${uniqueTx()}&event=registration`);
    expect(reg.res.statusCode, reg.res.body).toBe(200);
    expect(await stored(reg.res.json().conversionId)).toMatchObject({ event: 'registration', payout_minor: 100n, revenue_minor: 150n, amount_minor: null });
    const dep = await postback(offer.id, `txid=${uniqueTx()}&event=deposit&amount=250.00`, reg.clickId);
    // A goal without its own revenue earns the offer's.
    expect(await stored(dep.res.json().conversionId)).toMatchObject({ event: 'deposit', payout_minor: 2000n, revenue_minor: 300n, amount_minor: 25000n });
    const conv = await postback(offer.id, `txid=${uniqueTx()}`);
    const view = (await get(t.app, `/v1/conversions/${conv.res.json().conversionId}`)).json();
    expect(view).toMatchObject({ event: 'conversion', payout: '2.50', revenue: '3.00', margin: '0.50', amount: null, currency: 'USD' });
    // What the postback sends wins over the goal.
    const sent = await postback(offer.id, `txid=${uniqueTx()}&event=registration&payout=0.80&revenue=2.00`);
    expect(await stored(sent.res.json().conversionId)).toMatchObject({ payout_minor: 80n, revenue_minor: 200n });
  });

  it.each([
    // currency, amount sent, 30 % and 40 % of it rounded half up to the minor unit
    ['USD', '19.99', 1999n, 600n, 800n], // 599.7 -> 600, 799.6 -> 800
    ['USD', '0.05', 5n, 2n, 2n], // 1.5 -> 2, 2.0 -> 2
    ['JPY', '1235', 1235n, 371n, 494n], // 370.5 -> 371 (0 decimals)
    ['KWD', '1.235', 1235n, 371n, 494n], // 0.3705 -> 0.371 (3 decimals)
    ['KWD', '0.001', 1n, 0n, 0n], // 0.0003 -> 0.000
  ])('takes a percent of the sale in %s: amount %s', async (currency, amount, amountMinor, payoutMinor, revenueMinor) => {
    const offer = await createOffer({ currency, payout: '1', goals: { sale: { payout: { percent: '30' }, revenue: { percent: '40' } } } });
    const { res } = await postback(offer.id, `txid=${uniqueTx()}&event=sale&amount=${amount}`);
    expect(res.statusCode, res.body).toBe(200);
    expect(await stored(res.json().conversionId)).toEqual({ event: 'sale', payout_minor: payoutMinor, revenue_minor: revenueMinor, amount_minor: amountMinor, currency, reasons: [] });
  });

  it('rounds a fractional percent half up', async () => {
    const offer = await createOffer({ goals: { sale: { payout: { percent: '12.5' } } } });
    // 12.5 % of 10.04 = 1.255 -> 1.26; revenue is the offer's (no goal revenue).
    const { res } = await postback(offer.id, `txid=${uniqueTx()}&event=sale&amount=10.04`);
    expect(await stored(res.json().conversionId)).toMatchObject({ payout_minor: 126n, revenue_minor: 250n });
  });

  it('answers a percent goal without amount with a 400 naming amount, and records nothing', async () => {
    const offer = await createOffer({ goals: { sale: { payout: { percent: '30' } } } });
    const before = await countRows(t.sql, 'conversions');
    const txid = uniqueTx();
    const { res } = await postback(offer.id, `txid=${txid}&event=sale`);
    expectApiError(res, 400, 'invalid_request', ['amount']);
    const bad = await postback(offer.id, `txid=${txid}&event=sale&amount=1.005`);
    expectApiError(bad.res, 400, 'invalid_request', ['amount']);
    expect(await countRows(t.sql, 'conversions')).toBe(before);
    await t.engine.intake.attempts.flush();
    const logged = await t.sql`select error_code, http_status from postback_attempts where txid = ${txid}`;
    expect(logged).toEqual([{ error_code: 'invalid_request', http_status: 400 }, { error_code: 'invalid_request', http_status: 400 }]);
  });

  it('refuses an event that is not among the goals with 422 unknown_event, and logs it', async () => {
    const offer = await createOffer({ goals: { registration: { payout: '1.00' } } });
    const before = await countRows(t.sql, 'conversions');
    const txid = uniqueTx();
    const { res } = await postback(offer.id, `txid=${txid}&event=purchase`);
    expectApiError(res, 422, 'unknown_event');
    expect(res.json().error.message).toContain('registration');
    expect(await countRows(t.sql, 'conversions')).toBe(before);
    await t.engine.intake.attempts.flush();
    const logged = await t.sql`select error_code, http_status from postback_attempts where txid = ${txid}`;
    expect(logged).toEqual([{ error_code: 'unknown_event', http_status: 422 }]);
    // An offer without goals takes any event at its own prices.
    const plain = await createOffer({ revenue: '3.00' });
    const any = await postback(plain.id, `txid=${uniqueTx()}&event=purchase`);
    expect(await stored(any.res.json().conversionId)).toMatchObject({ event: 'purchase', payout_minor: 250n, revenue_minor: 300n });
  });

  it('lets one click convert a multiple goal under many txids, and flags repeats of any other', async () => {
    const offer = await createOffer({ goals: { deposit: { payout: '20.00', multiple: true }, registration: { payout: '1.00' } } });
    const first = await postback(offer.id, `txid=${uniqueTx()}&event=deposit`);
    const deposits = [first.res];
    for (let i = 0; i < 3; i++) deposits.push((await postback(offer.id, `txid=${uniqueTx()}&event=deposit`, first.clickId)).res);
    for (const res of deposits) {
      expect(res.json()).toMatchObject({ decision: 'accepted', reasons: [] });
    }
    const evidence = (await get(t.app, `/v1/conversions/${deposits[3]!.json().conversionId}`)).json().evidence as { code: string; evaluated: boolean; note?: string }[];
    expect(evidence.find((e) => e.code === 'multiple_conversions_per_click')).toMatchObject({ evaluated: false });
    await postback(offer.id, `txid=${uniqueTx()}&event=registration`, first.clickId);
    const repeat = await postback(offer.id, `txid=${uniqueTx()}&event=registration`, first.clickId);
    expect(repeat.res.json().reasons).toContain('multiple_conversions_per_click');
    const [row] = await t.sql<{ n: number }[]>`select count(*)::int as n from conversions where click_id = ${first.clickId} and event = 'deposit'`;
    expect(row?.n).toBe(4);
  });

  it('needs payout and revenue in the postback when its currency is not the offer\'s, unless revenue follows payout', async () => {
    const apart = await createOffer({ revenue: '3.00' });
    const { res } = await postback(apart.id, `txid=${uniqueTx()}&payout=2.00&currency=EUR`);
    expectApiError(res, 400, 'invalid_request', ['revenue']);
    const ok = await postback(apart.id, `txid=${uniqueTx()}&payout=2.00&revenue=2.80&currency=EUR`);
    expect(await stored(ok.res.json().conversionId)).toMatchObject({ payout_minor: 200n, revenue_minor: 280n, currency: 'EUR' });
    const same = await createOffer({});
    const follows = await postback(same.id, `txid=${uniqueTx()}&payout=2.00&currency=EUR`);
    expect(await stored(follows.res.json().conversionId)).toMatchObject({ payout_minor: 200n, revenue_minor: 200n, currency: 'EUR' });
  });
});
