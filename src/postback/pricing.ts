import type { Offer } from '../catalog/catalog.js';
import { ApiError, invalidRequest, type FieldIssue } from '../errors.js';
import { parseMoney } from '../money.js';
import { percentOf, type Goal, type Price } from '../offers/terms.js';
import type { PostbackFields } from './fields.js';

/**
 * What one postback is worth (CONTRACT §10): the payout owed to the publisher, the revenue owed by
 * the advertiser and the sale amount, in integer minor units of the postback's currency. A price the
 * postback sends wins; otherwise the event's goal sets it, and `conversion` (or any event of an offer
 * without goals) uses the offer's own figures.
 */

export type Pricing = {
  payoutMinor: bigint;
  revenueMinor: bigint;
  amountMinor: bigint | null;
  currency: string;
  /** false when the postback omitted payout and the offer's (or goal's) was used. */
  payoutSent: boolean;
  goal: Goal | undefined;
};

export function priceConversion(fields: PostbackFields, offer: Offer): Pricing {
  const goal = offer.goals[fields.event];
  if (goal === undefined && fields.event !== 'conversion' && Object.keys(offer.goals).length > 0) {
    throw new ApiError('unknown_event', `The offer has no goal "${fields.event}"; it accepts conversion, ${Object.keys(offer.goals).join(', ')}.`);
  }
  const currency = fields.currency ?? offer.currency;
  const issues: FieldIssue[] = [];
  let amountMinor: bigint | null = null;
  if (fields.amount !== undefined) {
    const parsed = parseMoney(fields.amount, currency);
    if (parsed.ok) amountMinor = parsed.minor;
    else issues.push({ path: 'amount', message: parsed.message });
  }
  const foreign = currency !== offer.currency;

  const priceOf = (side: 'payout' | 'revenue', sent: string | undefined, fallback: Price): bigint | undefined => {
    if (sent !== undefined) {
      const parsed = parseMoney(sent, currency);
      if (parsed.ok) return parsed.minor;
      issues.push({ path: side, message: parsed.message });
      return undefined;
    }
    if (fallback.kind === 'percent') {
      if (amountMinor !== null) return percentOf(amountMinor, fallback.percent);
      if (fields.amount === undefined && !issues.some((i) => i.path === 'amount')) {
        issues.push({ path: 'amount', message: `is required: the ${fields.event} goal's ${side} is ${fallback.percent} % of the sale amount` });
      }
      return undefined;
    }
    if (foreign) {
      issues.push({ path: side, message: `is required when currency differs from the offer's (${offer.currency})` });
      return undefined;
    }
    return fallback.minor;
  };

  const offerPayout: Price = { kind: 'flat', minor: offer.payoutMinor };
  const payoutPrice = goal?.payout ?? offerPayout;
  const payoutMinor = priceOf('payout', fields.payout, payoutPrice);
  // Revenue that was never set apart from the payout follows the payout the postback sent, also in
  // another currency; a revenue of its own is the offer's (or goal's) unless the postback sends one.
  const revenueFollowsPayout = goal?.revenue === undefined && offer.revenueMinor === offer.payoutMinor && fields.payout !== undefined;
  const revenueMinor =
    fields.revenue === undefined && revenueFollowsPayout
      ? payoutMinor
      : priceOf('revenue', fields.revenue, goal?.revenue ?? { kind: 'flat', minor: offer.revenueMinor });
  if (issues.length > 0 || payoutMinor === undefined || revenueMinor === undefined) throw invalidRequest(issues);
  return { payoutMinor, revenueMinor, amountMinor, currency, payoutSent: fields.payout !== undefined, goal };
}
