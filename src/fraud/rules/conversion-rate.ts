import { z } from 'zod';
import { binomialUpperTail } from '../binomial.js';
import { BASELINE_DAYS, MAX_WINDOW_S } from '../state-keys.js';
import { countsUnavailable, defineRule, measured, notEvaluated, offerBaselineRate, seconds } from '../rule.js';

/**
 * A publisher's sub-source (publisher + sub1) converting far above the offer's normal rate: injected
 * or incentivised conversions, or a cookie-stuffing source. The test is the exact binomial upper
 * tail of k conversions in n clicks at the offer's baseline rate p0 (its last BASELINE_DAYS days, or
 * a configured rate), so small counts are judged correctly instead of by a normal approximation.
 *
 * k and n describe one click cohort: the clicks made in the window and those of them that have
 * converted. Counting conversions by their own time instead would let a paused publisher's long
 * tail (conversions arriving, clicks no longer) look like an infinite rate.
 *
 * Three guards keep honest traffic out: a minimum volume (10 conversions), a significance level
 * (1e-4) strict enough that testing every conversion of every segment rarely fires by chance, and
 * a minimum lift (3x the baseline), because honest sources do differ (an email list converts better
 * than pop-unders) and with enough volume any difference becomes "significant".
 */

export const conversionRateSpike = defineRule({
  code: 'conversion_rate_spike',
  category: 'velocity',
  description: "A publisher's sub1 converts its clicks significantly and substantially above the offer's baseline rate.",
  inputs: ["the click's sub1", 'shared conversion and click counts per publisher and sub1', "the offer's baseline"],
  points: 25,
  settings: {
    windowS: z.number().int().min(3600).max(MAX_WINDOW_S).describe('the click cohort judged: clicks made in the last this many seconds, and those of them that converted'),
    minConversions: z.number().int().min(1).max(1_000_000).describe('segments with fewer conversions in the window are not judged'),
    alpha: z.number().gt(0).max(0.5).describe('significance level of the binomial tail test'),
    minLift: z.number().min(1).max(1000).describe("the segment's rate must also be at least this multiple of the baseline"),
    baselineRate: z.number().gt(0).max(1).nullable().describe("a fixed baseline conversion rate; null uses the offer's own history"),
    minBaselineClicks: z.number().int().min(1).max(100_000_000).describe(`the offer needs this many clicks over ${BASELINE_DAYS} days for its history to be a baseline`),
  },
  defaults: { windowS: 86_400, minConversions: 10, alpha: 1e-4, minLift: 3, baselineRate: null, minBaselineClicks: 1000 },
  evaluate(ctx, s) {
    const click = ctx.input.click;
    if (!click) return notEvaluated('the click row was not found, so its sub1 is unknown');
    const unavailable = countsUnavailable(ctx);
    if (unavailable) return unavailable;
    const segment = ctx.counts?.segment;
    if (!segment) return notEvaluated('the shared counters returned no count for the segment');
    const scope = `offer ${ctx.input.offer.id}, publisher ${ctx.input.publisherId}, sub1 ${JSON.stringify(click.subs[0] ?? '')}`;
    const window = seconds(s.windowS);

    let p0 = s.baselineRate;
    let baselineNote = 'configured baseline rate';
    if (p0 === null) {
      const b = offerBaselineRate(ctx, s.minBaselineClicks);
      if (!b) {
        const clicks = ctx.counts?.offerBaseline.clicks ?? 0;
        return notEvaluated(`the offer has ${clicks} clicks over ${BASELINE_DAYS} days; its baseline needs ${s.minBaselineClicks}`, { scope, window });
      }
      p0 = b.rate;
      baselineNote = `offer baseline: ${b.conversions} conversions / ${b.clicks} clicks over ${BASELINE_DAYS} UTC days`;
    }

    const k = segment.conversions;
    const n = segment.clicks;
    const threshold = { alpha: s.alpha, minLift: s.minLift, minConversions: s.minConversions };
    const rate = n > 0 ? k / n : null;
    const base = { conversions: k, clicks: n, rate: rate === null ? null : round(rate), baselineRate: round(p0) };
    if (k < s.minConversions) {
      return measured(false, { value: base, threshold, window, scope, note: `below the minimum volume; ${baselineNote}` });
    }
    // Conversions are counted by their click's time, so they cannot outnumber the window's clicks
    // unless click counts were lost (a Redis outage): then the rate is unknown, not extreme.
    if (k > n) return notEvaluated(`more conversions (${k}) than recorded clicks (${n}): the click counts are incomplete`, { value: base, scope, window });
    const pValue = binomialUpperTail(k, n, p0);
    const lift = k / n / p0;
    const fired = pValue < s.alpha && lift >= s.minLift;
    return measured(fired, {
      value: { ...base, pValue: Number(pValue.toPrecision(3)), lift: round(lift) },
      threshold,
      window,
      scope,
      note: baselineNote,
    });
  },
});

const round = (x: number) => Number(x.toPrecision(4));
