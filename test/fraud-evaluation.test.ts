import { describe, expect, it } from 'vitest';
import { Scorer } from '../src/fraud/scorer.js';
import { parseAddress } from '../src/net/cidr.js';
import { MemoryFraudState } from '../src/fraud/state-memory.js';
import type { ScoreResult } from '../src/postback/types.js';
import { T0, testOffer } from './helpers/fraud.js';
import { botFarm, byTime, clickInjection, deviceFarm, honestTraffic, incentivisedSub, Population, type TrafficEvent } from './helpers/traffic.js';

/**
 * The defaults judged on synthetic traffic (test/helpers/traffic.ts): honest traffic must never be
 * rejected and at most 3 % flagged, while the classic fraud patterns mixed into it are caught. The
 * population puts 8 % of its users behind VPN exits on cloud servers: a click from a hosting network
 * is worth a review by default (strong evidence of automation), so those users are held to "never
 * rejected" and the 3 % applies to everyone else. (The simulator, src/simulate, measures the
 * realistic mix: most VPN users exit from VPN providers' networks, which score few points.)
 */

const DAY = 86_400_000;
const OFFER = 'off_eval';

type Outcome = { kind: string; clickIp: string | null; result: ScoreResult };

async function run(events: TrafficEvent[]): Promise<Outcome[]> {
  const state = new MemoryFraudState({ prefix: 'eval:' });
  const scorer = new Scorer({ state });
  const offer = testOffer({ id: OFFER });
  const outcomes: Outcome[] = [];
  for (const e of byTime(events)) {
    if (e.type === 'click') {
      const c = e.click;
      state.recordClick({ offerId: c.offerId, publisherId: c.publisherId, sub1: c.sub1, address: c.ip ? (parseAddress(c.ip) ?? null) : null, at: new Date(T0.getTime() + c.at) });
      continue;
    }
    const v = e.conversion;
    const result = await scorer.score({
      advertiserId: 'adv_eval',
      offer,
      publisherId: v.click.publisherId,
      clickId: v.click.id,
      clickCreatedAt: new Date(T0.getTime() + v.click.at),
      click: { ip: v.click.ip, userAgent: v.click.ua, subs: [v.click.sub1, null, null, null, null] },
      userIp: v.userIp,
      userAgent: v.userAgent,
      txid: v.txid,
      event: 'conversion',
      status: 'approved',
      payoutMinor: 250n,
      currency: 'USD',
      payoutSent: v.payoutSent,
      now: new Date(T0.getTime() + v.at),
    });
    outcomes.push({ kind: v.kind, clickIp: v.click.ip, result });
  }
  return outcomes;
}

function summary(outcomes: Outcome[]) {
  const n = outcomes.length;
  const count = (d: string) => outcomes.filter((o) => o.result.decision === d).length;
  const reasons: Record<string, number> = {};
  for (const o of outcomes) for (const r of o.result.reasons) reasons[r] = (reasons[r] ?? 0) + 1;
  const flaggedBy: Record<string, number> = {};
  for (const o of outcomes) if (o.result.decision !== 'accepted') flaggedBy[o.result.reasons.join('+')] = (flaggedBy[`${o.result.reasons.join('+')}`] ?? 0) + 1;
  return { n, accepted: count('accepted'), flagged: count('flagged'), rejected: count('rejected'), reasons, flaggedBy };
}

describe('the default fraud settings on synthetic traffic', () => {
  const pop = new Population(20261121, { carrierAddresses: 30 });
  const honest = honestTraffic(pop, { days: 3, clicksPerDay: 40_000, offerId: OFFER, publishers: 25, baseRate: 0.02 });
  const start = 2 * DAY;
  const fraud = [
    ...botFarm(pop, { start, offerId: OFFER, publisherId: 'pub_bad1', sub1: 'x', count: 150 }),
    ...clickInjection(pop, { start, offerId: OFFER, publisherId: 'pub_bad2', sub1: 'y', count: 150 }),
    ...deviceFarm(pop, { start, offerId: OFFER, publisherId: 'pub_bad3', sub1: 'z', count: 60 }),
    ...incentivisedSub(pop, { start, offerId: OFFER, publisherId: 'pub_3', sub1: 'inc', count: 600, rate: 0.3 }),
  ];
  const outcomes = run([...honest, ...fraud]);
  const of = async (kind: string) => summary((await outcomes).filter((o) => o.kind === kind));

  it('rejects no honest conversion off cloud servers (at most 1 % on them) and flags at most 3 % of those not on one', async () => {
    expectHonest(await outcomes, pop, 1500);
  });

  it('rejects bot farms on cloud servers', async () => {
    const s = await of('bot_farm');
    expect(s.rejected / s.n, JSON.stringify(s)).toBeGreaterThanOrEqual(0.95);
  });

  it('flags every click injection', async () => {
    const s = await of('click_injection');
    expect(s.accepted, JSON.stringify(s)).toBe(0);
  });

  it('flags a device farm behind one address once it exceeds what one address converts', async () => {
    const s = await of('device_farm');
    expect(s.reasons.ip_burst ?? 0, JSON.stringify(s)).toBeGreaterThanOrEqual(s.n - 6);
    expect(s.accepted, JSON.stringify(s)).toBeLessThanOrEqual(6);
  });

  it('explains an incentivised sub-source with conversion_rate_spike once it has volume', async () => {
    const s = await of('incentivised');
    expect(s.n).toBeGreaterThan(100);
    expect((s.reasons.conversion_rate_spike ?? 0) / s.n, JSON.stringify(s)).toBeGreaterThanOrEqual(0.8);
  });
});

describe('the default fraud settings on a high-converting offer behind few carrier gateways', () => {
  it('rejects no honest conversion off cloud servers (at most 1 % on them) and flags at most 3 % of those not on one', async () => {
    const pop = new Population(7, { carrierAddresses: 8 });
    const honest = honestTraffic(pop, { days: 2, clicksPerDay: 20_000, offerId: OFFER, publishers: 15, baseRate: 0.15 });
    expectHonest(await run(honest), pop, 4000);
  });
});

function expectHonest(outcomes: Outcome[], pop: Population, atLeast: number) {
  const honest = outcomes.filter((o) => o.kind === 'honest');
  const onCloud = (o: Outcome) => o.clickIp !== null && pop.vpnExits.includes(o.clickIp);
  const all = summary(honest);
  const elsewhere = summary(honest.filter((o) => !onCloud(o)));
  const cloud = summary(honest.filter(onCloud));
  expect(all.n).toBeGreaterThan(atLeast);
  expect(cloud.n, 'the population has users on cloud VPN exits').toBeGreaterThan(0);
  expect(elsewhere.rejected, JSON.stringify(elsewhere)).toBe(0);
  expect(elsewhere.flagged / elsewhere.n, JSON.stringify(elsewhere)).toBeLessThanOrEqual(0.03);
  // A cloud exit converting beyond its clicks (ip_burst) adds a second category: 40 + 40 reaches
  // rejectAt. Rare (1 of 3,152 in the first run), and the price of a hosting address being worth a review.
  expect(cloud.rejected / cloud.n, JSON.stringify(cloud)).toBeLessThanOrEqual(0.01);
}
