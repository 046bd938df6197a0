import type { Principal } from '../auth/tokens.js';
import type { Sql } from '../db/database.js';
import type { ConversionRow } from '../conversions/query.js';
import { enqueueDeliveries, hasDelivery } from '../delivery/outbox.js';
import { releasesDelivery } from '../postback/commit-batch.js';
import { insertReview, lockConversion, setReviewOutcome, type ReviewDecision, type ReviewRow } from './store.js';

/**
 * An analyst's decision on one conversion (CONTRACT §8), in one transaction: the conversion row is
 * locked, the decision is appended to the audit trail, the conversion takes the decision, and an
 * approval releases the outbound postback the scorer held back.
 *
 * Exactly once: the delivery is queued only if the conversion has none yet, checked under the row
 * lock. The intake (which queues accepted conversions in the transaction that creates them, and
 * completes recovered pixel conversions under the same lock) and any other review wait on that lock,
 * so two approvals, on one node or two, queue one delivery between them.
 *
 * Every review is recorded, including a second one: the latest decides. Approve after reject
 * releases the postback if none was ever queued; reject after approve records the reversal, but a
 * postback already released is not recalled (it may already have been delivered, and deliveries are
 * at least once by contract). Any conversion may be reviewed, not only flagged ones: approving an
 * accepted one confirms it, rejecting it is an analyst's override of the score.
 */

export type ReviewRequest = { conversionId: string; decision: ReviewDecision; note: string | null; reviewer: Principal };

export type ReviewOutcome = {
  review: ReviewRow;
  conversion: ConversionRow;
  /** The delivery this approval queued; null when none was (already queued, a rejection, or an advertiser-rejected sale). */
  releasedDeliveryId: string | null;
};

export async function reviewConversion(txSql: Sql, req: ReviewRequest, refireWindowS: number): Promise<ReviewOutcome | undefined> {
  return txSql.begin(async (tx) => {
    const before = await lockConversion(tx, req.conversionId);
    if (!before) return undefined;
    const review = await insertReview(tx, {
      conversionId: before.id,
      decision: req.decision,
      note: req.note,
      tokenId: req.reviewer.tokenId,
      name: req.reviewer.name,
    });
    const approve = req.decision === 'approve';
    const conversion = await setReviewOutcome(tx, { id: before.id, createdAt: before.created_at }, {
      decision: approve ? 'accepted' : 'rejected',
      reviewState: approve ? 'approved' : 'rejected',
    });
    let releasedDeliveryId: string | null = null;
    if (approve && releasesDelivery('accepted', conversion.status as string) && !(await hasDelivery(tx, { id: conversion.id, createdAt: conversion.created_at }))) {
      // The refire window starts at the approval, the moment the conversion became payable, as for a
      // recovered conversion completed late: measured from the conversion, an approval after
      // REFIRE_WINDOW_S would queue a delivery that expires before its first try.
      const [id] = await enqueueDeliveries(
        tx,
        [{ conversionId: conversion.id, publisherId: conversion.publisher_id as string, conversionCreatedAt: review.created_at }],
        refireWindowS,
      );
      releasedDeliveryId = id ?? null;
    }
    return { review, conversion, releasedDeliveryId };
  });
}
