import type { TxSql } from '../db/database.js';
import type { ConversionRow } from '../conversions/query.js';
import { createdRangeOfId } from '../ids.js';

/** The review feature's SQL, one function per statement; every one runs inside the review's transaction. */

export type ReviewDecision = 'approve' | 'reject';

export type ReviewRow = { id: bigint; created_at: Date };

/** Waits for any other review or intake transaction holding the row, so decisions on it are serial. */
export async function lockConversion(tx: TxSql, id: string): Promise<ConversionRow | undefined> {
  const [from, to] = createdRangeOfId(id);
  const [row] = await tx<ConversionRow[]>`select * from conversions
    where id = ${id} and created_at >= ${from}::timestamptz and created_at < ${to}::timestamptz for update`;
  return row;
}

export async function insertReview(
  tx: TxSql,
  r: { conversionId: string; decision: ReviewDecision; note: string | null; tokenId: string; name: string },
): Promise<ReviewRow> {
  const [row] = await tx<ReviewRow[]>`
    insert into reviews (conversion_id, decision, note, reviewer_token_id, reviewer_name)
    values (${r.conversionId}, ${r.decision}, ${r.note}, ${r.tokenId}, ${r.name})
    returning id, created_at`;
  return row as ReviewRow;
}

export async function setReviewOutcome(
  tx: TxSql,
  conversion: { id: string; createdAt: Date },
  outcome: { decision: 'accepted' | 'rejected'; reviewState: 'approved' | 'rejected' },
): Promise<ConversionRow> {
  const [row] = await tx<ConversionRow[]>`
    update conversions set decision = ${outcome.decision}, review_state = ${outcome.reviewState}, updated_at = now()
    where id = ${conversion.id} and created_at = ${conversion.createdAt} returning *`;
  return row as ConversionRow;
}
