import { z } from 'zod';
import { compare, CTIT_BUCKET_LABELS, CTIT_EDGES_S, without, type Comparison, type Histogram } from '../ctit-distribution.js';
import { countsUnavailable, defineRule, measured, notEvaluated, type RuleContext } from '../rule.js';
import { BASELINE_DAYS } from '../state-keys.js';

/**
 * Click flooding (click spamming): a source sprays clicks so that one of them is the last click
 * before organic conversions, which then convert minutes to weeks after a click the user never
 * made. No single such conversion looks wrong (ctit_too_long sees only those past 7 days); the
 * source's click-to-conversion time (CTIT) distribution does: flat and long-tailed where honest
 * traffic concentrates in minutes to hours. AppsFlyer and Adjust detect it the same way, comparing
 * a source's CTIT distribution with the rest of the app's.
 *
 * The publisher and, inside it, the sub-ID (publisher + sub1) are each compared with the rest of
 * the offer (the offer without that segment, as conversion_rate_spike does): a one-sided binned
 * two-sample Kolmogorov–Smirnov test at `alpha` (ctit-distribution.ts) for "converts later than the
 * rest", plus an effect size, because with volume any difference is significant: at least
 * `minTailShare` of the segment's conversions `tailFromS` or more after their click, and that share
 * at least `minTailLift` times the rest's. An offer whose every source is slow (a long sales cycle)
 * has no lift and never fires. The stronger of the two levels is reported.
 *
 * Two strengths, like conversion_rate_spike. A slow, significantly later source explains and
 * corroborates (25 points: with a hosting address or a changed device it flags). When most of its
 * conversions come a day or more after the click (`strongTailShare`), it flags alone (40): honest
 * traffic converts mostly within the hour, so a source whose majority converts days later is not
 * the cause of those conversions.
 */

const WINDOW = `${BASELINE_DAYS} UTC days (by conversion time)`;

type Level = { name: 'publisher' | 'sub1'; scope: string; segment: Histogram; rest: number[]; result: Comparison };
type Judged = Level & { result: Extract<Comparison, { judged: true }> };
const isJudged = (l: Level): l is Judged => l.result.judged;

export const clickFlood = defineRule({
  code: 'click_flood',
  category: 'attribution',
  description: "A publisher's or sub-ID's click-to-conversion times are significantly flatter and later than the rest of the offer's: click flooding.",
  inputs: ["the click's publisher and sub1", `shared click-to-conversion histograms per offer, publisher and sub1 (${BASELINE_DAYS} days)`],
  points: 25,
  settings: {
    alpha: z.number().gt(0).max(0.5).describe('significance level of the one-sided binned two-sample Kolmogorov-Smirnov test (the segment converts later than the rest)'),
    tailFromS: z
      .literal(CTIT_EDGES_S)
      .describe(`the long tail starts this many seconds after the click; one of the histogram's bucket edges (${CTIT_EDGES_S.join(', ')})`),
    minTailShare: z.number().gt(0).max(1).describe("share of the segment's conversions that must be in the long tail"),
    minTailLift: z.number().min(1).max(1000).describe("the segment's tail share must be at least this multiple of the rest of the offer's"),
    minConversions: z.number().int().min(2).max(1_000_000).describe(`segments with fewer conversions over ${BASELINE_DAYS} days are not judged`),
    minBaselineConversions: z
      .number()
      .int()
      .min(2)
      .max(100_000_000)
      .describe(`the rest of the offer (without the segment) needs this many conversions over ${BASELINE_DAYS} days to be a baseline`),
    strongTailShare: z.number().gt(0).max(1).describe('a firing segment with at least this share in the tail is a strong finding, worth strongPoints'),
    strongPoints: z.number().int().min(0).max(100).describe('points for a strong finding: most conversions long after their click'),
  },
  defaults: {
    alpha: 1e-4,
    tailFromS: 86_400,
    minTailShare: 0.3,
    minTailLift: 3,
    minConversions: 20,
    minBaselineConversions: 100,
    strongTailShare: 0.6,
    strongPoints: 40,
  },
  evaluate(ctx, s) {
    const click = ctx.input.click;
    if (!click) return notEvaluated('the click row was not found, so its publisher segment and sub1 are unknown');
    const unavailable = countsUnavailable(ctx);
    if (unavailable) return unavailable;
    const h = ctx.counts?.ctit;
    if (!h) return notEvaluated('the shared counters returned no click-to-conversion histograms');
    const levels = judgeLevels(ctx, h, s);
    const judged = levels.filter(isJudged);
    if (judged.length === 0) {
      const volumes = levels.map((l) => `${l.name === 'publisher' ? 'the publisher' : 'the sub-ID'} has ${l.result.conversions} conversions, the rest ${l.result.restConversions}`);
      return notEvaluated(
        `too few conversions over ${BASELINE_DAYS} days to compare distributions (${volumes.join('; ')}); needs ${s.minConversions} and ${s.minBaselineConversions} for the rest`,
        { scope: levels[0]?.scope, window: WINDOW },
      );
    }
    const chosen = judged.reduce((best, l) => (stronger(l, best) ? l : best));
    const r = chosen.result;
    const other = levels.find((l) => l !== chosen);
    const otherNote = other ? `${other.name} level: ${summary(other)}` : undefined;
    return measured(r.fired, {
      value: {
        level: chosen.name,
        buckets: CTIT_BUCKET_LABELS,
        segment: chosen.segment,
        rest: chosen.rest,
        conversions: r.conversions,
        restConversions: r.restConversions,
        laterBy: round(r.d),
        atS: r.edgeS ?? null,
        tailShare: round(r.tailShare),
        restTailShare: round(r.restTailShare),
        tailLift: round(r.tailLift),
      },
      threshold: {
        laterBy: round(r.critical),
        alpha: s.alpha,
        tailFromS: s.tailFromS,
        minTailShare: s.minTailShare,
        minTailLift: s.minTailLift,
        strongTailShare: s.strongTailShare,
      },
      window: WINDOW,
      scope: chosen.scope,
      note: [r.strong ? `a strong finding (${Math.round(s.strongTailShare * 1000) / 10} % or more in the tail)` : undefined, otherNote].filter(Boolean).join('; ') || undefined,
      points: r.strong ? s.strongPoints : undefined,
    });
  },
});

type Settings = Parameters<typeof compare>[2];

function judgeLevels(ctx: RuleContext, h: NonNullable<NonNullable<RuleContext['counts']>['ctit']>, s: Settings): Level[] {
  const offer = `offer ${ctx.input.offer.id}, publisher ${ctx.input.publisherId}`;
  const sub1 = ctx.input.click?.subs[0] ?? '';
  const level = (name: Level['name'], scope: string, segment: Histogram): Level => {
    const rest = without(h.offer, segment);
    return { name, scope, segment, rest, result: compare(segment, rest, s) };
  };
  return [level('publisher', offer, h.publisher), level('sub1', `${offer}, sub1 ${JSON.stringify(sub1)}`, h.segment)];
}

/** Firing beats not firing, a strong finding beats a weak one, then the larger margin of the statistic over its critical value. */
function stronger(a: Judged, b: Judged): boolean {
  const x = a.result;
  const y = b.result;
  if (x.fired !== y.fired) return x.fired;
  if (x.strong !== y.strong) return x.strong;
  return x.d / x.critical > y.d / y.critical;
}

function summary(l: Level): string {
  const r = l.result;
  if (!r.judged) return `not judged (${r.conversions} conversions, the rest ${r.restConversions})`;
  return `${r.fired ? 'fires' : 'does not fire'} (laterBy ${round(r.d)} vs ${round(r.critical)}, tail share ${round(r.tailShare)} vs the rest's ${round(r.restTailShare)}, ${r.conversions} conversions)`;
}

const round = (x: number) => Number(x.toPrecision(3));
