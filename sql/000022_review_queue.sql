-- The review queue (GET /v1/reviews/queue): flagged, undecided conversions by payout x score, highest
-- first, then oldest. Partial, so it holds only the queue itself, and ordered by the negated product
-- so that a page after a cursor is one ascending range scan, (rank, created_at, id) > (cursor).
create index conversions_review_queue on conversions ((-(payout_minor * score)), created_at, id)
  where decision = 'flagged' and review_state = 'none';
