import { z } from 'zod';
import { binomialUpperTail } from '../binomial.js';
import { BASELINE_DAYS, MAX_WINDOW_S } from '../state-keys.js';
import { countsUnavailable, defineRule, measured, notEvaluated, seconds } from '../rule.js';

/**
 * A publisher's sub-source (publisher + sub1) converting far above the offer's normal rate: injected
 * or incentivised conversions, or a cookie-stuffing source. The test is the exact binomial upper
 * tail of k conversions in n clicks at the offer's baseline rate p0 (its last BASELINE_DAYS days
 * without the segment itself, or a configured rate), so small counts are judged correctly instead of
 * by a normal approximation. Leaving the segment out matters when it is a large part of the offer: a
 * pumped sub-ID would otherwise raise the very baseline it is compared with.
 *
 * k and n describe one click cohort: the clicks made in the window and those of them that have
 * converted. Counting conversions by their own time instead would let a paused publisher's long
 * tail (conversions arriving, clicks no longer) look like an infinite rate.
 *
 * Three guards keep honest traffic out: a minimum volume (10 conversions), a significance level
 * (1e-4) strict enough that testing every conversion of every segment rarely fires by chance, and
 * a minimum lift (3x the baseline), because honest sources do differ (an email list converts better
 * than pop-unders) and with enough volume any difference becomes "significant".
 *
 * Two strengths, like bot_user_agent's. From 3x the baseline the spike explains and corroborates (25
 * points: with any per-conversion signal it flags). From 4x it flags alone (40): honest sources of
 * one offer rarely differ by more than 2-3x, so a sub-ID converting four times the rest of the offer,
 * significantly, is pumped (incentivised or fake conversions) until someone has looked. Why 4x and
 * not 5x, measured with the simulator (src/simulate): a sub-ID pumped to 35 % on a 3 % install offer
 * whose other traffic is itself partly fraud measured 4.5-5x, so a 5x line let 28 % of it through on
 * one seed of five; moving the line to 4x raised honest conversions flagged on the default run from
 * 0.61 % to 0.86 %.
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
    minBaselineClicks: z
      .number()
      .int()
      .min(1)
      .max(100_000_000)
      .describe(`the rest of the offer (without the segment) needs this many clicks over ${BASELINE_DAYS} days for its history to be a baseline`),
    strongLift: z.number().min(1).max(1000).describe('a spike of at least this multiple of the baseline is a strong one, worth strongPoints'),
    strongPoints: z.number().int().min(0).max(100).describe('points for a strong spike: a rate no honest difference between sources explains'),
  },
  defaults: { windowS: 86_400, minConversions: 10, alpha: 1e-4, minLift: 3, baselineRate: null, minBaselineClicks: 1000, strongLift: 4, strongPoints: 40 },
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
      // The rest of the offer: a segment large enough to move the offer's rate must not raise its own bar.
      const b = ctx.counts?.offerBaseline ?? { conversions: 0, clicks: 0 };
      const rest = { conversions: Math.max(0, b.conversions - segment.conversions), clicks: Math.max(0, b.clicks - segment.clicks) };
      if (rest.clicks < s.minBaselineClicks) {
        return notEvaluated(`the rest of the offer has ${rest.clicks} clicks over ${BASELINE_DAYS} days; its baseline needs ${s.minBaselineClicks}`, { scope, window });
      }
      // Half a conversion when there were none: a rate of exactly 0 would make any conversion infinitely unlikely.
      p0 = Math.max(rest.conversions, 0.5) / rest.clicks;
      baselineNote = `baseline: the rest of the offer, ${rest.conversions} conversions / ${rest.clicks} clicks over ${BASELINE_DAYS} UTC days`;
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
    const strong = fired && lift >= s.strongLift;
    return measured(fired, {
      value: { ...base, pValue: Number(pValue.toPrecision(3)), lift: round(lift) },
      threshold: { ...threshold, strongLift: s.strongLift },
      window,
      scope,
      note: strong ? `${baselineNote}; a strong spike (${s.strongLift}x the baseline or more)` : baselineNote,
      ...(strong ? { points: s.strongPoints } : {}),
    });
  },
});

const round = (x: number) => Number(x.toPrecision(4));
