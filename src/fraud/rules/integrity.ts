import { z } from 'zod';
import { formatMoney } from '../../money.js';
import { countsUnavailable, defineRule, measured, notEvaluated } from '../rule.js';

/**
 * Whether the conversion is one the offer pays for as stated: its payout, how many times its click
 * already converted, and the offer's daily cap.
 *
 * A payout off by a little is often the advertiser's rounding, tax or an unconfigured variable-payout
 * offer: recorded, 20 points, it flags only with another signal. A payout off by half or more (a
 * multiple of the agreed amount, a decimal point moved) is money nobody agreed to: 40 points, it
 * flags alone so that a person looks before it is paid.
 *
 * Counts come from the shared state, updated in the same atomic round trip that reads them, so two
 * nodes racing on the last slot of a cap both see each other and the cap holds exactly.
 */

export const payoutMismatch = defineRule({
  code: 'payout_mismatch',
  category: 'integrity',
  description: "The postback's payout or currency differs from the offer's.",
  inputs: ['postback payout and currency', "the offer's payout"],
  points: 20,
  settings: {
    tolerancePct: z
      .number()
      .min(0)
      .max(10_000)
      .multipleOf(0.01)
      .describe("a payout within this percentage of the offer's is not a mismatch (for offers with variable payouts)"),
    largePct: z
      .number()
      .min(0)
      .max(100_000)
      .multipleOf(0.01)
      .describe("a payout this many percent or more away from the offer's is a large mismatch, worth largePoints"),
    largePoints: z.number().int().min(0).max(100).describe('points for a large mismatch: a multiple of the agreed payout, not a rounding'),
  },
  defaults: { tolerancePct: 0, largePct: 50, largePoints: 40 },
  evaluate(ctx, s) {
    const { input } = ctx;
    const offer = input.offer;
    if (!input.payoutSent) return notEvaluated("the postback sent no payout; the offer's was used");
    const value = `${formatMoney(input.payoutMinor, input.currency)} ${input.currency}`;
    const expected = `${formatMoney(offer.payoutMinor, offer.currency)} ${offer.currency}`;
    if (input.currency !== offer.currency) return measured(true, { value, threshold: expected, scope: 'postback', note: 'currency differs' });
    // Integer arithmetic in basis points: money is never compared as a binary float.
    const diff = input.payoutMinor > offer.payoutMinor ? input.payoutMinor - offer.payoutMinor : offer.payoutMinor - input.payoutMinor;
    const beyond = (pct: number) => diff * 10_000n > offer.payoutMinor * BigInt(Math.round(pct * 100));
    const fired = beyond(s.tolerancePct);
    const large = fired && (offer.payoutMinor === 0n || diff * 10_000n >= offer.payoutMinor * BigInt(Math.round(s.largePct * 100)));
    const direction = input.payoutMinor > offer.payoutMinor ? 'above' : 'below';
    return measured(fired, {
      value,
      threshold: s.tolerancePct > 0 ? `${expected} ± ${s.tolerancePct}%` : expected,
      scope: 'postback',
      note: fired ? `${direction} the offer's payout${large ? ` by ${s.largePct}% or more: a large mismatch` : ''}` : undefined,
      ...(large ? { points: s.largePoints } : {}),
    });
  },
});

export const multipleConversionsPerClick = defineRule({
  code: 'multiple_conversions_per_click',
  category: 'integrity',
  description: 'The same click converted the same event under more transaction IDs than allowed.',
  inputs: ['click ID', 'event', 'shared conversion count per click and event'],
  points: 40,
  settings: { max: z.number().int().min(1).max(100_000).describe('distinct txids one click may convert per event (raise for repeat purchases)') },
  defaults: { max: 1 },
  evaluate(ctx, s) {
    // §10: a goal with `multiple` (repeat deposits) converts one click under many txids by design.
    if (ctx.input.offer.goals[ctx.input.event]?.multiple) return notEvaluated(`the ${ctx.input.event} goal allows several conversions per click`);
    const unavailable = countsUnavailable(ctx);
    if (unavailable) return unavailable;
    const n = ctx.counts?.clickConversions ?? 0;
    return measured(n > s.max, { value: n, threshold: s.max, window: 'click lifetime', scope: `click ${ctx.input.clickId}, event ${ctx.input.event}` });
  },
});

export const overDailyCap = defineRule({
  code: 'over_daily_cap',
  category: 'integrity',
  description: "The offer already had its daily cap of conversions this UTC day.",
  inputs: ["the offer's dailyCap", 'shared conversion count per offer and UTC day'],
  points: 40,
  settings: {},
  defaults: {},
  evaluate(ctx) {
    const cap = ctx.input.offer.dailyCap;
    if (cap === null) return notEvaluated('the offer has no daily cap');
    const unavailable = countsUnavailable(ctx);
    if (unavailable) return unavailable;
    const n = ctx.counts?.offerToday ?? 0;
    const day = ctx.input.now.toISOString().slice(0, 10);
    return measured(n > cap, { value: n, threshold: cap, window: `UTC day ${day}`, scope: `offer ${ctx.input.offer.id}` });
  },
});
