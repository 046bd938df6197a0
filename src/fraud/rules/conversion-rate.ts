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
 * Two levels, the same test and settings: the segment, and the publisher's whole click cohort (all
 * its sub1s) against the rest of the offer without that publisher. A publisher pumping over hundreds
 * of rotating sub-IDs keeps every one below minConversions; together they are one source converting
 * far above the offer. The stronger level is reported (more points, then the smaller p-value), with
 * both levels' counts in the evidence.
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
  description: "A publisher's sub1, or the publisher across all its sub1s, converts its clicks significantly and substantially above the offer's baseline rate.",
  inputs: ["the click's sub1", 'shared conversion and click counts per publisher and per publisher and sub1', "the offer's baseline"],
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
    const publisher = ctx.counts?.publisher;
    const offerBaseline = ctx.counts?.offerBaseline ?? { conversions: 0, clicks: 0 };
    const sub1 = JSON.stringify(click.subs[0] ?? '');
    const scope = { sub1: `offer ${ctx.input.offer.id}, publisher ${ctx.input.publisherId}, sub1 ${sub1}`, publisher: `offer ${ctx.input.offer.id}, publisher ${ctx.input.publisherId} (all its sub1s)` };
    const window = seconds(s.windowS);
    const levels = { sub1: { conversions: segment.conversions, clicks: segment.clicks }, publisher: publisher ? { conversions: publisher.conversions, clicks: publisher.clicks } : null };

    const segmentBaseline = baselineWithout(segment, offerBaseline, s, 'the rest of the offer');
    if ('short' in segmentBaseline) {
      return notEvaluated(`the rest of the offer has ${segmentBaseline.short} clicks over ${BASELINE_DAYS} days; its baseline needs ${s.minBaselineClicks}`, { scope: scope.sub1, window });
    }
    const segmentVerdict = judge(segment, segmentBaseline.p0, s);
    // Conversions are counted by their click's time, so they cannot outnumber the window's clicks
    // unless click counts were lost (a Redis outage): then the rate is unknown, not extreme.
    if (segmentVerdict.kind === 'incomplete') {
      return notEvaluated(`more conversions (${segment.conversions}) than recorded clicks (${segment.clicks}): the click counts are incomplete`, {
        value: { level: 'sub1', ...describe(segment, segmentBaseline.p0), levels },
        scope: scope.sub1,
        window,
      });
    }
    let chosen: { level: 'sub1' | 'publisher'; cohort: Cohort; verdict: Judged; p0: number; note: string; scope: string } = {
      level: 'sub1',
      cohort: segment,
      verdict: segmentVerdict,
      ...segmentBaseline,
      scope: scope.sub1,
    };
    if (publisher) {
      // The publisher's rest of the offer is smaller than the segment's; too short a history leaves the sub1 level alone.
      const publisherBaseline = baselineWithout(publisher, offerBaseline, s, 'the rest of the offer without this publisher');
      if (!('short' in publisherBaseline)) {
        const publisherVerdict = judge(publisher, publisherBaseline.p0, s);
        if (publisherVerdict.kind === 'incomplete') {
          return notEvaluated(`more conversions (${publisher.conversions}) than recorded clicks (${publisher.clicks}) for the publisher's sub1s together: the click counts are incomplete`, {
            value: { level: 'publisher', ...describe(publisher, publisherBaseline.p0), levels },
            scope: scope.publisher,
            window,
          });
        }
        if (stronger(publisherVerdict, segmentVerdict)) {
          const note = `${publisherBaseline.note}; judged on the publisher's sub1s together, where the spike is stronger than on sub1 ${sub1} alone`;
          chosen = { level: 'publisher', cohort: publisher, verdict: publisherVerdict, p0: publisherBaseline.p0, note, scope: scope.publisher };
        }
      }
    }

    const { level, cohort, verdict, p0, note } = chosen;
    const threshold = { alpha: s.alpha, minLift: s.minLift, minConversions: s.minConversions };
    const base = { level, ...describe(cohort, p0) };
    if (verdict.kind === 'below') {
      return measured(false, { value: { ...base, levels }, threshold, window, scope: chosen.scope, note: `below the minimum volume; ${note}` });
    }
    return measured(verdict.fired, {
      value: { ...base, pValue: Number(verdict.pValue.toPrecision(3)), lift: round(verdict.lift), levels },
      threshold: { ...threshold, strongLift: s.strongLift },
      window,
      scope: chosen.scope,
      note: verdict.strong ? `${note}; a strong spike (${s.strongLift}x the baseline or more)` : note,
      ...(verdict.strong ? { points: s.strongPoints } : {}),
    });
  },
});

type Cohort = { conversions: number; clicks: number };
type Settings = { alpha: number; minLift: number; minConversions: number; strongLift: number; baselineRate: number | null; minBaselineClicks: number };
type Verdict = { kind: 'below' } | { kind: 'incomplete' } | { kind: 'tested'; pValue: number; lift: number; fired: boolean; strong: boolean };
type Judged = Exclude<Verdict, { kind: 'incomplete' }>;

/** p0 for a cohort: the configured rate, or the rest of the offer without the cohort's own counts (`short`: too few clicks for that). */
function baselineWithout(cohort: Cohort, offer: Cohort, s: Settings, restName: string): { p0: number; note: string } | { short: number } {
  if (s.baselineRate !== null) return { p0: s.baselineRate, note: 'configured baseline rate' };
  // The rest of the offer: a source large enough to move the offer's rate must not raise its own bar.
  const rest = { conversions: Math.max(0, offer.conversions - cohort.conversions), clicks: Math.max(0, offer.clicks - cohort.clicks) };
  if (rest.clicks < s.minBaselineClicks) return { short: rest.clicks };
  return {
    // Half a conversion when there were none: a rate of exactly 0 would make any conversion infinitely unlikely.
    p0: Math.max(rest.conversions, 0.5) / rest.clicks,
    note: `baseline: ${restName}, ${rest.conversions} conversions / ${rest.clicks} clicks over ${BASELINE_DAYS} UTC days`,
  };
}

function judge({ conversions: k, clicks: n }: Cohort, p0: number, s: Settings): Verdict {
  if (k < s.minConversions) return { kind: 'below' };
  if (k > n) return { kind: 'incomplete' };
  const pValue = binomialUpperTail(k, n, p0);
  const lift = k / n / p0;
  const fired = pValue < s.alpha && lift >= s.minLift;
  return { kind: 'tested', pValue, lift, fired, strong: fired && lift >= s.strongLift };
}

/** The publisher level is reported only when it is worth more points, or as many and is the more significant. */
function stronger(publisher: Verdict, segment: Verdict): boolean {
  const rank = (v: Verdict) => (v.kind === 'tested' && v.fired ? (v.strong ? 2 : 1) : 0);
  const [p, q] = [rank(publisher), rank(segment)];
  if (p !== q) return p > q;
  return p > 0 && publisher.kind === 'tested' && segment.kind === 'tested' && publisher.pValue < segment.pValue;
}

function describe({ conversions, clicks }: Cohort, p0: number) {
  return { conversions, clicks, rate: clicks > 0 ? round(conversions / clicks) : null, baselineRate: round(p0) };
}

const round = (x: number) => Number(x.toPrecision(4));
