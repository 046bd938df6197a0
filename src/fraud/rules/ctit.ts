import { z } from 'zod';
import { defineRule, measured, seconds } from '../rule.js';

/**
 * Click-to-install/conversion time (CTIT), measured from the click time the click ID itself carries,
 * so it is evaluated even when the click row is not (yet) in the database.
 *
 * Too short: no human lands, fills a form and converts in a few seconds; a conversion that fast was
 * fired by a script or injected into a click that was itself manufactured (AppsFlyer treats under
 * 5 s as impossible, and the industry flags under 10 s). Honest lead forms take 20-60 s, so 10 s
 * leaves them a wide margin.
 *
 * Too long: click flooding sprays clicks so that some of them are "last click" before organic
 * conversions days later. Honest traffic converts mostly within the hour, with a tail of days; 7
 * days is the industry's default click lookback (AppsFlyer, Adjust), beyond which attribution to this
 * click is itself doubtful. Offers with a longer honest cycle raise `maxS`.
 */

const CTIT_INPUTS = ['click time (from the click ID)', 'postback receive time'] as const;

export const ctitTooShort = defineRule({
  code: 'ctit_too_short',
  category: 'timing',
  description: 'The conversion came sooner after the click than a person can convert: click injection or a bot.',
  inputs: CTIT_INPUTS,
  points: 40,
  settings: { minS: z.number().int().min(0).max(86_400).describe('fires when the click-to-conversion time is below this many seconds') },
  defaults: { minS: 10 },
  evaluate(ctx, s) {
    return measured(ctx.ctitS < s.minS, { value: round(ctx.ctitS), threshold: s.minS, window: seconds(s.minS), scope: 'click' });
  },
});

export const ctitTooLong = defineRule({
  code: 'ctit_too_long',
  category: 'timing',
  description: 'The conversion came later after the click than honest traffic does: click flooding.',
  inputs: CTIT_INPUTS,
  points: 20,
  settings: { maxS: z.number().int().min(60).max(31_536_000).describe('fires when the click-to-conversion time exceeds this many seconds') },
  defaults: { maxS: 604_800 },
  evaluate(ctx, s) {
    const note =
      s.maxS >= ctx.input.offer.clickTtlS ? `the offer's click TTL (${ctx.input.offer.clickTtlS}s) refuses older clicks before this rule could fire` : undefined;
    return measured(ctx.ctitS > s.maxS, { value: round(ctx.ctitS), threshold: s.maxS, window: seconds(s.maxS), scope: 'click', note });
  },
});

const round = (s: number) => Math.round(s * 1000) / 1000;
