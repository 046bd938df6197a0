import { z } from 'zod';
import { MAX_WINDOW_S } from '../state-keys.js';
import { countsUnavailable, defineRule, measured, notEvaluated, offerBaselineRate, seconds } from '../rule.js';
import { missingAddressNote, userAddresses } from './network.js';

/**
 * Many conversions from one user address in a short window, counted across every offer and every
 * node: a device farm or a script behind one address. The click's address and the postback's `ip`
 * are both counted; IPv6 per /64.
 *
 * Carrier-grade NAT puts thousands of honest mobile users behind one address, and such an address
 * also sends many clicks. So the threshold grows with the address's own click volume: an address
 * that sent C clicks in the window may convert max(max, floor(C * r)) times, where r is sharedRate
 * or, on an offer that converts well, offerRateMultiple times the offer's own conversion rate
 * (whichever is higher). A farm that converts most of its clicks stays far above that; a carrier
 * gateway whose users convert at the offer's normal rate stays below it.
 */

/** The offer's history must be this large before its rate may raise the threshold. */
const MIN_BASELINE_CLICKS = 1000;

export const ipBurst = defineRule({
  code: 'ip_burst',
  category: 'velocity',
  description: 'More conversions from one user address within the window than one user makes, on any offer, across all nodes.',
  inputs: ['click address', 'postback ip (optional)', 'shared conversion and click counts per address'],
  points: 40,
  settings: {
    max: z.number().int().min(1).max(100_000).describe('conversions from one address within the window that are still normal'),
    windowS: z.number().int().min(60).max(MAX_WINDOW_S).describe('the sliding window, in seconds'),
    sharedRate: z
      .number()
      .min(0)
      .max(1)
      .describe('a shared address may convert this fraction of the clicks it sent in the window before the rule fires (0 disables)'),
    offerRateMultiple: z
      .number()
      .min(0)
      .max(100)
      .describe("...or this multiple of the offer's own conversion rate, when that is higher (0 disables)"),
  },
  defaults: { max: 5, windowS: 3600, sharedRate: 0.2, offerRateMultiple: 3 },
  evaluate(ctx, s) {
    const labelled = userAddresses(ctx);
    if (labelled.length === 0) return notEvaluated(missingAddressNote(ctx));
    const counted = labelled.filter((l) => l.address.countKey !== undefined);
    if (counted.length === 0) {
      const shown = labelled.map((l) => l.address.text).join(', ');
      return notEvaluated(`no public user address (${shown}): a proxy hop, not a user (is TRUST_PROXY set?)`);
    }
    const unavailable = countsUnavailable(ctx);
    if (unavailable) return unavailable;

    const offerRate = offerBaselineRate(ctx, MIN_BASELINE_CLICKS)?.rate ?? 0;
    const perClick = Math.max(s.sharedRate, s.offerRateMultiple * offerRate);
    let worst: { scope: string; conversions: number; clicks: number; limit: number } | undefined;
    for (const { label, address } of counted) {
      const c = ctx.counts?.addresses.find((a) => a.key === address.countKey);
      if (!c) continue;
      // The epsilon keeps 100 clicks at 3 x 0.15 from flooring to 44 through binary rounding.
      const limit = Math.max(s.max, Math.floor(c.clicks * perClick + 1e-9));
      const candidate = { scope: `${label} ${address.countKey} (all offers)`, conversions: c.conversions, clicks: c.clicks, limit };
      if (!worst || candidate.conversions - candidate.limit > worst.conversions - worst.limit) worst = candidate;
    }
    if (!worst) return notEvaluated('the shared counters returned no count for the address');
    const note =
      worst.limit > s.max ? `threshold raised by ${worst.clicks} clicks from the address at ${round(perClick)} conversions per click (a shared address)` : undefined;
    return measured(worst.conversions > worst.limit, {
      value: worst.conversions,
      threshold: worst.limit,
      window: seconds(s.windowS),
      scope: worst.scope,
      note,
    });
  },
});

const round = (x: number) => Number(x.toPrecision(3));
