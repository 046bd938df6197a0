import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compare, criticalLaterBy, CTIT_BUCKET_LABELS, CTIT_BUCKETS, CTIT_EDGES_S, ctitBucket, laterBy } from '../src/fraud/ctit-distribution.js';
import { expandEvidence } from '../src/fraud/evidence.js';
import { validateOverrides } from '../src/fraud/registry.js';
import { clickFlood } from '../src/fraud/rules/click-flood.js';
import { Scorer, type ScoredEvidence } from '../src/fraud/scorer.js';
import { MemoryFraudState } from '../src/fraud/state-memory.js';
import { RedisFraudState } from '../src/fraud/state-redis.js';
import type { FraudState } from '../src/fraud/state.js';
import type { ScoreInput } from '../src/postback/types.js';
import { BROWSER_UA, counts, evaluate, scoreInput, T0, testDatacenter } from './helpers/fraud.js';
import { testRedis } from './helpers/redis.js';

/**
 * click_flood: a source whose click-to-conversion times are flat and late against the rest of its
 * offer. Traffic is generated from a seeded generator and scored through the real Scorer on both
 * implementations of the shared state.
 */

const { url: redisUrl, client: redisClient } = testRedis();
type Backend = { name: string; skip: boolean; make(): FraudState };
const backends: Backend[] = [
  { name: 'memory', skip: false, make: () => new MemoryFraudState({ prefix: `cf:${randomBytes(4).toString('hex')}:` }) },
  { name: 'redis', skip: !redisUrl, make: () => new RedisFraudState(redisClient(), { prefix: `cf:${randomBytes(4).toString('hex')}:`, onError: () => undefined }) },
];

const HOUR_S = 3_600;
const DAY_S = 86_400;

/** mulberry32: the same traffic on every run and every backend. */
function generator(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

type Ctit = (rand: () => number) => number;
const logUniform = (rand: () => number, fromS: number, toS: number) => Math.exp(Math.log(fromS) + rand() * (Math.log(toS) - Math.log(fromS)));
/** Honest traffic: mostly within the hour, some within the day, a tail of days. */
const honest: Ctit = (rand) => {
  const r = rand();
  if (r < 0.7) return logUniform(rand, 30, HOUR_S);
  if (r < 0.92) return logUniform(rand, HOUR_S, DAY_S);
  return logUniform(rand, DAY_S, 3 * DAY_S);
};
/** Flooded: organic conversions landing on a sprayed click at any point of the look-back. */
const flooded: Ctit = (rand) => 600 + rand() * 6.5 * DAY_S;
/** A long sales cycle: every source converts hours to days after its click. */
const slow: Ctit = (rand) => logUniform(rand, HOUR_S, 6 * DAY_S);

type Source = { publisherId: string; sub1: string; n: number; ctit: Ctit };
type Sent = { source: Source; input: ScoreInput };

/** Every source's conversions over the two days before T0, interleaved in time order. */
function traffic(sources: Source[], seed = 7): Sent[] {
  const rand = generator(seed);
  const sent: { at: number; source: Source; ctitS: number }[] = [];
  for (const source of sources) {
    for (let i = 0; i < source.n; i++) sent.push({ at: T0.getTime() - Math.floor(rand() * 2 * DAY_S * 1000), source, ctitS: source.ctit(rand) });
  }
  sent.sort((a, b) => a.at - b.at);
  return sent.map(({ at, source, ctitS }, i) => ({
    source,
    input: scoreInput({
      publisherId: source.publisherId,
      txid: `tx_${i}`,
      clickId: `click_${i}`,
      now: new Date(at),
      clickCreatedAt: new Date(at - Math.round(ctitS * 1000)),
      click: { ip: `198.51.100.${i % 250}`, userAgent: BROWSER_UA, subs: [source.sub1, null, null, null, null] },
    }),
  }));
}

type Flood = ScoredEvidence & {
  value?: { level: string; segment: number[]; rest: number[]; conversions: number; restConversions: number; laterBy: number; tailShare: number; restTailShare: number; tailLift: number; buckets: string[] };
  threshold?: { laterBy: number; alpha: number; minTailShare: number; minTailLift: number };
};

async function score(scorer: Scorer, input: ScoreInput) {
  const r = await scorer.score(input);
  const flood = (expandEvidence(r.evidence) as Flood[]).find((e) => e.code === 'click_flood') as Flood;
  return { ...r, flood };
}

async function run(state: FraudState, sent: Sent[]) {
  const scorer = new Scorer({ state, datacenter: testDatacenter });
  const results = [];
  for (const s of sent) results.push({ source: s.source, ...(await score(scorer, s.input)) });
  return { scorer, results };
}

const lastOf = <T extends { source: Source }>(results: T[], publisherId: string, sub1?: string) =>
  results.filter((r) => r.source.publisherId === publisherId && (sub1 === undefined || r.source.sub1 === sub1)).at(-1) as T;
const sum = (h: readonly number[]) => h.reduce((a, b) => a + b, 0);
/** Conversions of other publishers scored up to and including `last`: the rest of the offer it was judged against. */
const restBefore = <T extends { source: Source }>(results: T[], last: T) =>
  results.slice(0, results.indexOf(last) + 1).filter((r) => r.source.publisherId !== last.source.publisherId).length;

const HONEST_SOURCES: Source[] = [
  { publisherId: 'pub_a', sub1: 'x', n: 90, ctit: honest },
  { publisherId: 'pub_a', sub1: 'y', n: 40, ctit: honest },
  { publisherId: 'pub_b', sub1: 'm', n: 60, ctit: honest },
];

describe.each(backends)('click_flood on the $name state', ({ skip, make }) => {
  it.skipIf(skip)('finds a publisher whose conversions spread flat over days, showing both distributions', async () => {
    const state = make();
    const { results } = await run(state, traffic([...HONEST_SOURCES, { publisherId: 'pub_flood', sub1: 'f', n: 30, ctit: flooded }]));
    const last = lastOf(results, 'pub_flood');
    const restConversions = restBefore(results, last);
    expect(restConversions).toBeGreaterThan(150);
    expect(last.reasons).toContain('click_flood');
    expect(last.flood).toMatchObject({
      category: 'attribution',
      evaluated: true,
      fired: true,
      points: 40,
      window: '7 UTC days (by conversion time)',
      scope: 'offer off_test, publisher pub_flood',
      value: { level: 'publisher', conversions: 30, restConversions, buckets: CTIT_BUCKET_LABELS },
      threshold: { alpha: 1e-4, minTailShare: 0.3, minTailLift: 3, tailFromS: 86_400 },
    });
    const v = last.flood.value as NonNullable<Flood['value']>;
    expect(v.segment).toHaveLength(CTIT_BUCKETS);
    expect(sum(v.segment)).toBe(30);
    expect(sum(v.rest)).toBe(restConversions);
    // The rest converts within minutes to hours; the flooder's mass is days after the click.
    expect(sum(v.rest.slice(0, ctitBucket(DAY_S)))).toBeGreaterThan(0.85 * restConversions);
    expect(sum(v.segment.slice(ctitBucket(DAY_S)))).toBeGreaterThan(0.6 * 30);
    expect(v.laterBy).toBeGreaterThan(last.flood.threshold?.laterBy as number);
    expect(v.tailShare).toBeGreaterThanOrEqual(0.6);
    expect(v.tailLift).toBeGreaterThanOrEqual(3);
    expect(last.flood.note).toMatch(/a strong finding/);
    // Flooding alone flags (40), never rejects.
    expect(last.decision).not.toBe('rejected');

    // The honest publishers, judged against a rest that includes the flooder, are not flagged for it.
    for (const pub of ['pub_a', 'pub_b']) {
      expect(lastOf(results, pub).flood, pub).toMatchObject({ evaluated: true, fired: false, points: 0 });
    }
    // Before the flooder had 20 conversions it was not judged.
    const early = results.filter((r) => r.source.publisherId === 'pub_flood')[18];
    expect(early?.flood).toMatchObject({ evaluated: false, fired: false, note: expect.stringMatching(/too few conversions over 7 days .* needs 20 and 100/) });
    await state.close();
  });

  it.skipIf(skip)('leaves an offer alone whose every publisher is slow alike (a long sales cycle)', async () => {
    const state = make();
    const sources = ['pub_a', 'pub_b', 'pub_c', 'pub_d'].map((publisherId) => ({ publisherId, sub1: 's', n: 60, ctit: slow }));
    const { results } = await run(state, traffic(sources, 11));
    const judged = results.filter((r) => r.flood.evaluated);
    expect(judged.length).toBeGreaterThan(100);
    expect(judged.filter((r) => r.flood.fired)).toEqual([]);
    for (const pub of ['pub_a', 'pub_b', 'pub_c', 'pub_d']) {
      const v = lastOf(results, pub).flood.value as NonNullable<Flood['value']>;
      // Long tails everywhere, so no source's tail stands out from the rest's.
      expect(v.restTailShare, pub).toBeGreaterThan(0.2);
      expect(v.tailLift, pub).toBeLessThan(3);
    }
    await state.close();
  });

  it.skipIf(skip)('does not judge a source or an offer with too few conversions', async () => {
    const state = make();
    const { results } = await run(state, traffic([...HONEST_SOURCES, { publisherId: 'pub_flood', sub1: 'f', n: 12, ctit: flooded }]));
    const last = lastOf(results, 'pub_flood');
    const rest = restBefore(results, last);
    expect(last.flood).toMatchObject({
      evaluated: false,
      fired: false,
      points: 0,
      note: `too few conversions over 7 days to compare distributions (the publisher has 12 conversions, the rest ${rest}; the sub-ID has 12 conversions, the rest ${rest}); needs 20 and 100 for the rest`,
    });
    // Enough flooded conversions but too thin a rest of the offer to compare with.
    const thin = make();
    const few = await run(thin, traffic([{ publisherId: 'pub_a', sub1: 'x', n: 60, ctit: honest }, { publisherId: 'pub_flood', sub1: 'f', n: 40, ctit: flooded }]));
    const thinLast = lastOf(few.results, 'pub_flood');
    expect(thinLast.flood).toMatchObject({ evaluated: false, note: expect.stringContaining(`the publisher has 40 conversions, the rest ${restBefore(few.results, thinLast)};`) });
    await state.close();
    await thin.close();
  });

  it.skipIf(skip)('finds a flooding sub-ID inside an honest publisher, where the publisher as a whole does not stand out', async () => {
    const state = make();
    // pub_b large enough for pub_a as a whole to be judged against it.
    const sources: Source[] = [...HONEST_SOURCES, { publisherId: 'pub_b', sub1: 'n', n: 80, ctit: honest }, { publisherId: 'pub_a', sub1: 'wall', n: 30, ctit: flooded }];
    const { results } = await run(state, traffic(sources, 5));
    const last = lastOf(results, 'pub_a', 'wall');
    const rest = results.slice(0, results.indexOf(last) + 1).filter((r) => r.source.sub1 !== 'wall').length;
    expect(last.reasons).toContain('click_flood');
    expect(last.flood).toMatchObject({
      fired: true,
      scope: 'offer off_test, publisher pub_a, sub1 "wall"',
      value: { level: 'sub1', conversions: 30, restConversions: rest },
      note: expect.stringMatching(/publisher level: does not fire \(laterBy /),
    });
    // Its honest siblings in the same publisher are not flagged.
    expect(lastOf(results, 'pub_a', 'x').flood).toMatchObject({ evaluated: true, fired: false });
    await state.close();
  });

  it.skipIf(skip)('counts a retried postback (same advertiser and txid) once', async () => {
    const state = make();
    const sent = traffic([...HONEST_SOURCES, { publisherId: 'pub_flood', sub1: 'f', n: 25, ctit: flooded }]);
    const { scorer, results } = await run(state, sent);
    expect((lastOf(results, 'pub_flood').flood.value as NonNullable<Flood['value']>).conversions).toBe(25);
    const lastSent = sent.filter((s) => s.source.publisherId === 'pub_flood').at(-1) as Sent;
    const retried = async (i: number) => (await score(scorer, { ...lastSent.input, now: new Date(T0.getTime() + i * 60_000) })).flood.value as NonNullable<Flood['value']>;
    const first = await retried(1);
    expect(first.conversions).toBe(25);
    expect(first.restConversions).toBe(190);
    for (let i = 2; i <= 3; i++) expect(await retried(i)).toEqual(first);
    // The same txid from another advertiser is another conversion.
    const other = await score(scorer, { ...lastSent.input, advertiserId: 'adv_other' });
    expect((other.flood.value as NonNullable<Flood['value']>).conversions).toBe(26);
    await state.close();
  });
});

describe.skipIf(!redisUrl)('click_flood on memory and Redis', () => {
  it('gives the same verdict and evidence for every conversion of the same traffic', async () => {
    const sent = traffic([...HONEST_SOURCES, { publisherId: 'pub_a', sub1: 'wall', n: 25, ctit: flooded }, { publisherId: 'pub_flood', sub1: 'f', n: 25, ctit: flooded }], 3);
    const [memory, redis] = backends.map((b) => b.make()) as [FraudState, FraudState];
    const a = await run(memory, sent);
    const b = await run(redis, sent);
    expect(a.results.filter((r) => r.flood.fired).length).toBeGreaterThan(0);
    expect(b.results.map((r) => r.flood)).toEqual(a.results.map((r) => r.flood));
    await memory.close();
    await redis.close();
  });
});

describe('click_flood without its inputs', () => {
  it('says why it did not run when the click row is unknown or the counters are unavailable', () => {
    expect(evaluate(clickFlood, scoreInput({ click: undefined }))).toMatchObject({ evaluated: false, note: expect.stringMatching(/click row was not found/) });
    expect(evaluate(clickFlood, scoreInput(), { countsError: 'connection refused' })).toMatchObject({
      evaluated: false,
      note: 'shared counters unavailable: connection refused',
    });
    expect(evaluate(clickFlood, scoreInput(), { counts: counts() })).toMatchObject({ evaluated: false, note: expect.stringMatching(/no click-to-conversion histograms/) });
  });

  it('applies per-offer overrides, and never fires for a source converting sooner than the rest', () => {
    const at = (bucket: number, n: number) => Array.from({ length: CTIT_BUCKETS }, (_, i) => (i === bucket ? n : 0));
    const add = (x: number[], y: number[]) => x.map((c, i) => c + (y[i] ?? 0));
    const late = at(ctitBucket(2 * DAY_S), 15);
    const rest = at(ctitBucket(20 * 60), 200);
    const histograms = { offer: add(late, rest), publisher: late, segment: late };
    expect(evaluate(clickFlood, scoreInput(), { counts: counts({ ctit: histograms }) })).toMatchObject({ evaluated: false });
    const judged = evaluate(clickFlood, scoreInput(), { counts: counts({ ctit: histograms }), settings: { minConversions: 10, strongPoints: 35 } });
    expect(judged).toMatchObject({ evaluated: true, fired: true, points: 35, value: { level: 'publisher', laterBy: 1 } });
    // The mirror image (a source much faster than the rest) is click injection's pattern, not this rule's.
    const fast = { offer: add(late, rest), publisher: rest, segment: rest };
    expect(evaluate(clickFlood, scoreInput(), { counts: counts({ ctit: fast }), settings: { minBaselineConversions: 10 } })).toMatchObject({
      evaluated: true,
      fired: false,
      value: { laterBy: 0 },
    });
    // The tail must start at a bucket edge; bad settings are named at their path, as for every rule.
    expect(validateOverrides({ click_flood: { tailFromS: 3_600, minTailShare: 0.5 } })).toEqual([]);
    expect(validateOverrides({ click_flood: { tailFromS: 90_000, minConversions: 1, strongPoints: 101, minTail: 1 } }).map((i) => i.path).sort()).toEqual([
      'fraud.rules.click_flood.minConversions',
      'fraud.rules.click_flood.minTail',
      'fraud.rules.click_flood.strongPoints',
      'fraud.rules.click_flood.tailFromS',
    ]);
  });
});

describe('CTIT histograms and the one-sided binned KS test', () => {
  it('buckets times by their lower edge, log-spaced from 10 s to 7 days', () => {
    expect(CTIT_BUCKET_LABELS).toHaveLength(CTIT_BUCKETS);
    expect([-1, 0, 9.99, 10, 59, 60, 3_599, 3_600, DAY_S - 1, DAY_S, 7 * DAY_S - 1, 7 * DAY_S, 30 * DAY_S].map(ctitBucket)).toEqual([0, 0, 0, 1, 2, 3, 6, 7, 10, 11, 12, 13, 13]);
    expect(CTIT_BUCKET_LABELS[ctitBucket(DAY_S)]).toBe('1-3d');
    expect(CTIT_EDGES_S.every((e, i) => i === 0 || e > (CTIT_EDGES_S[i - 1] as number))).toBe(true);
  });

  it('uses the asymptotic critical value sqrt(-ln(alpha) (n + m) / (2 n m))', () => {
    expect(criticalLaterBy(20, 100, 1e-4)).toBeCloseTo(Math.sqrt((Math.log(1e4) * 120) / 4_000), 12);
    expect(criticalLaterBy(20, 100, 1e-4)).toBeCloseTo(0.5256, 3);
    // More data, a finer line.
    expect(criticalLaterBy(200, 1_000, 1e-4)).toBeLessThan(criticalLaterBy(20, 100, 1e-4));
  });

  it('measures how far the rest runs ahead of the segment, at the edge where it does', () => {
    const a = [0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0];
    const b = [0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 5, 0, 0];
    expect(laterBy(a, a)).toEqual({ d: 0, edgeS: undefined });
    expect(laterBy(b, a)).toEqual({ d: 0.5, edgeS: 1_800 });
    expect(laterBy(a, b).d).toBe(0);
    const settings = { alpha: 1e-4, tailFromS: DAY_S, minTailShare: 0.3, minTailLift: 3, minConversions: 5, minBaselineConversions: 5, strongTailShare: 0.6 };
    expect(compare(b, a, settings)).toMatchObject({ judged: true, fired: false, tailShare: 0.5, restTailShare: 0 });
    const many = (h: number[]) => h.map((c) => c * 20);
    expect(compare(many(b), many(a), settings)).toMatchObject({ judged: true, fired: true, strong: false, d: 0.5 });
  });
});
